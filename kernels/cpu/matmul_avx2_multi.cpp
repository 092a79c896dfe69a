// AVX2 multi-token row dots for prefill (T > 1): one pass over a weight row serves up to four
// tokens, so the weight unpacking (nibble split, 6-bit level assembly, scale broadcasts) is
// done once per block instead of once per token. Each token's arithmetic is the single-token
// kernel's, operation for operation (same integer sums, same f32 accumulation order), so
// matmul's results do not depend on how tokens are grouped.
#if defined(__x86_64__)

#include "kernels/cpu/matmul_avx2_util.h"
#include "kernels/cpu/matmul_kernels.h"
#include "kernels/quant/quant_blocks.h"

namespace pv::kernels::cpu::avx2 {
namespace {

// One Q8_0 block against NT tokens' activation blocks: |w| and the sign mask computed once.
template <int NT>
PV_AVX2_INLINE void q8_0_block(const BlockQ8_0& bw, const BlockQ8A* const* bx, int64_t i,
                               __m256* acc) {
  const __m256i qw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bw.qs));
  const __m256i aw = _mm256_sign_epi8(qw, qw);
  const float dw = fp16_scalar(bw.d);
  for (int t = 0; t < NT; ++t) {
    const __m256i qx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bx[t][i].qs));
    const __m256i p16 = _mm256_maddubs_epi16(aw, _mm256_sign_epi8(qx, qw));
    const __m256i p = _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
    acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(dw * bx[t][i].d), _mm256_cvtepi32_ps(p), acc[t]);
  }
}

template <int NT>
PV_AVX2_INLINE void dot_q8_0_multi(int64_t n, const void* w, const uint8_t* act, size_t stride,
                                   float* out) {
  const auto* bw = static_cast<const BlockQ8_0*>(w);
  const BlockQ8A* bx[NT];
  for (int t = 0; t < NT; ++t) bx[t] = reinterpret_cast<const BlockQ8A*>(act + stride * t);
  const int64_t nb = n / kQK;
  __m256 acc0[NT], acc1[NT];
  for (int t = 0; t < NT; ++t) acc0[t] = acc1[t] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    q8_0_block<NT>(bw[i], bx, i, acc0);
    q8_0_block<NT>(bw[i + 1], bx, i + 1, acc1);
  }
  for (; i < nb; ++i) q8_0_block<NT>(bw[i], bx, i, acc0);
  for (int t = 0; t < NT; ++t) out[t] = hsum_ps(_mm256_add_ps(acc0[t], acc1[t]));
}

template <int NT>
PV_AVX2_INLINE void dot_q4_K_multi(int64_t n, const void* w, const uint8_t* act, size_t stride,
                                   float* out) {
  const auto* bw = static_cast<const BlockQ4_K*>(w);
  const BlockQ8K* bx[NT];
  for (int t = 0; t < NT; ++t) bx[t] = reinterpret_cast<const BlockQ8K*>(act + stride * t);
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  __m256i bcast[8];
  for (int j = 0; j < 8; ++j) {
    bcast[j] = _mm256_set1_epi16(static_cast<int16_t>((2 * j) | ((2 * j + 1) << 8)));
  }
  __m256 acc[NT];
  __m128 acc_min[NT];
  for (int t = 0; t < NT; ++t) {
    acc[t] = _mm256_setzero_ps();
    acc_min[t] = _mm_setzero_ps();
  }
  for (int64_t i = 0; i < n / kQKK; ++i) {
    __m128i sc8, mn8;
    unpack_q4_K_scales(bw[i].scales, &sc8, &mn8);
    const __m128i mins = _mm_cvtepu8_epi16(mn8);
    __m128 dd[NT];
    __m256i sumi[NT];
    for (int t = 0; t < NT; ++t) {
      dd[t] = q4_K_d_dmin_times(&bw[i].d, bx[t][i].d);
      const __m128i bs = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bx[t][i].bsums32));
      acc_min[t] = _mm_fmadd_ps(_mm_permute_ps(dd[t], 0x55),
                                _mm_cvtepi32_ps(_mm_madd_epi16(mins, bs)), acc_min[t]);
      sumi[t] = _mm256_setzero_si256();
    }
    const __m128i sc128 = _mm_cvtepu8_epi16(sc8);
    const __m256i scales = _mm256_set_m128i(sc128, sc128);
    for (int c = 0; c < 4; ++c) {
      const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bw[i].qs + 32 * c));
      const __m256i lo = _mm256_and_si256(b, m4);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(b, 4), m4);
      const __m256i slo = _mm256_shuffle_epi8(scales, bcast[2 * c]);
      const __m256i shi = _mm256_shuffle_epi8(scales, bcast[2 * c + 1]);
      for (int t = 0; t < NT; ++t) {
        const int8_t* q8 = bx[t][i].qs + 64 * c;
        const __m256i plo =
            _mm256_maddubs_epi16(lo, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q8)));
        const __m256i phi =
            _mm256_maddubs_epi16(hi, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q8 + 32)));
        sumi[t] = _mm256_add_epi32(
            sumi[t], _mm256_add_epi32(_mm256_madd_epi16(plo, slo), _mm256_madd_epi16(phi, shi)));
      }
    }
    for (int t = 0; t < NT; ++t) {
      acc[t] = _mm256_fmadd_ps(_mm256_broadcastss_ps(dd[t]), _mm256_cvtepi32_ps(sumi[t]), acc[t]);
    }
  }
  for (int t = 0; t < NT; ++t) {
    __m128 m = _mm_add_ps(acc_min[t], _mm_movehl_ps(acc_min[t], acc_min[t]));
    m = _mm_add_ss(m, _mm_movehdup_ps(m));
    out[t] = hsum_ps(acc[t]) - _mm_cvtss_f32(m);
  }
}

