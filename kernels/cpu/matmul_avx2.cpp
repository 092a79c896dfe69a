// AVX2 + FMA + F16C row-dot kernels and activation quantizers. Every function carries its
// own target attribute (the project is built without -march flags) and only runs after
// simd.cpp has checked the CPU; nothing here instantiates shared templates (the one
// template has internal linkage), so no AVX2-compiled inline function can leak into the
// portable code through ODR merging.
#if defined(__x86_64__)

#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "kernels/cpu/matmul_avx2_util.h"
#include "kernels/cpu/matmul_kernels.h"
#include "kernels/quant/half.h"
#include "kernels/quant/quant_blocks.h"

namespace pv::kernels::cpu::avx2 {
namespace {

// int8 codes of 8*k floats (k vectors) with d = amax/127; same arithmetic as the scalar
// quantizer (x * (127/amax), round to nearest even), so both produce identical codes.
PV_AVX2_INLINE float quantize_act_block(const float* x, int n, int8_t* q, int16_t* bsums) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 vmax = _mm256_setzero_ps(), probe = _mm256_setzero_ps();
  for (int i = 0; i < n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    vmax = _mm256_max_ps(vmax, _mm256_andnot_ps(sign, v));
    probe = _mm256_add_ps(probe, _mm256_mul_ps(v, _mm256_setzero_ps()));
  }
  const float p = hsum_ps(probe);
  if (p != 0.0f || std::isnan(p)) {
    std::memset(q, 0, static_cast<size_t>(n));
    if (bsums != nullptr) std::memset(bsums, 0, sizeof(int16_t) * static_cast<size_t>(n / 16));
    return std::nanf("");
  }
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  const float amax = _mm_cvtss_f32(m);
  const __m256 id = _mm256_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
  const __m256i lim = _mm256_set1_epi32(127);
  const __m256i nlim = _mm256_set1_epi32(-127);
  for (int i = 0; i < n; i += 32) {
    __m256i v[4];
    for (int k = 0; k < 4; ++k) {
      const __m256i r = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + i + 8 * k), id));
      v[k] = _mm256_max_epi32(nlim, _mm256_min_epi32(lim, r));
    }
    if (bsums != nullptr) {
      bsums[i / 16] = static_cast<int16_t>(hsum_epi32(_mm256_add_epi32(v[0], v[1])));
      bsums[i / 16 + 1] = static_cast<int16_t>(hsum_epi32(_mm256_add_epi32(v[2], v[3])));
    }
    // packs interleave the 128-bit lanes; the final permute restores element order.
    const __m256i p01 = _mm256_packs_epi32(v[0], v[1]);
    const __m256i p23 = _mm256_packs_epi32(v[2], v[3]);
    const __m256i p = _mm256_packs_epi16(p01, p23);
    const __m256i ordered =
        _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + i), ordered);
  }
  return amax / 127.0f;
}

// How a float-type row's elements become f32: eight at a time (load8) and one at a time
// (load1, the same value).
struct F32Row {
  using Elem = float;
  PV_AVX2_INLINE __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
  PV_AVX2_INLINE float load1(float v) { return v; }
};
struct F16Row {
  using Elem = uint16_t;
  PV_AVX2_INLINE __m256 load8(const uint16_t* p) { return load_f16(p); }
  PV_AVX2_INLINE float load1(uint16_t h) { return fp16_scalar(h); }
};
struct BF16Row {
  using Elem = uint16_t;
  PV_AVX2_INLINE __m256 load8(const uint16_t* p) { return load_bf16(p); }
  PV_AVX2_INLINE float load1(uint16_t h) {
    const uint32_t bits = static_cast<uint32_t>(h) << 16;
    float v;
    std::memcpy(&v, &bits, sizeof v);
    return v;
  }
};

