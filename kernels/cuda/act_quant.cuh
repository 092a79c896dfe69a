// Device side of the int8 activation path for block weights: x quantized exactly as the
// CPU backend does it (kernels/cpu quantize_act_block: one f32 scale d = amax/127 per
// block of 32 values for Q8_0/Q4_0 weights, per 256 for Q4_K/Q6_K; codes round(x*127/amax)
// to nearest even), and one lane's share of a weight block dotted with those codes by dp4a
// in the CPU kernel's association, (d_w * d_x) * integer sum. Both backends therefore sum
// the same integers; only the order of the f32 block sums differs.
//
// A block of kValues values is split over kParts consecutive lanes ("parts"); a lane owns
// kGroups groups of 4 consecutive values (group_pos() gives where). Every type pairs its
// weight block with one activation block, so the lanes sharing a scale are exactly the
// kParts lanes of a block and the scale's amax is a shuffle among them.
#pragma once

#include <cstdint>

#include "kernels/cuda/decode.cuh"

namespace pv::kernels::cuda {

// The codes of the N values v[] this lane owns, packed 4 per word (value i in byte i%4 of
// word i/4), against the scale shared by the G lanes of its activation block. All 32
// lanes must call it (shuffles). A non-finite value anywhere in the block makes the scale
// NaN and the codes 0, as on the CPU, so the dot products come out NaN, not garbage.
template <int N, int G>
__device__ __forceinline__ float quantize_act(const float (&v)[N], uint32_t (&q)[N / 4]) {
  float amax = 0.f, probe = 0.f;
#pragma unroll
  for (int i = 0; i < N; ++i) {
    amax = fmaxf(amax, fabsf(v[i]));
    probe += v[i] * 0.f;  // NaN iff some value is inf or NaN
  }
#pragma unroll
  for (int o = 1; o < G; o <<= 1) {
    amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
    probe += __shfl_xor_sync(0xffffffffu, probe, o);
  }
  if (probe != 0.f || isnan(probe)) {
#pragma unroll
    for (int k = 0; k < N / 4; ++k) q[k] = 0;
    return __int_as_float(0x7fc00000);
  }
  // IEEE division and an unfused multiply: the same roundings as the CPU quantizer.
  const float id = amax > 0.f ? __fdiv_rn(127.f, amax) : 0.f;
#pragma unroll
  for (int k = 0; k < N / 4; ++k) {
    uint32_t word = 0;
#pragma unroll
    for (int b = 0; b < 4; ++b) {
      const int r = min(127, max(-127, __float2int_rn(__fmul_rn(v[4 * k + b], id))));
      word |= (static_cast<uint32_t>(r) & 0xffu) << (8 * b);
    }
    q[k] = word;
  }
  return __fdiv_rn(amax, 127.f);
}

__device__ __forceinline__ int dp4a(uint32_t a, uint32_t b, int c) {
  return __dp4a(static_cast<int>(a), static_cast<int>(b), c);
}
__device__ __forceinline__ int byte_sum(uint32_t q) { return dp4a(q, 0x01010101u, 0); }

// One lane's activation codes for one block: q[g] packs the 4 codes of group g (value
// group_pos(part, g) + b in byte b), gsum[g] their sum (the offset and min terms).
template <class Q>
struct Act {
  uint32_t q[Q::kGroups];
  int gsum[Q::kGroups];
  float d;
};

// From f32 activations (x = the row's first value); every lane must call it (shuffles).
template <class Q>
__device__ __forceinline__ void quantize_slot(const float* x, int blk, int part, bool valid,
                                              Act<Q>& a) {
  float v[4 * Q::kGroups] = {};
  if (valid) {
#pragma unroll
    for (int g = 0; g < Q::kGroups; ++g) {
      const float4 f = ld_f4(x + static_cast<size_t>(blk) * Q::kValues + Q::group_pos(part, g));
      v[4 * g] = f.x, v[4 * g + 1] = f.y, v[4 * g + 2] = f.z, v[4 * g + 3] = f.w;
    }
  }
  a.d = quantize_act<4 * Q::kGroups, Q::kParts>(v, a.q);
#pragma unroll
  for (int g = 0; g < Q::kGroups; ++g) a.gsum[g] = byte_sum(a.q[g]);
}

// Writes one lane's codes of block blk where load_slot reads them (part 0 the scale).
template <class Q>
__device__ __forceinline__ void store_slot(const Act<Q>& a, int blk, int part, int8_t* codes,
                                           float* scales) {
#pragma unroll
  for (int g = 0; g < Q::kGroups; ++g)
    *reinterpret_cast<uint32_t*>(codes + static_cast<size_t>(blk) * Q::kValues +
                                 Q::group_pos(part, g)) = a.q[g];
  if (part == 0) scales[blk] = a.d;
}

// One lane's codes of activation block blk, from codes already rounded (int8 codes of the
// row, one f32 scale per activation block), in global or shared memory (plain loads: the
// pointers say which).
template <class Q>
__device__ __forceinline__ void load_slot(const int8_t* codes, const float* scales, int blk,
                                          int part, Act<Q>& a) {
#pragma unroll
  for (int g = 0; g < Q::kGroups; ++g) {
    a.q[g] = *reinterpret_cast<const uint32_t*>(codes + static_cast<size_t>(blk) * Q::kValues +
                                                Q::group_pos(part, g));
    a.gsum[g] = byte_sum(a.q[g]);
  }
  a.d = scales[blk];
}

// Per type: kMaxK2 is the most slots per thread the batch-1 kernel takes two rows at a
// time with (matmul_act_int8.cu); fetch() issues the loads of the lane's share of a weight block
// and returns the raw words (so a kernel can have the next rows' fetches in flight while it works
// on the current ones); dot() unpacks them and multiplies with one token's codes (`part` is the
// lane's part of the block, 0..kParts-1).

// Q8_0: 4 lanes per 34-byte block, 8 values each.
struct ActQ8_0 {
  static constexpr int kValues = 32, kBytes = 34, kParts = 4, kGroups = 2, kMaxK2 = 4;
  __device__ static int group_pos(int part, int g) { return 8 * part + 4 * g; }
  struct Raw {
    uint32_t w0, w1, w2, sh;
    uint16_t d;
  };
  __device__ static Raw fetch(const uint8_t* b, int part) {
    // The 8 quant bytes sit at a 2-byte-aligned address: two aligned 4-byte loads and a
    // funnel shift (plus a 2-byte tail load when misaligned) instead of four 2-byte
    // loads. No load leaves the block.
    const uint8_t* qp = b + 2 + 8 * part;
    const unsigned sh = static_cast<unsigned>(reinterpret_cast<uintptr_t>(qp) & 3u) * 8u;
    const uint32_t* aw = reinterpret_cast<const uint32_t*>(qp - (sh >> 3));
    return {__ldg(aw), __ldg(aw + 1),
            sh != 0 ? ld_u16(reinterpret_cast<const uint8_t*>(aw + 2)) : 0u, sh, ld_u16(b)};
  }
  __device__ static float dot(const Raw& w, const Act<ActQ8_0>& a, int /*part*/) {
    const uint32_t q0 = __funnelshift_r(w.w0, w.w1, w.sh), q1 = __funnelshift_r(w.w1, w.w2, w.sh);
    return f16_to_f32(w.d) * a.d * static_cast<float>(dp4a(q1, a.q[1], dp4a(q0, a.q[0], 0)));
  }
};

// Q4_0: 2 lanes per 18-byte block; lane p holds bytes 8p..8p+7: values 8p.. (low nibbles,
// groups 0-1) and 16+8p.. (high nibbles, groups 2-3). Levels are nibble - 8.
struct ActQ4_0 {
  static constexpr int kValues = 32, kBytes = 18, kParts = 2, kGroups = 4, kMaxK2 = 4;
  __device__ static int group_pos(int part, int g) {
    return 16 * (g >> 1) + 8 * part + 4 * (g & 1);
  }
  struct Raw {
    uint32_t q0, q1;
    uint16_t d;
  };
  __device__ static Raw fetch(const uint8_t* b, int part) {
    return {ld_u32_a2(b + 2 + 8 * part), ld_u32_a2(b + 6 + 8 * part), ld_u16(b)};
  }
  __device__ static float dot(const Raw& w, const Act<ActQ4_0>& a, int /*part*/) {
    int s = dp4a(w.q0 & 0x0F0F0F0Fu, a.q[0], 0);
    s = dp4a(w.q1 & 0x0F0F0F0Fu, a.q[1], s);
    s = dp4a((w.q0 >> 4) & 0x0F0F0F0Fu, a.q[2], s);
    s = dp4a((w.q1 >> 4) & 0x0F0F0F0Fu, a.q[3], s);
    const int sum = a.gsum[0] + a.gsum[1] + a.gsum[2] + a.gsum[3];
    return f16_to_f32(w.d) * a.d * static_cast<float>(s - 8 * sum);
  }
};

// Q4_K: 8 lanes per 144-byte super-block; lane p = 2c + h reads the 16 quant bytes at
// 16 + 32c + 16h (one aligned 16-byte load: blocks are 144 = 9*16 bytes): values
// 64c + 16h + i of sub-block 2c (low nibbles, groups 0-3) and 64c + 32 + 16h + i of
// sub-block 2c+1 (high nibbles, groups 4-7).
struct ActQ4_K {
  static constexpr int kValues = 256, kBytes = 144, kParts = 8, kGroups = 8, kMaxK2 = 1;
  __device__ static int group_pos(int part, int g) {
    return 64 * (part >> 1) + 16 * (part & 1) + 32 * (g >> 2) + 4 * (g & 3);
  }
  struct Raw {
    uint4 qv;  // the lane's 16 quant bytes
    uint4 hd;  // d|dmin, then the 12 scale bytes s[0..3], s[4..7], s[8..11]
  };
  __device__ static Raw fetch(const uint8_t* b, int part) {
    const int c = part >> 1, h = part & 1;
    return {__ldg(reinterpret_cast<const uint4*>(b + 16 + 32 * c + 16 * h)),
            __ldg(reinterpret_cast<const uint4*>(b))};
  }
  __device__ static float dot(const Raw& w, const Act<ActQ4_K>& a, int part) {
    const int c = part >> 1;
    const uint32_t qw[4] = {w.qv.x, w.qv.y, w.qv.z, w.qv.w};
    int s_lo = 0, s_hi = 0;
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      s_lo = dp4a(qw[k] & 0x0F0F0F0Fu, a.q[k], s_lo);
      s_hi = dp4a((qw[k] >> 4) & 0x0F0F0F0Fu, a.q[4 + k], s_hi);
    }
    // 6-bit scale and min of sub-blocks j = 2c and 2c+1 (REFERENCE.md's get_scale_min_k4).
    int sc[2], m[2];
#pragma unroll
    for (int t = 0; t < 2; ++t) {
      const int sh = 8 * ((2 * c + t) & 3);
      const uint32_t s = (w.hd.y >> sh) & 0xff, n = (w.hd.z >> sh) & 0xff,
                     e = (w.hd.w >> sh) & 0xff;
      sc[t] = static_cast<int>(c < 2 ? (s & 63) : ((e & 15) | ((s >> 6) << 4)));
      m[t] = static_cast<int>(c < 2 ? (n & 63) : ((e >> 4) | ((n >> 6) << 4)));
    }
    const int sum_lo = a.gsum[0] + a.gsum[1] + a.gsum[2] + a.gsum[3];
    const int sum_hi = a.gsum[4] + a.gsum[5] + a.gsum[6] + a.gsum[7];
    const float d = f16_to_f32(static_cast<uint16_t>(w.hd.x & 0xffff));
    const float dmin = f16_to_f32(static_cast<uint16_t>(w.hd.x >> 16));
    return d * a.d * static_cast<float>(sc[0] * s_lo + sc[1] * s_hi) -
           dmin * a.d * static_cast<float>(m[0] * sum_lo + m[1] * sum_hi);
  }
};

