// The int8-activation fetch/dot of act_quant.cuh for the other dense GGUF block types:
// Q4_1, Q5_0, Q5_1 and IQ4_NL (32 values, paired with one 32-value activation block),
// Q2_K, Q3_K, Q5_K and IQ4_XS (256 values, paired with one 256-value activation block).
// Same contract as ActQ8_0 .. ActQ6_K: a lane owns kGroups groups of 4 consecutive values
// of its block (group_pos), dot() sums the integer products of its levels with the codes by
// dp4a per sub-block and scales them as ggml's vec_dot does: d_w * d_x * sum(scale * sumi),
// minus dmin * d_x * sum(min * sum of codes) for the types with mins, the constant offsets
// (Q5_0's -16, Q3_K's -4) taken out through the code sums. IQ4_NL/IQ4_XS levels go
// through the kvalues_iq4nl code book (a byte permute per 4 values) before the dp4a.
#pragma once

#include <cstdint>

#include "kernels/cuda/act_quant.cuh"

namespace pv::kernels::cuda {

// Bits 0..3 of x moved to bit 4 of bytes 0..3 (the fifth bit of four 5-bit levels).
__device__ __forceinline__ uint32_t nibble_to_byte_bit4(uint32_t x) {
  return ((x & 15u) * 0x00204081u & 0x01010101u) << 4;
}

// Four 4-bit indices (one per byte, each 0..15) -> their four int8 code-book levels.
__device__ __forceinline__ uint32_t iq4nl_lookup(uint32_t idx) {
  // Selector nibble b = index of byte b; bit 3 chooses the upper half of the book. The
  // permutes get selectors 0..7 only (bit 3 of a prmt selector means sign replication).
  const uint32_t x = idx | (idx >> 4);
  const uint32_t sel = (x & 0xffu) | ((x >> 8) & 0xff00u);
  const uint32_t lo = __byte_perm(kIq4nlWord0, kIq4nlWord1, sel & 0x7777u);
  const uint32_t hi = __byte_perm(kIq4nlWord2, kIq4nlWord3, sel & 0x7777u);
  return __byte_perm(lo, hi, 0x3210u | ((sel & 0x8888u) >> 1));
}

// Q4_1: as Q4_0 (2 lanes per 20-byte block, lane p the quant bytes 8p..8p+7), levels are
// the nibbles (0..15), plus the block min m: x = d*q + m.
struct ActQ4_1 {
  static constexpr int kValues = 32, kBytes = 20, kParts = 2, kGroups = 4, kMaxK2 = 4;
  __device__ static int group_pos(int part, int g) {
    return 16 * (g >> 1) + 8 * part + 4 * (g & 1);
  }
  struct Raw {
    uint32_t q0, q1, dm;  // dm: d | m << 16
  };
  __device__ static Raw fetch(const uint8_t* b, int part) {
    // 20-byte blocks: every block and its quant words are 4-byte aligned.
    const uint32_t* w = reinterpret_cast<const uint32_t*>(b);
    return {__ldg(w + 1 + 2 * part), __ldg(w + 2 + 2 * part), __ldg(w)};
  }
  __device__ static float dot(const Raw& w, const Act<ActQ4_1>& a, int /*part*/) {
    int s = dp4a(w.q0 & 0x0F0F0F0Fu, a.q[0], 0);
    s = dp4a(w.q1 & 0x0F0F0F0Fu, a.q[1], s);
    s = dp4a((w.q0 >> 4) & 0x0F0F0F0Fu, a.q[2], s);
    s = dp4a((w.q1 >> 4) & 0x0F0F0F0Fu, a.q[3], s);
    const int sum = a.gsum[0] + a.gsum[1] + a.gsum[2] + a.gsum[3];
    return f16_to_f32(static_cast<uint16_t>(w.dm & 0xffff)) * a.d * static_cast<float>(s) +
           f16_to_f32(static_cast<uint16_t>(w.dm >> 16)) * a.d * static_cast<float>(sum);
  }
};

// Q5_0 / Q5_1: as Q4_0, the fifth bit of value j in bit j of the 32-bit qh word; Q5_0
// levels are stored +16, Q5_1 has a min. kHeader: bytes before qh (d, or d and m).
template <bool kMin>
struct ActQ5 {
  static constexpr int kHeader = kMin ? 4 : 2;
  static constexpr int kValues = 32, kBytes = kHeader + 20, kParts = 2, kGroups = 4, kMaxK2 = 2;
  __device__ static int group_pos(int part, int g) {
    return 16 * (g >> 1) + 8 * part + 4 * (g & 1);
  }
  struct Raw {
    uint32_t q0, q1, qh, dm;  // dm: d (| m << 16 for Q5_1)
  };
  __device__ static Raw fetch(const uint8_t* b, int part) {
    if constexpr (kMin) {  // 24-byte blocks: 4-byte aligned
      const uint32_t* w = reinterpret_cast<const uint32_t*>(b);
      return {__ldg(w + 2 + 2 * part), __ldg(w + 3 + 2 * part), __ldg(w + 1), __ldg(w)};
    } else {  // 22-byte blocks: 2-byte aligned only
      return {ld_u32_a2(b + 6 + 8 * part), ld_u32_a2(b + 10 + 8 * part), ld_u32_a2(b + 2),
              ld_u16(b)};
    }
  }
  __device__ static float dot(const Raw& w, const Act<ActQ5>& a, int part) {
    // Group g holds values 16(g>>1) + 8part + 4(g&1) + 0..3: their high bits are qh bits there.
    const uint32_t qh = w.qh >> (8 * part);
    const uint32_t lv[4] = {(w.q0 & 0x0F0F0F0Fu) | nibble_to_byte_bit4(qh),
                            (w.q1 & 0x0F0F0F0Fu) | nibble_to_byte_bit4(qh >> 4),
                            ((w.q0 >> 4) & 0x0F0F0F0Fu) | nibble_to_byte_bit4(qh >> 16),
                            ((w.q1 >> 4) & 0x0F0F0F0Fu) | nibble_to_byte_bit4(qh >> 20)};
    int s = 0;
#pragma unroll
    for (int g = 0; g < 4; ++g) s = dp4a(lv[g], a.q[g], s);
    const int sum = a.gsum[0] + a.gsum[1] + a.gsum[2] + a.gsum[3];
    const float d = f16_to_f32(static_cast<uint16_t>(w.dm & 0xffff));
    if constexpr (kMin) {
      return d * a.d * static_cast<float>(s) +
             f16_to_f32(static_cast<uint16_t>(w.dm >> 16)) * a.d * static_cast<float>(sum);
    } else {
      return d * a.d * static_cast<float>(s - 16 * sum);
    }
  }
};
using ActQ5_0 = ActQ5<false>;
using ActQ5_1 = ActQ5<true>;

// IQ4_NL: as Q4_0 (2 lanes per 18-byte block), levels from the code book.
struct ActIQ4_NL {
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
  __device__ static float dot(const Raw& w, const Act<ActIQ4_NL>& a, int /*part*/) {
    int s = dp4a(iq4nl_lookup(w.q0 & 0x0F0F0F0Fu), a.q[0], 0);
    s = dp4a(iq4nl_lookup(w.q1 & 0x0F0F0F0Fu), a.q[1], s);
    s = dp4a(iq4nl_lookup((w.q0 >> 4) & 0x0F0F0F0Fu), a.q[2], s);
    s = dp4a(iq4nl_lookup((w.q1 >> 4) & 0x0F0F0F0Fu), a.q[3], s);
    return f16_to_f32(w.d) * a.d * static_cast<float>(s);
  }
};

// Q2_K: 8 lanes per 84-byte super-block; lane p takes half h = p/4 and the quant bytes
// l0..l0+7 (l0 = 8(p%4)) of that half, which hold values 128h + 32j + l0 + 0..7 at bit 2j
// (j = 0..3; group g = 2j + word). The 16-value sub-block of group g is 8h + 2j + l0/16:
// its 4-bit scale (low nibble) and min (high nibble) are byte 8h + 2j + l0/16.
struct ActQ2_K {
  static constexpr int kValues = 256, kBytes = 84, kParts = 8, kGroups = 8, kMaxK2 = 1;
  __device__ static int group_pos(int part, int g) {
    return 128 * (part >> 2) + 32 * (g >> 1) + 8 * (part & 3) + 4 * (g & 1);
  }
  struct Raw {
    uint32_t q0, q1, s0, s1, dm;  // s0/s1: scale bytes 8h..8h+3 / 8h+4..8h+7; dm: d | dmin
  };
  __device__ static Raw fetch(const uint8_t* b, int part) {
    // 84-byte blocks: 4-byte aligned.
    const int h = part >> 2, l0 = 8 * (part & 3);
    const uint32_t* w = reinterpret_cast<const uint32_t*>(b);
    return {__ldg(w + (16 + 32 * h + l0) / 4), __ldg(w + (20 + 32 * h + l0) / 4), __ldg(w + 2 * h),
            __ldg(w + 2 * h + 1), __ldg(w + 20)};
  }
  __device__ static float dot(const Raw& w, const Act<ActQ2_K>& a, int part) {
    const int is = (part & 3) >> 1;
    int s = 0, m = 0;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int sum = dp4a((w.q1 >> (2 * j)) & 0x03030303u, a.q[2 * j + 1],
                           dp4a((w.q0 >> (2 * j)) & 0x03030303u, a.q[2 * j], 0));
      const uint32_t sc = ((j < 2 ? w.s0 : w.s1) >> (8 * (2 * (j & 1) + is))) & 0xff;
      s += static_cast<int>(sc & 15) * sum;
      m += static_cast<int>(sc >> 4) * (a.gsum[2 * j] + a.gsum[2 * j + 1]);
    }
    const float d = f16_to_f32(static_cast<uint16_t>(w.dm & 0xffff));
    const float dmin = f16_to_f32(static_cast<uint16_t>(w.dm >> 16));
    return d * a.d * static_cast<float>(s) - dmin * a.d * static_cast<float>(m);
  }
};

