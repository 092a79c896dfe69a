// AVX2 row-dot kernels of the llama.cpp-mix types: Q4_1, Q5_0, Q5_1, IQ4_NL (against Q8A
// activations) and Q2_K, Q3_K, Q5_K, IQ4_XS (against Q8K). Same integer block sums as the
// scalar kernels in matmul_scalar_ext.cpp; only the order of the f32 accumulation differs.
#if defined(__x86_64__)

#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/matmul_avx2_util.h"
#include "kernels/cpu/matmul_kernels.h"
#include "kernels/quant/half.h"
#include "kernels/quant/quant_blocks.h"

namespace pv::kernels::cpu::avx2 {
namespace {

PV_AVX2_INLINE __m256i load32(const void* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

// The 32 nibbles of 16 bytes in value order: low nibbles are values 0..15, high 16..31.
PV_AVX2_INLINE __m256i nibbles32(const uint8_t* qs) {
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(b, 4), b), _mm256_set1_epi8(0x0F));
}

// 0xFF in byte j where bit j of the little-endian 32-bit word at p is set, else 0x00.
PV_AVX2_INLINE __m256i bits_to_bytes(const uint8_t* p) {
  uint32_t bits;
  std::memcpy(&bits, p, 4);
  const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101,
                                         0x0000000000000000);
  const __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(bits)), shuf);
  const __m256i others = _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe);  // all bits but bit j%8
  return _mm256_cmpeq_epi8(_mm256_or_si256(bytes, others), _mm256_set1_epi64x(-1));
}

// 8 int32 partial sums of unsigned (0..31) x signed int8 over 32 lanes.
PV_AVX2_INLINE __m256i dot_u8_i8(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

PV_AVX2_INLINE __m256i q8_sums(__m256i s) { return dot_u8_i8(_mm256_set1_epi8(1), s); }

// Blocks with a scale and an added offset (Q4_1, Q5_1): sum d*dx*S + m*dx*Q per block, S the
// level sum and Q the activation code sum, in two f32 vector accumulators. Row::levels gives
// a block's 32 unsigned levels in value order.
template <typename Row>
PV_AVX2_INLINE float dot_affine32(int64_t n, const void* w, const void* x) {
  using Block = typename Row::Block;
  const auto* bw = static_cast<const Block*>(w);
  const auto* bx = static_cast<const BlockQ8A*>(x);
  __m256 acc = _mm256_setzero_ps(), acc_m = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK; ++i) {
    const __m256i q8 = load32(bx[i].qs);
    const __m256i s = dot_u8_i8(Row::levels(bw[i]), q8);
    acc =
        _mm256_fmadd_ps(_mm256_set1_ps(fp16_scalar(bw[i].d) * bx[i].d), _mm256_cvtepi32_ps(s), acc);
    acc_m = _mm256_fmadd_ps(_mm256_set1_ps(fp16_scalar(bw[i].m) * bx[i].d),
                            _mm256_cvtepi32_ps(q8_sums(q8)), acc_m);
  }
  return hsum_ps(_mm256_add_ps(acc, acc_m));
}

struct Q4_1Row {
  using Block = BlockQ4_1;
  PV_AVX2_INLINE __m256i levels(const BlockQ4_1& b) { return nibbles32(b.qs); }
};
struct Q5_1Row {
  using Block = BlockQ5_1;
  PV_AVX2_INLINE __m256i levels(const BlockQ5_1& b) {
    const __m256i hi = _mm256_and_si256(bits_to_bytes(b.qh), _mm256_set1_epi8(0x10));
    return _mm256_or_si256(nibbles32(b.qs), hi);
  }
};

// Q5_0 levels - 16 as int8 times the activation codes: the nibble with 0xF0 or-ed in where
// the high bit is clear is exactly level - 16.
PV_AVX2_INLINE __m256 q5_0_block(const BlockQ5_0& w, const BlockQ8A& x) {
  const __m256i hi_clear = _mm256_andnot_si256(bits_to_bytes(w.qh), _mm256_set1_epi8(-16));
  const __m256i v = _mm256_or_si256(nibbles32(w.qs), hi_clear);
  return _mm256_cvtepi32_ps(dot_i8(v, load32(x.qs)));
}

// The IQ4_NL codebook in both 128-bit lanes, for pshufb lookups.
PV_AVX2_INLINE __m256i iq4_table() {
  const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(kIQ4NLValues));
  return _mm256_set_m128i(t, t);
}

}  // namespace

PV_AVX2 float dot_q4_1(int64_t n, const void* w, const void* x) {
  return dot_affine32<Q4_1Row>(n, w, x);
}

PV_AVX2 float dot_q5_1(int64_t n, const void* w, const void* x) {
  return dot_affine32<Q5_1Row>(n, w, x);
}