// Q6_K: 16 lanes per 210-byte super-block (2-byte aligned only); lane p covers half
// h = p/8 and positions l0..l0+3 (l0 = 4(p%8)) of its four 32-value quarters (group =
// quarter), which use scale 8h + l0/16 + 2*quarter. Levels are stored as q+32 in [0, 63].
struct ActQ6_K {
  static constexpr int kValues = 256, kBytes = 210, kParts = 16, kGroups = 4, kMaxK2 = 1;
  __device__ static int group_pos(int part, int g) {
    return 128 * (part >> 3) + 4 * (part & 7) + 32 * g;
  }
  struct Raw {
    uint32_t qa, qb, qh;
    uint16_t sc[4];  // the 2-byte pairs at 192 + 8h + 2q holding scale 2q + is in byte is
    uint16_t d;
  };
  __device__ static Raw fetch(const uint8_t* b, int part) {
    const int h = part >> 3, l0 = 4 * (part & 7);
    const uint8_t* s = b + 192 + 8 * h;
    return {ld_u32_a2(b + 64 * h + l0),
            ld_u32_a2(b + 64 * h + 32 + l0),
            ld_u32_a2(b + 128 + 32 * h + l0),
            {ld_u16(s), ld_u16(s + 2), ld_u16(s + 4), ld_u16(s + 6)},
            ld_u16(b + 208)};
  }
  __device__ static float dot(const Raw& w, const Act<ActQ6_K>& a, int part) {
    const int is = (part & 7) >> 2;
    const uint32_t lv[4] = {(w.qa & 0x0F0F0F0Fu) | ((w.qh << 4) & 0x30303030u),
                            (w.qb & 0x0F0F0F0Fu) | ((w.qh << 2) & 0x30303030u),
                            ((w.qa >> 4) & 0x0F0F0F0Fu) | (w.qh & 0x30303030u),
                            ((w.qb >> 4) & 0x0F0F0F0Fu) | ((w.qh >> 2) & 0x30303030u)};
    int s = 0;
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      const int sc = static_cast<int8_t>(w.sc[q] >> (8 * is));
      s += sc * (dp4a(lv[q], a.q[q], 0) - 32 * a.gsum[q]);
    }
    return f16_to_f32(w.d) * a.d * static_cast<float>(s);
  }
};

}  // namespace pv::kernels::cuda