template <int NT>
PV_AVX2_INLINE void dot_q6_K_multi(int64_t n, const void* w, const uint8_t* act, size_t stride,
                                   float* out) {
  const auto* bw = static_cast<const BlockQ6_K*>(w);
  const BlockQ8K* bx[NT];
  for (int t = 0; t < NT; ++t) bx[t] = reinterpret_cast<const BlockQ8K*>(act + stride * t);
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  const __m256i m2 = _mm256_set1_epi8(0x03);
  __m256i bcast[4];
  for (int k = 0; k < 4; ++k) {
    bcast[k] = q6_K_scale_shuffle(k);
  }
  __m256 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQKK; ++i) {
    const __m256i sc16 =
        _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bw[i].scales)));
    __m256i sumi[NT];
    for (int t = 0; t < NT; ++t) {
      const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bx[t][i].bsums));
      sumi[t] = _mm256_sub_epi32(_mm256_setzero_si256(),
                                 _mm256_slli_epi32(_mm256_madd_epi16(sc16, bs), 5));
    }
    for (int h = 0; h < 2; ++h) {
      const __m256i sch = h == 0 ? _mm256_permute2x128_si256(sc16, sc16, 0x00)
                                 : _mm256_permute2x128_si256(sc16, sc16, 0x11);
      __m256i q[4];
      q6_K_unpack(bw[i].ql + 64 * h, bw[i].qh + 32 * h, m4, m2, q);
      for (int k = 0; k < 4; ++k) {
        const __m256i s = _mm256_shuffle_epi8(sch, bcast[k]);
        for (int t = 0; t < NT; ++t) {
          const int8_t* q8 = bx[t][i].qs + 128 * h + 32 * k;
          const __m256i p =
              _mm256_maddubs_epi16(q[k], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q8)));
          sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(p, s));
        }
      }
    }
    for (int t = 0; t < NT; ++t) {
      acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(fp16_scalar(bw[i].d) * bx[t][i].d),
                               _mm256_cvtepi32_ps(sumi[t]), acc[t]);
    }
  }
  for (int t = 0; t < NT; ++t) out[t] = hsum_ps(acc[t]);
}

template <void (*K1)(int64_t, const void*, const uint8_t*, size_t, float*),
          void (*K2)(int64_t, const void*, const uint8_t*, size_t, float*),
          void (*K3)(int64_t, const void*, const uint8_t*, size_t, float*),
          void (*K4)(int64_t, const void*, const uint8_t*, size_t, float*)>
PV_AVX2_INLINE void by_count(int64_t n, const void* w, const uint8_t* act, size_t stride, int nt,
                             float* out) {
  switch (nt) {
    case 1:
      return K1(n, w, act, stride, out);
    case 2:
      return K2(n, w, act, stride, out);
    case 3:
      return K3(n, w, act, stride, out);
    default:
      return K4(n, w, act, stride, out);
  }
}

}  // namespace

PV_AVX2 void dot_q8_0_x4(int64_t n, const void* w, const uint8_t* act, size_t stride, int nt,
                         float* out) {
  by_count<dot_q8_0_multi<1>, dot_q8_0_multi<2>, dot_q8_0_multi<3>, dot_q8_0_multi<4>>(
      n, w, act, stride, nt, out);
}

PV_AVX2 void dot_q4_K_x4(int64_t n, const void* w, const uint8_t* act, size_t stride, int nt,
                         float* out) {
  by_count<dot_q4_K_multi<1>, dot_q4_K_multi<2>, dot_q4_K_multi<3>, dot_q4_K_multi<4>>(
      n, w, act, stride, nt, out);
}

PV_AVX2 void dot_q6_K_x4(int64_t n, const void* w, const uint8_t* act, size_t stride, int nt,
                         float* out) {
  by_count<dot_q6_K_multi<1>, dot_q6_K_multi<2>, dot_q6_K_multi<3>, dot_q6_K_multi<4>>(
      n, w, act, stride, nt, out);
}

}  // namespace pv::kernels::cpu::avx2

#endif  // __x86_64__