// Q3_K: 8 lanes per 110-byte super-block (2-byte aligned only), the same value layout as
// Q2_K (2 low bits at bit 2j of qs byte 32h + l), the third bit in hmask byte l at bit
// 4h + j (set: level q, clear: q - 4); 6-bit scales stored +32 (q3k_scale's packing).
struct ActQ3_K {
  static constexpr int kValues = 256, kBytes = 110, kParts = 8, kGroups = 8, kMaxK2 = 1;
  __device__ static int group_pos(int part, int g) { return ActQ2_K::group_pos(part, g); }
  struct Raw {
    uint32_t q0, q1, h0, h1, s0, s1, s2;  // s0..s2: the 12 scale bytes
    uint16_t d;
  };
  __device__ static Raw fetch(const uint8_t* b, int part) {
    const int h = part >> 2, l0 = 8 * (part & 3);
    return {ld_u32_a2(b + 32 + 32 * h + l0),
            ld_u32_a2(b + 36 + 32 * h + l0),
            ld_u32_a2(b + l0),
            ld_u32_a2(b + l0 + 4),
            ld_u32_a2(b + 96),
            ld_u32_a2(b + 100),
            ld_u32_a2(b + 104),
            ld_u16(b + 108)};
  }
  __device__ static float dot(const Raw& w, const Act<ActQ3_K>& a, int part) {
    const int h = part >> 2, is = (part & 3) >> 1;
    int s = 0;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int hs = 4 * h + j;  // hmask bit
      // Levels + 4 (0..7): two low bits, the hmask bit as bit 2.
      const uint32_t l0 = ((w.q0 >> (2 * j)) & 0x03030303u) | (((w.h0 >> hs) & 0x01010101u) << 2);
      const uint32_t l1 = ((w.q1 >> (2 * j)) & 0x03030303u) | (((w.h1 >> hs) & 0x01010101u) << 2);
      const int sum = dp4a(l1, a.q[2 * j + 1], dp4a(l0, a.q[2 * j], 0)) -
                      4 * (a.gsum[2 * j] + a.gsum[2 * j + 1]);
      // Scale i = 8h + 2j + is: low nibble of byte i (i < 8) or i - 8 (high nibble), two
      // high bits in byte 8 + i % 4 at bit 2(i / 4).
      const int i = 8 * h + 2 * j + is;
      const uint32_t lo_word = (i & 7) < 4 ? w.s0 : w.s1;
      const int lo = static_cast<int>((lo_word >> (8 * (i & 3) + 4 * h)) & 15);
      const int hi = static_cast<int>((w.s2 >> (8 * (i & 3) + 2 * (i >> 2))) & 3);
      s += ((lo | (hi << 4)) - 32) * sum;
    }
    return f16_to_f32(w.d) * a.d * static_cast<float>(s);
  }
};