PV_AVX2 float dot_q5_0(int64_t n, const void* w, const void* x) {
  const auto* bw = static_cast<const BlockQ5_0*>(w);
  const auto* bx = static_cast<const BlockQ8A*>(x);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  const int64_t nb = n / kQK;
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(fp16_scalar(bw[i].d) * bx[i].d), q5_0_block(bw[i], bx[i]),
                           acc0);
    acc1 = _mm256_fmadd_ps(_mm256_set1_ps(fp16_scalar(bw[i + 1].d) * bx[i + 1].d),
                           q5_0_block(bw[i + 1], bx[i + 1]), acc1);
  }
  for (; i < nb; ++i) {
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(fp16_scalar(bw[i].d) * bx[i].d), q5_0_block(bw[i], bx[i]),
                           acc0);
  }
  return hsum_ps(_mm256_add_ps(acc0, acc1));
}

PV_AVX2 float dot_iq4_nl(int64_t n, const void* w, const void* x) {
  const auto* bw = static_cast<const BlockIQ4_NL*>(w);
  const auto* bx = static_cast<const BlockQ8A*>(x);
  const __m256i table = iq4_table();
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK; ++i) {
    const __m256i v = _mm256_shuffle_epi8(table, nibbles32(bw[i].qs));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(fp16_scalar(bw[i].d) * bx[i].d),
                          _mm256_cvtepi32_ps(dot_i8(v, load32(bx[i].qs))), acc);
  }
  return hsum_ps(acc);
}

// Q4_K's kernel with the fifth bit: chunk c's low-nibble values take bit 2c of qh, the
// high-nibble values bit 2c+1.
// The 2-bit K types lay a super-block out as two halves of 128 values; half h keeps its
// codes in 32 bytes, shift s of those bytes gives values 128h + 32s .. +32, whose first 16
// form group g = 8h + 2s and the next 16 group g + 1. A madd against `group_scales(S, s)`
// weighs the 16 int16 pair sums of one shift by their two groups' scales, where S holds
// the half's 8 int16 scales in both 128-bit lanes.
PV_AVX2_INLINE __m256i group_scales(__m256i S, int s) {
  const __m128i lo = _mm_set1_epi16(static_cast<int16_t>((4 * s) | ((4 * s + 1) << 8)));
  const __m128i hi = _mm_set1_epi16(static_cast<int16_t>((4 * s + 2) | ((4 * s + 3) << 8)));
  return _mm256_shuffle_epi8(S, _mm256_set_m128i(hi, lo));
}

PV_AVX2_INLINE __m256i both_lanes(__m128i v) { return _mm256_set_m128i(v, v); }

PV_AVX2 float dot_q2_K(int64_t n, const void* w, const void* x) {
  const auto* bw = static_cast<const BlockQ2_K*>(w);
  const auto* bx = static_cast<const BlockQ8K*>(x);
  const __m256i m3 = _mm256_set1_epi8(3);
  const __m128i m4 = _mm_set1_epi8(0x0F);
  __m256 acc = _mm256_setzero_ps(), acc_min = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQKK; ++i) {
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bw[i].scales));
    const __m128i sc = _mm_and_si128(raw, m4);
    const __m128i mn = _mm_and_si128(_mm_srli_epi16(raw, 4), m4);
    // dmin * dx * sum_g min_g * bsums_g
    const __m256i pm = _mm256_madd_epi16(_mm256_cvtepu8_epi16(mn), load32(bx[i].bsums));
    const __m256i scales[2] = {both_lanes(_mm_cvtepu8_epi16(sc)),
                               both_lanes(_mm_cvtepu8_epi16(_mm_srli_si128(sc, 8)))};
    __m256i sumi = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i q = load32(bw[i].qs + 32 * h);
      for (int s = 0; s < 4; ++s) {
        const __m256i v = _mm256_and_si256(_mm256_srli_epi16(q, 2 * s), m3);
        const __m256i p = _mm256_maddubs_epi16(v, load32(bx[i].qs + 128 * h + 32 * s));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, group_scales(scales[h], s)));
      }
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(fp16_scalar(bw[i].d) * bx[i].d), _mm256_cvtepi32_ps(sumi),
                          acc);
    acc_min = _mm256_fmadd_ps(_mm256_set1_ps(fp16_scalar(bw[i].dmin) * bx[i].d),
                              _mm256_cvtepi32_ps(pm), acc_min);
  }
  return hsum_ps(acc) - hsum_ps(acc_min);
}

