// Internal to the AVX2 kernel files: target-attributed helpers. Every function here has
// internal linkage (static inline) and carries the AVX2 target itself, so including this
// header cannot leak AVX2 code into portable translation units through ODR merging.
#pragma once

#if defined(__x86_64__)

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#define PV_AVX2 __attribute__((target("avx2,fma,f16c")))
#define PV_AVX2_INLINE __attribute__((target("avx2,fma,f16c"), always_inline)) static inline

namespace pv::kernels::cpu::avx2 {

PV_AVX2_INLINE float hsum_ps(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

PV_AVX2_INLINE int hsum_epi32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

// 8 int32 partial sums of a signed x signed int8 product of 32 lanes. maddubs wants an
// unsigned operand, so the sign of `a` moves onto `b`; |a| <= 128 and |b| <= 127 keep the
// pairwise int16 sums (<= 32512) clear of saturation.
PV_AVX2_INLINE __m256i dot_i8(__m256i a, __m256i b) {
  const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a));
  return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

PV_AVX2_INLINE __m256 load_f16(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

PV_AVX2_INLINE __m256 load_bf16(const uint16_t* p) {
  const __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(h, 16));
}

PV_AVX2_INLINE float fp16_scalar(uint16_t h) { return _cvtsh_ss(h); }

// The 12 packed scale bytes of a Q4_K block as 8 six-bit scales (bytes 0..7 of *sc) and
// 8 mins (of *mn), with four 32-bit mask operations instead of eight per-sub-block
// extractions.
PV_AVX2_INLINE void unpack_q4_K_scales(const uint8_t* s, __m128i* sc, __m128i* mn) {
  uint32_t u0, u1, u2;
  std::memcpy(&u0, s, 4);
  std::memcpy(&u1, s + 4, 4);
  std::memcpy(&u2, s + 8, 4);
  const uint64_t sc_lo = u0 & 0x3f3f3f3fu;
  const uint64_t mn_lo = u1 & 0x3f3f3f3fu;
  const uint64_t sc_hi = (u2 & 0x0f0f0f0fu) | (((u0 >> 6) & 0x03030303u) << 4);
  const uint64_t mn_hi = ((u2 >> 4) & 0x0f0f0f0fu) | (((u1 >> 6) & 0x03030303u) << 4);
  *sc = _mm_cvtsi64_si128(static_cast<int64_t>(sc_lo | (sc_hi << 32)));
  *mn = _mm_cvtsi64_si128(static_cast<int64_t>(mn_lo | (mn_hi << 32)));
}

// Lanes 0 and 1: fp16 d and dmin (adjacent in the block) times the activation scale dx, each
// one f32 product as in the scalar kernel.
PV_AVX2_INLINE __m128 q4_K_d_dmin_times(const uint16_t* d_dmin, float dx) {
  uint32_t both;
  std::memcpy(&both, d_dmin, 4);
  return _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(both))), _mm_set1_ps(dx));
}

// pshufb control for Q6_K: in a vector holding 8 int16 scales per lane, the low lane
// broadcasts scale 2k and the high lane scale 2k+1 (the two 16-value groups of 32 values).
PV_AVX2_INLINE __m256i q6_K_scale_shuffle(int k) {
  return _mm256_set_m128i(_mm_set1_epi16(static_cast<int16_t>((4 * k + 2) | ((4 * k + 3) << 8))),
                          _mm_set1_epi16(static_cast<int16_t>((4 * k) | ((4 * k + 1) << 8))));
}

// The four 32-value vectors of 6-bit levels (0..63) of one Q6_K half: ql low/high nibbles
// of ql[0..31] and ql[32..63], each with its 2-bit field of qh[0..31] as bits 4-5.
PV_AVX2_INLINE void q6_K_unpack(const uint8_t* ql, const uint8_t* qh_ptr, __m256i m4, __m256i m2,
                                __m256i* q) {
  const __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
  const __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
  const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh_ptr));
  q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4));
  q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                         _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m2), 4));
  q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                         _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m2), 4));
  q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                         _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m2), 4));
}

}  // namespace pv::kernels::cpu::avx2

#endif  // __x86_64__
