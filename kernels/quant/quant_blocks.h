// Byte layouts of the ggml quant blocks pv reads (see ../shared/REFERENCE.md), plus the
// two activation formats the quantized dot products consume. Shared by the decoders, the
// quantizers and the dot kernels; the static_asserts pin the on-disk sizes.
#pragma once

#include <cstdint>

#include "mutants/mutant.h"

namespace pv::kernels {

constexpr int kQK = 32;    // values per Q4_0 / Q8_0 block
constexpr int kQKK = 256;  // values per K-quant super-block

struct BlockQ8_0 {
  uint16_t d;  // fp16
  int8_t qs[kQK];
};
struct BlockQ4_0 {
  uint16_t d;           // fp16
  uint8_t qs[kQK / 2];  // x[j] = d*((qs[j]&15)-8), x[j+16] = d*((qs[j]>>4)-8)
};
struct BlockQ4_K {
  uint16_t d;          // fp16 super-block scale of the 6-bit sub-block scales
  uint16_t dmin;       // fp16 super-block scale of the 6-bit sub-block mins
  uint8_t scales[12];  // 8 x (6-bit scale, 6-bit min), packed
  uint8_t qs[kQKK / 2];
};
struct BlockQ6_K {
  uint8_t ql[kQKK / 2];  // low 4 bits
  uint8_t qh[kQKK / 4];  // high 2 bits
  int8_t scales[kQKK / 16];
  uint16_t d;  // fp16
};
struct BlockQ4_1 {
  uint16_t d;  // fp16
  uint16_t m;  // fp16, added: x[j] = d*(qs[j]&15) + m, x[j+16] = d*(qs[j]>>4) + m
  uint8_t qs[kQK / 2];
};
struct BlockQ5_0 {
  uint16_t d;           // fp16
  uint8_t qh[4];        // bit j (little-endian u32): high bit of value j
  uint8_t qs[kQK / 2];  // low nibbles as Q4_0; x = d*((lo | hi << 4) - 16)
};
struct BlockQ5_1 {
  uint16_t d;  // fp16
  uint16_t m;  // fp16, added
  uint8_t qh[4];
  uint8_t qs[kQK / 2];  // x = d*(lo | hi << 4) + m
};
struct BlockQ2_K {
  uint8_t scales[kQKK / 16];  // per 16 values: low nibble scale, high nibble min
  uint8_t qs[kQKK / 4];       // 2-bit codes, four shifts of 32 bytes per 128 values
  uint16_t d;                 // fp16 super-scale of the scales
  uint16_t dmin;              // fp16 super-scale of the mins
};
struct BlockQ3_K {
  uint8_t hmask[kQKK / 8];  // high bit per value; set means +0, clear means -4
  uint8_t qs[kQKK / 4];     // low 2 bits, laid out as Q2_K
  uint8_t scales[12];       // 16 x 6-bit scales (biased by 32), packed
  uint16_t d;               // fp16
};
struct BlockQ5_K {
  uint16_t d;            // fp16 super-block scale of the 6-bit sub-block scales
  uint16_t dmin;         // fp16 super-block scale of the 6-bit sub-block mins
  uint8_t scales[12];    // packed as Q4_K
  uint8_t qh[kQKK / 8];  // bit 2c (low nibble) / 2c+1 (high nibble) of chunk c
  uint8_t qs[kQKK / 2];  // low 4 bits, laid out as Q4_K
};
struct BlockIQ4_NL {
  uint16_t d;           // fp16
  uint8_t qs[kQK / 2];  // indices into kIQ4NLValues, nibble order as Q4_0
};
struct BlockIQ4_XS {
  uint16_t d;                   // fp16
  uint16_t scales_h;            // 2 high bits per 32-value sub-block
  uint8_t scales_l[kQKK / 64];  // 4 low bits per sub-block; scale = (lo | hi << 4) - 32
  uint8_t qs[kQKK / 2];         // per sub-block of 32: 16 bytes in IQ4_NL nibble order
};
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ2_K) == 84);
static_assert(sizeof(BlockQ3_K) == 110);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockIQ4_NL) == 18);
static_assert(sizeof(BlockIQ4_XS) == 136);
static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ6_K) == 210);

// Activations quantized once per token for the integer dot products. Internal formats (never
// on disk): the scale stays f32 so the activation error is only the int8 rounding.
struct BlockQ8A {  // pairs with Q4_0 / Q8_0 weights
  float d;
  int8_t qs[kQK];
};
struct BlockQ8K {  // pairs with Q4_K / Q6_K weights
  float d;
  int8_t qs[kQKK];
  int16_t bsums[kQKK / 16];    // sums of each 16 qs: the Q6_K -32 offset term
  int16_t bsums32[kQKK / 32];  // sums of each 32 qs: the Q4_K min term
};
static_assert(sizeof(BlockQ8A) == 36);
static_assert(sizeof(BlockQ8K) == 308);

// Sub-block j (0..7) 6-bit scale and min of a Q4_K block.
inline void q4k_scale_min(int j, const uint8_t* s, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
    if (mutant::planted(mutant::Bug::Q4kSubScale))
      *sc = static_cast<uint8_t>((s[j + 4] >> 4) | ((s[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
  }
}

// The IQ4_NL / IQ4_XS codebook (ggml's kvalues_iq4nl): 16 non-uniform int8 levels.
inline constexpr int8_t kIQ4NLValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                            1,    13,   25,  38,  53,  69,  89,  113};

// The 32 high bits of a Q5_0 / Q5_1 block as one little-endian word (bit j: value j).
inline uint32_t q5_high_bits(const uint8_t* qh) {
  return static_cast<uint32_t>(qh[0]) | static_cast<uint32_t>(qh[1]) << 8 |
         static_cast<uint32_t>(qh[2]) << 16 | static_cast<uint32_t>(qh[3]) << 24;
}

// The 16 six-bit scales of a Q3_K block, still biased by 32 (0..63): scales 0..7 keep their
// low nibbles in bytes 0..7 (low, then high nibble for 8..15), and all sixteen their two
// high bits in bytes 8..11 (scale j: byte 8 + j%4, bits 2*(j/4)).
inline void q3k_scales(const uint8_t* s, int* out) {
  for (int j = 0; j < 16; ++j) {
    const int lo = j < 8 ? (s[j] & 0xF) : (s[j - 8] >> 4);
    const int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    out[j] = lo | (hi << 4);
  }
}

// Sub-block ib (0..7) 6-bit scale of an IQ4_XS block, still biased by 32.
inline int iq4xs_scale(const BlockIQ4_XS& b, int ib) {
  return ((b.scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) | (((b.scales_h >> (2 * ib)) & 3) << 4);
}

}  // namespace pv::kernels
