// The reference decoder of Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q5_K, IQ4_NL and IQ4_XS for the
// op-level falsifiers (op_reference.h): value k of one block straight from the byte offsets
// of ggml's layouts (../shared/REFERENCE.md, ggml-common.h), in double. Written per value
// rather than per block so it shares no loop structure with pv's decoders
// (kernels/quant/quant_ext.cpp); the ggml known-answer blocks anchor both.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/quant/ggml_types.h"

namespace pv::optest {

inline double ext_half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  _Float16 v;
  std::memcpy(&v, &h, 2);
  return static_cast<double>(v);
}

inline constexpr int kRefIQ4[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                    1,    13,   25,  38,  53,  69,  89,  113};

// Nibble k (0..31) of 16 bytes in Q4_0 order: low nibbles are values 0..15.
inline int ext_nibble32(const uint8_t* qs, int k) {
  return k < 16 ? (qs[k] & 15) : (qs[k - 16] >> 4);
}

// Value k of the block at `b` (k < the type's block size).
inline double ext_block_value(kernels::GgmlType type, const uint8_t* b, int k) {
  using kernels::GgmlType;
  switch (type) {
    case GgmlType::Q4_1:
      return ext_half(b) * ext_nibble32(b + 4, k) + ext_half(b + 2);
    case GgmlType::Q5_0: {
      const int hb = (b[2 + k / 8] >> (k % 8)) & 1;
      return ext_half(b) * ((ext_nibble32(b + 6, k) | (hb << 4)) - 16);
    }
    case GgmlType::Q5_1: {
      const int hb = (b[4 + k / 8] >> (k % 8)) & 1;
      return ext_half(b) * (ext_nibble32(b + 8, k) | (hb << 4)) + ext_half(b + 2);
    }
    case GgmlType::Q2_K: {
      const int sc = b[k / 16];
      const int q = (b[16 + 32 * (k / 128) + k % 32] >> (2 * ((k % 128) / 32))) & 3;
      return ext_half(b + 80) * (sc & 15) * q - ext_half(b + 82) * (sc >> 4);
    }
    case GgmlType::Q3_K: {
      const int g = k / 16, s = (k % 128) / 32;
      const uint8_t* sb = b + 96;
      const int lo = g < 8 ? (sb[g] & 15) : (sb[g - 8] >> 4);
      const int scale = (lo | (((sb[8 + g % 4] >> (2 * (g / 4))) & 3) << 4)) - 32;
      const int q = (b[32 + 32 * (k / 128) + k % 32] >> (2 * s)) & 3;
      const int high = (b[k % 32] >> (4 * (k / 128) + s)) & 1;
      return ext_half(b + 108) * scale * (q - (high ? 0 : 4));
    }
    case GgmlType::Q5_K: {
      const int c = k / 64, upper = (k % 64) >= 32, l = k % 32, j = 2 * c + upper;
      const uint8_t* s = b + 4;
      const int sc = j < 4 ? (s[j] & 63) : ((s[j + 4] & 15) | ((s[j - 4] >> 6) << 4));
      const int m = j < 4 ? (s[j + 4] & 63) : ((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
      const int byte = b[48 + 32 * c + l];
      const int q = (upper ? byte >> 4 : byte & 15) | (((b[16 + l] >> j) & 1) << 4);
      return ext_half(b) * sc * q - ext_half(b + 2) * m;
    }
    case GgmlType::IQ4_NL:
      return ext_half(b) * kRefIQ4[ext_nibble32(b + 2, k)];
    case GgmlType::IQ4_XS: {
      const int ib = k / 32;
      const int sh = b[2] | (b[3] << 8);
      const int ls = ((b[4 + ib / 2] >> (4 * (ib % 2))) & 15) | (((sh >> (2 * ib)) & 3) << 4);
      return ext_half(b) * (ls - 32) * kRefIQ4[ext_nibble32(b + 8 + 16 * ib, k % 32)];
    }
    default:
      return NAN;  // not one of the types above: poison, never a plausible value
  }
}

// The fp16 scale fields of a block of one of the types above (byte offset, magnitude for a
// value of O(1) with random codes); empty for other types.
struct ExtScaleField {
  int offset;
  float magnitude;
  bool negative;  // a Q4_1/Q5_1 offset m, drawn below 0 so values centre near 0
};
inline std::vector<ExtScaleField> ext_scale_fields(kernels::GgmlType type) {
  using kernels::GgmlType;
  switch (type) {
    case GgmlType::Q4_1:
      return {{0, 1.f / 8, false}, {2, 1.f, true}};
    case GgmlType::Q5_0:
      return {{0, 1.f / 8, false}};
    case GgmlType::Q5_1:
      return {{0, 1.f / 16, false}, {2, 1.f, true}};
    case GgmlType::Q2_K:
      return {{80, 1.f / 16, false}, {82, 1.f / 16, false}};
    case GgmlType::Q3_K:
      return {{108, 1.f / 64, false}};
    case GgmlType::Q5_K:
      return {{0, 1.f / 256, false}, {2, 1.f / 64, false}};
    case GgmlType::IQ4_NL:
      return {{0, 1.f / 64, false}};
    case GgmlType::IQ4_XS:
      return {{0, 1.f / 2048, false}};
    default:
      return {};
  }
}

}  // namespace pv::optest