// Q3_K: value = 2-bit code - 4 unless its hmask bit (bit 4h + s of byte l, l the value's
// index within its 32) is set. Both unsigned parts go through maddubs: code . q8 minus
// (4 where the bit is clear) . q8.
PV_AVX2 float dot_q3_K(int64_t n, const void* w, const void* x) {
  const auto* bw = static_cast<const BlockQ3_K*>(w);
  const auto* bx = static_cast<const BlockQ8K*>(x);
  const __m256i m3 = _mm256_set1_epi8(3);
  const __m256i m1 = _mm256_set1_epi8(1);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQKK; ++i) {
    int sc[16];
    q3k_scales(bw[i].scales, sc);
    const __m256i scales[2] = {
        both_lanes(
            _mm_setr_epi16(static_cast<int16_t>(sc[0] - 32), static_cast<int16_t>(sc[1] - 32),
                           static_cast<int16_t>(sc[2] - 32), static_cast<int16_t>(sc[3] - 32),
                           static_cast<int16_t>(sc[4] - 32), static_cast<int16_t>(sc[5] - 32),
                           static_cast<int16_t>(sc[6] - 32), static_cast<int16_t>(sc[7] - 32))),
        both_lanes(
            _mm_setr_epi16(static_cast<int16_t>(sc[8] - 32), static_cast<int16_t>(sc[9] - 32),
                           static_cast<int16_t>(sc[10] - 32), static_cast<int16_t>(sc[11] - 32),
                           static_cast<int16_t>(sc[12] - 32), static_cast<int16_t>(sc[13] - 32),
                           static_cast<int16_t>(sc[14] - 32), static_cast<int16_t>(sc[15] - 32)))};
    const __m256i hm = load32(bw[i].hmask);
    __m256i sumi = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i q = load32(bw[i].qs + 32 * h);
      for (int s = 0; s < 4; ++s) {
        const __m256i v = _mm256_and_si256(_mm256_srli_epi16(q, 2 * s), m3);
        const __m256i clear =
            _mm256_xor_si256(_mm256_and_si256(_mm256_srli_epi16(hm, 4 * h + s), m1), m1);
        const __m256i q8 = load32(bx[i].qs + 128 * h + 32 * s);
        const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(v, q8),
                                           _mm256_maddubs_epi16(_mm256_slli_epi16(clear, 2), q8));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, group_scales(scales[h], s)));
      }
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(fp16_scalar(bw[i].d) * bx[i].d), _mm256_cvtepi32_ps(sumi),
                          acc);
  }
  return hsum_ps(acc);
}

PV_AVX2 float dot_q5_K(int64_t n, const void* w, const void* x) {
  const auto* bw = static_cast<const BlockQ5_K*>(w);
  const auto* bx = static_cast<const BlockQ8K*>(x);
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  const __m256i m1 = _mm256_set1_epi8(0x01);
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
    const __m128i bs = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bx[i].bsums32));
    acc_min = _mm_fmadd_ps(_mm_permute_ps(dd, 0x55),
                           _mm_cvtepi32_ps(_mm_madd_epi16(_mm_cvtepu8_epi16(mn8), bs)), acc_min);
    const __m128i sc128 = _mm_cvtepu8_epi16(sc8);
    const __m256i scales = _mm256_set_m128i(sc128, sc128);
    __m256i sumi = _mm256_setzero_si256();
    __m256i qh = load32(bw[i].qh);
    for (int c = 0; c < 4; ++c) {
      const __m256i b = load32(bw[i].qs + 32 * c);
      const __m256i h_lo = _mm256_slli_epi16(_mm256_and_si256(qh, m1), 4);
      const __m256i h_hi = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 1), m1), 4);
      qh = _mm256_srli_epi16(qh, 2);
      const __m256i lo = _mm256_or_si256(_mm256_and_si256(b, m4), h_lo);
      const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b, 4), m4), h_hi);
      const __m256i plo = _mm256_maddubs_epi16(lo, load32(bx[i].qs + 64 * c));
      const __m256i phi = _mm256_maddubs_epi16(hi, load32(bx[i].qs + 64 * c + 32));
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

PV_AVX2 float dot_iq4_xs(int64_t n, const void* w, const void* x) {
  const auto* bw = static_cast<const BlockIQ4_XS*>(w);
  const auto* bx = static_cast<const BlockQ8K*>(x);
  const __m256i table = iq4_table();
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQKK; ++i) {
    __m256i sumi = _mm256_setzero_si256();
    for (int ib = 0; ib < 8; ++ib) {
      const __m256i v = _mm256_shuffle_epi8(table, nibbles32(bw[i].qs + 16 * ib));
      const __m256i p = dot_i8(v, load32(bx[i].qs + 32 * ib));
      sumi = _mm256_add_epi32(
          sumi, _mm256_mullo_epi32(p, _mm256_set1_epi32(iq4xs_scale(bw[i], ib) - 32)));
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(fp16_scalar(bw[i].d) * bx[i].d), _mm256_cvtepi32_ps(sumi),
                          acc);
  }
  return hsum_ps(acc);
}

}  // namespace pv::kernels::cpu::avx2

#endif  // __x86_64__
