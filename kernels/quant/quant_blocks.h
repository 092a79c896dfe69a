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
static_assert(sizeof(BlockQ8_0) == 34);
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

}  // namespace pv::kernels
