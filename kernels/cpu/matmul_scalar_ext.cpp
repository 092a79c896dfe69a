// Portable scalar row-dot kernels of Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q5_K, IQ4_NL and IQ4_XS
// against the int8 activations pv already uses (Q8A per 32 values, Q8K per 256): each block
// is an integer sum scaled once in f32, the reference the AVX2 kernels are tested against.
#include "kernels/cpu/matmul_kernels.h"
#include "kernels/quant/half.h"
#include "kernels/quant/quant_blocks.h"

namespace pv::kernels::cpu::scalar {
namespace {

int q8_sum(const int8_t* q, int n) {
  int s = 0;
  for (int j = 0; j < n; ++j) s += q[j];
  return s;
}

// 5-bit level of value j (0..31) of a Q5_0 / Q5_1 block: low nibble plus bit j of qh.
int q5_level(const uint8_t* qs, uint32_t qh, int j) {
  const int lo = j < 16 ? (qs[j] & 0xF) : (qs[j - 16] >> 4);
  return lo | static_cast<int>(((qh >> j) & 1u) << 4);
}

}  // namespace

// x ~= d*L + m: sum_j (d*L_j + m) * dx*q_j = d*dx * sum L_j q_j + m*dx * sum q_j.
float dot_q4_1(int64_t n, const void* w, const void* x) {
  const auto* bw = static_cast<const BlockQ4_1*>(w);
  const auto* bx = static_cast<const BlockQ8A*>(x);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQK; ++i) {
    int isum = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      isum += (bw[i].qs[j] & 0xF) * bx[i].qs[j];
      isum += (bw[i].qs[j] >> 4) * bx[i].qs[j + kQK / 2];
    }
    sum += fp16_to_fp32(bw[i].d) * bx[i].d * static_cast<float>(isum) +
           fp16_to_fp32(bw[i].m) * bx[i].d * static_cast<float>(q8_sum(bx[i].qs, kQK));
  }
  return sum;
}

float dot_q5_0(int64_t n, const void* w, const void* x) {
  const auto* bw = static_cast<const BlockQ5_0*>(w);
  const auto* bx = static_cast<const BlockQ8A*>(x);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQK; ++i) {
    const uint32_t qh = q5_high_bits(bw[i].qh);
    int isum = 0;
    for (int j = 0; j < kQK; ++j) isum += (q5_level(bw[i].qs, qh, j) - 16) * bx[i].qs[j];
    sum += fp16_to_fp32(bw[i].d) * bx[i].d * static_cast<float>(isum);
  }
  return sum;
}

float dot_q5_1(int64_t n, const void* w, const void* x) {
  const auto* bw = static_cast<const BlockQ5_1*>(w);
  const auto* bx = static_cast<const BlockQ8A*>(x);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQK; ++i) {
    const uint32_t qh = q5_high_bits(bw[i].qh);
    int isum = 0;
    for (int j = 0; j < kQK; ++j) isum += q5_level(bw[i].qs, qh, j) * bx[i].qs[j];
    sum += fp16_to_fp32(bw[i].d) * bx[i].d * static_cast<float>(isum) +
           fp16_to_fp32(bw[i].m) * bx[i].d * static_cast<float>(q8_sum(bx[i].qs, kQK));
  }
  return sum;
}

float dot_iq4_nl(int64_t n, const void* w, const void* x) {
  const auto* bw = static_cast<const BlockIQ4_NL*>(w);
  const auto* bx = static_cast<const BlockQ8A*>(x);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQK; ++i) {
    int isum = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      isum += kIQ4NLValues[bw[i].qs[j] & 0xF] * bx[i].qs[j];
      isum += kIQ4NLValues[bw[i].qs[j] >> 4] * bx[i].qs[j + kQK / 2];
    }
    sum += fp16_to_fp32(bw[i].d) * bx[i].d * static_cast<float>(isum);
  }
  return sum;
}

