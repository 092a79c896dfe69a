// Portable scalar row-dot kernels and activation quantizers: the fallback on CPUs without
// AVX2 and the reference the AVX2 set is tested against (same integer block sums).
#include <cmath>

#include "kernels/cpu/matmul_kernels.h"
#include "kernels/quant/half.h"
#include "kernels/quant/quant_blocks.h"
#include "mutants/mutant.h"

namespace pv::kernels::cpu::scalar {
namespace {

// int8 codes of `n` activations against one f32 scale d = amax/127. A non-finite input
// makes the scale NaN, so the dot products that use it come out NaN rather than garbage.
float quantize_act_block(const float* x, int n, int8_t* q) {
  float amax = 0.0f, probe = 0.0f;
  for (int i = 0; i < n; ++i) {
    amax = std::fmax(amax, std::fabs(x[i]));
    probe += x[i] * 0.0f;  // NaN iff some x is inf or NaN
  }
  if (probe != 0.0f || std::isnan(probe)) {
    for (int i = 0; i < n; ++i) q[i] = 0;
    return std::nanf("");
  }
  const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
  const bool away = mutant::planted(mutant::Bug::Int8RoundAway);
  for (int i = 0; i < n; ++i) {
    // |x*id| <= 127 up to one rounding, so the clamp is only a guard.
    const float v = away ? std::round(x[i] * id) : std::nearbyint(x[i] * id);
    q[i] = static_cast<int8_t>(v > 127.0f ? 127.0f : (v < -127.0f ? -127.0f : v));
  }
  return amax / 127.0f;
}

// A float-type row (elements widened to f32 by `to_f32`) against f32 activations: eight
// running sums over the 8-aligned body; the result is the tail's sum plus the eight sums,
// in that order.
template <typename Elem, typename ToF32>
float dot_float(int64_t n, const Elem* a, const void* x, ToF32 to_f32) {
  const auto* b = static_cast<const float*>(x);
  float acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; ++k) acc[k] += to_f32(a[i + k]) * b[i + k];
  }
  float sum = 0.0f;
  for (; i < n; ++i) sum += to_f32(a[i]) * b[i];
  for (int k = 0; k < 8; ++k) sum += acc[k];
  return sum;
}

}  // namespace

void quantize_act_q8a(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ8A*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i) b[i].d = quantize_act_block(x + i * kQK, kQK, b[i].qs);
}

void quantize_act_q8k(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ8K*>(dst);
  for (int64_t i = 0; i < n / kQKK; ++i) {
    b[i].d = quantize_act_block(x + i * kQKK, kQKK, b[i].qs);
    for (int g = 0; g < kQKK / 16; ++g) {
      int s = 0;
      for (int l = 0; l < 16; ++l) s += b[i].qs[16 * g + l];
      b[i].bsums[g] = static_cast<int16_t>(s);
    }
    for (int j = 0; j < kQKK / 32; ++j) {
      b[i].bsums32[j] = static_cast<int16_t>(b[i].bsums[2 * j] + b[i].bsums[2 * j + 1]);
    }
  }
}

float dot_f32(int64_t n, const void* w, const void* x) {
  return dot_float(n, static_cast<const float*>(w), x, [](float v) { return v; });
}

float dot_f16(int64_t n, const void* w, const void* x) {
  return dot_float(n, static_cast<const uint16_t*>(w), x,
                   [](uint16_t h) { return fp16_to_fp32(h); });
}

float dot_bf16(int64_t n, const void* w, const void* x) {
  return dot_float(n, static_cast<const uint16_t*>(w), x,
                   [](uint16_t h) { return bf16_to_fp32(h); });
}

float dot_q8_0(int64_t n, const void* w, const void* x) {
  const auto* bw = static_cast<const BlockQ8_0*>(w);
  const auto* bx = static_cast<const BlockQ8A*>(x);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQK; ++i) {
    int isum = 0;
    for (int j = 0; j < kQK; ++j) isum += bw[i].qs[j] * bx[i].qs[j];
    sum += fp16_to_fp32(bw[i].d) * bx[i].d * static_cast<float>(isum);
  }
  return sum;
}

float dot_q4_0(int64_t n, const void* w, const void* x) {
  const auto* bw = static_cast<const BlockQ4_0*>(w);
  const auto* bx = static_cast<const BlockQ8A*>(x);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQK; ++i) {
    int isum = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      isum += ((bw[i].qs[j] & 0xF) - 8) * bx[i].qs[j];
      isum += ((bw[i].qs[j] >> 4) - 8) * bx[i].qs[j + kQK / 2];
    }
    sum += fp16_to_fp32(bw[i].d) * bx[i].d * static_cast<float>(isum);
  }
  return sum;
}

// sum_j d*sc_j*dx*S_j - dmin*m_j*dx*B_j with S_j = sum q4*q8 over sub-block j and B_j its
// activation sum (bsums32): the whole super-block is two integer sums and two f32 scales.
float dot_q4_K(int64_t n, const void* w, const void* x) {
  const auto* bw = static_cast<const BlockQ4_K*>(w);
  const auto* bx = static_cast<const BlockQ8K*>(x);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQKK; ++i) {
    int sumi = 0, summ = 0;
    const uint8_t* q4 = bw[i].qs;
    const int8_t* q8 = bx[i].qs;
    for (int c = 0; c < 4; ++c) {
      uint8_t sc_lo, m_lo, sc_hi, m_hi;
      q4k_scale_min(2 * c, bw[i].scales, &sc_lo, &m_lo);
      q4k_scale_min(2 * c + 1, bw[i].scales, &sc_hi, &m_hi);
      int s_lo = 0, s_hi = 0;
      for (int l = 0; l < 32; ++l) {
        s_lo += (q4[l] & 0xF) * q8[l];
        s_hi += (q4[l] >> 4) * q8[l + 32];
      }
      sumi += sc_lo * s_lo + sc_hi * s_hi;
      summ += m_lo * bx[i].bsums32[2 * c] + m_hi * bx[i].bsums32[2 * c + 1];
      q4 += 32;
      q8 += 64;
    }
    sum += fp16_to_fp32(bw[i].d) * bx[i].d * static_cast<float>(sumi) -
           fp16_to_fp32(bw[i].dmin) * bx[i].d * static_cast<float>(summ);
  }
  return sum;
}

// Levels are stored as q+32 in [0, 63]; the -32 is applied through the bsums.
float dot_q6_K(int64_t n, const void* w, const void* x) {
  const auto* bw = static_cast<const BlockQ6_K*>(w);
  const auto* bx = static_cast<const BlockQ8K*>(x);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQKK; ++i) {
    int group[16] = {};
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = bw[i].ql + 64 * h;
      const uint8_t* qh = bw[i].qh + 32 * h;
      const int8_t* q8 = bx[i].qs + 128 * h;
      int* g = group + 8 * h;
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        g[is + 0] += ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) * q8[l];
        g[is + 2] += ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) * q8[l + 32];
        g[is + 4] += ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) * q8[l + 64];
        g[is + 6] += ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) * q8[l + 96];
      }
    }
    int sumi = 0;
    for (int j = 0; j < 16; ++j) sumi += bw[i].scales[j] * (group[j] - 32 * bx[i].bsums[j]);
    sum += fp16_to_fp32(bw[i].d) * bx[i].d * static_cast<float>(sumi);
  }
  return sum;
}

}  // namespace pv::kernels::cpu::scalar