// A float-type row against f32 activations: four FMA chains over 32-value steps, one over
// the remaining 8-value steps, then a scalar tail.
template <class Row>
PV_AVX2_INLINE float dot_float(int64_t n, const void* w, const void* x) {
  const auto* a = static_cast<const typename Row::Elem*>(w);
  const auto* b = static_cast<const float*>(x);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm256_fmadd_ps(Row::load8(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(Row::load8(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
    acc2 = _mm256_fmadd_ps(Row::load8(a + i + 16), _mm256_loadu_ps(b + i + 16), acc2);
    acc3 = _mm256_fmadd_ps(Row::load8(a + i + 24), _mm256_loadu_ps(b + i + 24), acc3);
  }
  for (; i + 8 <= n; i += 8) {
    acc0 = _mm256_fmadd_ps(Row::load8(a + i), _mm256_loadu_ps(b + i), acc0);
  }
  float sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
  for (; i < n; ++i) sum += Row::load1(a[i]) * b[i];
  return sum;
}

}  // namespace

PV_AVX2 void quantize_act_q8a(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ8A*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i) {
    b[i].d = quantize_act_block(x + i * kQK, kQK, b[i].qs, nullptr);
  }
}

PV_AVX2 void quantize_act_q8k(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ8K*>(dst);
  for (int64_t i = 0; i < n / kQKK; ++i) {
    b[i].d = quantize_act_block(x + i * kQKK, kQKK, b[i].qs, b[i].bsums);
    for (int j = 0; j < kQKK / 32; ++j) {
      b[i].bsums32[j] = static_cast<int16_t>(b[i].bsums[2 * j] + b[i].bsums[2 * j + 1]);
    }
  }
}

PV_AVX2 float dot_f32(int64_t n, const void* w, const void* x) {
  return dot_float<F32Row>(n, w, x);
}

PV_AVX2 float dot_f16(int64_t n, const void* w, const void* x) {
  return dot_float<F16Row>(n, w, x);
}

PV_AVX2 float dot_bf16(int64_t n, const void* w, const void* x) {
  return dot_float<BF16Row>(n, w, x);
}

PV_AVX2 float dot_q8_0(int64_t n, const void* w, const void* x) {
  const auto* bw = static_cast<const BlockQ8_0*>(w);
  const auto* bx = static_cast<const BlockQ8A*>(x);
  const int64_t nb = n / kQK;
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    const __m256i p0 = dot_i8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(bw[i].qs)),
                              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bx[i].qs)));
    const __m256i p1 = dot_i8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(bw[i + 1].qs)),
                              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bx[i + 1].qs)));
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(fp16_scalar(bw[i].d) * bx[i].d), _mm256_cvtepi32_ps(p0),
                           acc0);
    acc1 = _mm256_fmadd_ps(_mm256_set1_ps(fp16_scalar(bw[i + 1].d) * bx[i + 1].d),
                           _mm256_cvtepi32_ps(p1), acc1);
  }
  for (; i < nb; ++i) {
    const __m256i p0 = dot_i8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(bw[i].qs)),
                              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bx[i].qs)));
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(fp16_scalar(bw[i].d) * bx[i].d), _mm256_cvtepi32_ps(p0),
                           acc0);
  }
  return hsum_ps(_mm256_add_ps(acc0, acc1));
}

PV_AVX2_INLINE __m256i unpack_q4_0(const uint8_t* qs) {
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(b, 4), b);  // hi nibbles: values 16..31
  return _mm256_sub_epi8(_mm256_and_si256(both, _mm256_set1_epi8(0x0F)), _mm256_set1_epi8(8));
}

PV_AVX2 float dot_q4_0(int64_t n, const void* w, const void* x) {
  const auto* bw = static_cast<const BlockQ4_0*>(w);
  const auto* bx = static_cast<const BlockQ8A*>(x);
  const int64_t nb = n / kQK;
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    const __m256i p0 = dot_i8(unpack_q4_0(bw[i].qs),
                              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bx[i].qs)));
    const __m256i p1 = dot_i8(unpack_q4_0(bw[i + 1].qs),
                              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bx[i + 1].qs)));
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(fp16_scalar(bw[i].d) * bx[i].d), _mm256_cvtepi32_ps(p0),
                           acc0);
    acc1 = _mm256_fmadd_ps(_mm256_set1_ps(fp16_scalar(bw[i + 1].d) * bx[i + 1].d),
                           _mm256_cvtepi32_ps(p1), acc1);
  }
  for (; i < nb; ++i) {
    const __m256i p0 = dot_i8(unpack_q4_0(bw[i].qs),
                              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bx[i].qs)));
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(fp16_scalar(bw[i].d) * bx[i].d), _mm256_cvtepi32_ps(p0),
                           acc0);
  }
  return hsum_ps(_mm256_add_ps(acc0, acc1));
}