// Q5_K: as Q4_K (8 lanes per 176-byte super-block, lane p = 2c + h the 16 quant bytes at
// 48 + 32c + 16h: values 64c + 16h + i of sub-block 2c (low nibbles) and 64c + 32 + 16h + i
// of sub-block 2c+1 (high nibbles)); the fifth bit of those values is bit 2c (2c+1) of qh
// byte 16h + i.
struct ActQ5_K {
  static constexpr int kValues = 256, kBytes = 176, kParts = 8, kGroups = 8, kMaxK2 = 1;
  __device__ static int group_pos(int part, int g) { return ActQ4_K::group_pos(part, g); }
  struct Raw {
    uint4 qv;  // the lane's 16 quant bytes
    uint4 qh;  // qh bytes 16h..16h+15
    uint4 hd;  // d|dmin, then the 12 scale bytes
  };
  __device__ static Raw fetch(const uint8_t* b, int part) {
    // 176 = 11 * 16: blocks are 16-byte aligned.
    const int c = part >> 1, h = part & 1;
    return {__ldg(reinterpret_cast<const uint4*>(b + 48 + 32 * c + 16 * h)),
            __ldg(reinterpret_cast<const uint4*>(b + 16 + 16 * h)),
            __ldg(reinterpret_cast<const uint4*>(b))};
  }
  __device__ static float dot(const Raw& w, const Act<ActQ5_K>& a, int part) {
    const int c = part >> 1;
    const uint32_t qw[4] = {w.qv.x, w.qv.y, w.qv.z, w.qv.w};
    const uint32_t hw[4] = {w.qh.x, w.qh.y, w.qh.z, w.qh.w};
    int s_lo = 0, s_hi = 0;
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const uint32_t lo = (qw[k] & 0x0F0F0F0Fu) | (((hw[k] >> (2 * c)) & 0x01010101u) << 4);
      const uint32_t hi =
          ((qw[k] >> 4) & 0x0F0F0F0Fu) | (((hw[k] >> (2 * c + 1)) & 0x01010101u) << 4);
      s_lo = dp4a(lo, a.q[k], s_lo);
      s_hi = dp4a(hi, a.q[4 + k], s_hi);
    }
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

// IQ4_XS: 8 lanes per 136-byte super-block, lane p the 32-value sub-block p: quant bytes
// 8 + 16p .. +15 (values 32p + i low nibbles, groups 0-3; 32p + 16 + i high, groups 4-7),
// 6-bit scale (stored +32) from scales_l[p/2] nibble p%2 and scales_h bits 2p..2p+1.
struct ActIQ4_XS {
  static constexpr int kValues = 256, kBytes = 136, kParts = 8, kGroups = 8, kMaxK2 = 1;
  __device__ static int group_pos(int part, int g) {
    return 32 * part + 16 * (g >> 2) + 4 * (g & 3);
  }
  struct Raw {
    uint2 qa, qb;  // the lane's 16 quant bytes
    uint2 hd;      // d | scales_h << 16, scales_l[0..3]
  };
  __device__ static Raw fetch(const uint8_t* b, int part) {
    // 136 = 17 * 8: blocks are 8-byte aligned.
    const uint2* w = reinterpret_cast<const uint2*>(b);
    return {__ldg(w + 1 + 2 * part), __ldg(w + 2 + 2 * part), __ldg(w)};
  }
  __device__ static float dot(const Raw& w, const Act<ActIQ4_XS>& a, int part) {
    const uint32_t qw[4] = {w.qa.x, w.qa.y, w.qb.x, w.qb.y};
    int s = 0;
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      s = dp4a(iq4nl_lookup(qw[k] & 0x0F0F0F0Fu), a.q[k], s);
      s = dp4a(iq4nl_lookup((qw[k] >> 4) & 0x0F0F0F0Fu), a.q[4 + k], s);
    }
    const int ls =
        static_cast<int>(((w.hd.y >> (4 * part)) & 15) | (((w.hd.x >> (16 + 2 * part)) & 3) << 4)) -
        32;
    return f16_to_f32(static_cast<uint16_t>(w.hd.x & 0xffff)) * a.d * static_cast<float>(ls * s);
  }
};

}  // namespace pv::kernels::cuda