// Group g of 16 values (value order) has scale byte g: d*(sc&15)*S_g - dmin*(sc>>4)*bsums_g.
float dot_q2_K(int64_t n, const void* w, const void* x) {
  const auto* bw = static_cast<const BlockQ2_K*>(w);
  const auto* bx = static_cast<const BlockQ8K*>(x);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQKK; ++i) {
    int sumi = 0, summ = 0;
    for (int g = 0; g < 16; ++g) {
      const int h = g / 8, s = (g % 8) / 2, part = g % 2;
      const uint8_t* q = bw[i].qs + 32 * h + 16 * part;
      const int8_t* q8 = bx[i].qs + 16 * g;
      int sg = 0;
      for (int l = 0; l < 16; ++l) sg += ((q[l] >> (2 * s)) & 3) * q8[l];
      sumi += (bw[i].scales[g] & 0xF) * sg;
      summ += (bw[i].scales[g] >> 4) * bx[i].bsums[g];
    }
    sum += fp16_to_fp32(bw[i].d) * bx[i].d * static_cast<float>(sumi) -
           fp16_to_fp32(bw[i].dmin) * bx[i].d * static_cast<float>(summ);
  }
  return sum;
}

float dot_q3_K(int64_t n, const void* w, const void* x) {
  const auto* bw = static_cast<const BlockQ3_K*>(w);
  const auto* bx = static_cast<const BlockQ8K*>(x);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQKK; ++i) {
    int sc[16];
    q3k_scales(bw[i].scales, sc);
    int sumi = 0;
    for (int g = 0; g < 16; ++g) {
      const int h = g / 8, s = (g % 8) / 2, part = g % 2;
      const uint8_t* q = bw[i].qs + 32 * h + 16 * part;
      const uint8_t* hm = bw[i].hmask + 16 * part;
      const int bit = 4 * h + s;
      const int8_t* q8 = bx[i].qs + 16 * g;
      int sg = 0;
      for (int l = 0; l < 16; ++l) {
        sg += (((q[l] >> (2 * s)) & 3) - (((hm[l] >> bit) & 1) ? 0 : 4)) * q8[l];
      }
      sumi += (sc[g] - 32) * sg;
    }
    sum += fp16_to_fp32(bw[i].d) * bx[i].d * static_cast<float>(sumi);
  }
  return sum;
}

float dot_q5_K(int64_t n, const void* w, const void* x) {
  const auto* bw = static_cast<const BlockQ5_K*>(w);
  const auto* bx = static_cast<const BlockQ8K*>(x);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQKK; ++i) {
    int sumi = 0, summ = 0;
    const uint8_t* ql = bw[i].qs;
    const uint8_t* qh = bw[i].qh;
    const int8_t* q8 = bx[i].qs;
    for (int c = 0; c < 4; ++c, ql += 32, q8 += 64) {
      uint8_t sc_lo, m_lo, sc_hi, m_hi;
      q4k_scale_min(2 * c, bw[i].scales, &sc_lo, &m_lo);
      q4k_scale_min(2 * c + 1, bw[i].scales, &sc_hi, &m_hi);
      int s_lo = 0, s_hi = 0;
      for (int l = 0; l < 32; ++l) {
        s_lo += ((ql[l] & 0xF) | (((qh[l] >> (2 * c)) & 1) << 4)) * q8[l];
        s_hi += ((ql[l] >> 4) | (((qh[l] >> (2 * c + 1)) & 1) << 4)) * q8[l + 32];
      }
      sumi += sc_lo * s_lo + sc_hi * s_hi;
      summ += m_lo * bx[i].bsums32[2 * c] + m_hi * bx[i].bsums32[2 * c + 1];
    }
    sum += fp16_to_fp32(bw[i].d) * bx[i].d * static_cast<float>(sumi) -
           fp16_to_fp32(bw[i].dmin) * bx[i].d * static_cast<float>(summ);
  }
  return sum;
}

float dot_iq4_xs(int64_t n, const void* w, const void* x) {
  const auto* bw = static_cast<const BlockIQ4_XS*>(w);
  const auto* bx = static_cast<const BlockQ8K*>(x);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQKK; ++i) {
    int sumi = 0;
    for (int ib = 0; ib < 8; ++ib) {
      const uint8_t* qs = bw[i].qs + 16 * ib;
      const int8_t* q8 = bx[i].qs + 32 * ib;
      int s = 0;
      for (int j = 0; j < 16; ++j) {
        s += kIQ4NLValues[qs[j] & 0xF] * q8[j] + kIQ4NLValues[qs[j] >> 4] * q8[j + 16];
      }
      sumi += (iq4xs_scale(bw[i], ib) - 32) * s;
    }
    sum += fp16_to_fp32(bw[i].d) * bx[i].d * static_cast<float>(sumi);
  }
  return sum;
}

}  // namespace pv::kernels::cpu::scalar