PV_AVX2 float dot_q4_K(int64_t n, const void* w, const void* x) {
  const auto* bw = static_cast<const BlockQ4_K*>(w);
  const auto* bx = static_cast<const BlockQ8K*>(x);
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  // pshufb controls broadcasting int16 scale 2c (lo) / 2c+1 (hi) of the 8 in each lane.
  __m256i bcast[8];
  for (int j = 0; j < 8; ++j) {
    bcast[j] = _mm256_set1_epi16(static_cast<int16_t>((2 * j) | ((2 * j + 1) << 8)));
  }
  __m256 acc = _mm256_setzero_ps();
  __m128 acc_min = _mm_setzero_ps();
  for (int64_t i = 0; i < n / kQKK; ++i) {
    __m128i sc8, mn8;
    unpack_q4_K_scales(bw[i].scales, &sc8, &mn8);
    const __m128 dd = q4_K_d_dmin_times(&bw[i].d, bx[i].d);  // [d*dx, dmin*dx]
    // Min term: sum_j m_j * bsums32[j], kept as 4 f32 lanes until the end.
    const __m128i bs = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bx[i].bsums32));
    acc_min = _mm_fmadd_ps(_mm_permute_ps(dd, 0x55),
                           _mm_cvtepi32_ps(_mm_madd_epi16(_mm_cvtepu8_epi16(mn8), bs)), acc_min);
    const __m128i sc128 = _mm_cvtepu8_epi16(sc8);
    const __m256i scales = _mm256_set_m128i(sc128, sc128);
    __m256i sumi = _mm256_setzero_si256();
    const uint8_t* q4 = bw[i].qs;
    const int8_t* q8 = bx[i].qs;
    for (int c = 0; c < 4; ++c) {
      const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q4 + 32 * c));
      const __m256i lo = _mm256_and_si256(b, m4);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(b, 4), m4);
      const __m256i plo = _mm256_maddubs_epi16(
          lo, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q8 + 64 * c)));
      const __m256i phi = _mm256_maddubs_epi16(
          hi, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q8 + 64 * c + 32)));
      const __m256i slo = _mm256_shuffle_epi8(scales, bcast[2 * c]);
      const __m256i shi = _mm256_shuffle_epi8(scales, bcast[2 * c + 1]);
      sumi = _mm256_add_epi32(
          sumi, _mm256_add_epi32(_mm256_madd_epi16(plo, slo), _mm256_madd_epi16(phi, shi)));
    }
    acc = _mm256_fmadd_ps(_mm256_broadcastss_ps(dd), _mm256_cvtepi32_ps(sumi), acc);
  }
  __m128 m = _mm_add_ps(acc_min, _mm_movehl_ps(acc_min, acc_min));
  m = _mm_add_ss(m, _mm_movehdup_ps(m));
  return hsum_ps(acc) - _mm_cvtss_f32(m);
}

PV_AVX2 float dot_q6_K(int64_t n, const void* w, const void* x) {
  const auto* bw = static_cast<const BlockQ6_K*>(w);
  const auto* bx = static_cast<const BlockQ8K*>(x);
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  const __m256i m2 = _mm256_set1_epi8(0x03);
  __m256i bcast[4];
  for (int k = 0; k < 4; ++k) bcast[k] = q6_K_scale_shuffle(k);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQKK; ++i) {
    const int8_t* sc = bw[i].scales;
    // Offset term 32 * sum_j sc_j * bsums_j, subtracted from the integer sum up front.
    const __m256i sc16 =
        _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc)));
    const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bx[i].bsums));
    __m256i sumi =
        _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(_mm256_madd_epi16(sc16, bs), 5));
    for (int h = 0; h < 2; ++h) {
      const __m256i sch = h == 0 ? _mm256_permute2x128_si256(sc16, sc16, 0x00)
                                 : _mm256_permute2x128_si256(sc16, sc16, 0x11);
      const int8_t* q8 = bx[i].qs + 128 * h;
      __m256i q[4];
      q6_K_unpack(bw[i].ql + 64 * h, bw[i].qh + 32 * h, m4, m2, q);
      for (int k = 0; k < 4; ++k) {
        const __m256i p = _mm256_maddubs_epi16(
            q[k], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q8 + 32 * k)));
        // Lanes 0..7 hold values 0..15 of this 32 (scale 2k), lanes 8..15 values 16..31.
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, _mm256_shuffle_epi8(sch, bcast[k])));
      }
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(fp16_scalar(bw[i].d) * bx[i].d), _mm256_cvtepi32_ps(sumi),
                          acc);
  }
  return hsum_ps(acc);
}

}  // namespace pv::kernels::cpu::avx2

#endif  // __x86_64__
