// Device-side decoding of GGUF weight values (layouts in ../shared/REFERENCE.md, ggml's):
// dequant_one() decodes a single value anywhere in a row (embeddings, norm weights,
// biases: small, read once). The matvec's block decoders live in act_quant.cuh.
#pragma once

#include <cuda_fp16.h>

#include <cstdint>

#include "kernels/quant/ggml_types.h"

namespace pv::kernels::cuda {

__device__ __forceinline__ float f16_to_f32(uint16_t h) {
  return __half2float(__ushort_as_half(h));
}
__device__ __forceinline__ float bf16_to_f32(uint16_t b) {
  return __uint_as_float(static_cast<uint32_t>(b) << 16);
}
// The GGUF block layouts only guarantee 2-byte alignment for Q8_0/Q4_0/Q6_K blocks.
__device__ __forceinline__ uint16_t ld_u16(const uint8_t* p) {
  return __ldg(reinterpret_cast<const unsigned short*>(p));
}
__device__ __forceinline__ uint32_t ld_u32_a2(const uint8_t* p) {
  return static_cast<uint32_t>(ld_u16(p)) | (static_cast<uint32_t>(ld_u16(p + 2)) << 16);
}
__device__ __forceinline__ float4 ld_f4(const float* p) {
  return __ldg(reinterpret_cast<const float4*>(p));
}

// Q4_K 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes s.
__device__ __forceinline__ void q4k_scale_min(const uint8_t* s, int j, float* sc, float* m) {
  if (j < 4) {
    *sc = static_cast<float>(s[j] & 63);
    *m = static_cast<float>(s[j + 4] & 63);
  } else {
    *sc = static_cast<float>((s[j + 4] & 15) | ((s[j - 4] >> 6) << 4));
    *m = static_cast<float>((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
  }
}

// The IQ4_NL/IQ4_XS code book (ggml's kvalues_iq4nl): 4-bit index -> int8 level.
constexpr int8_t kIq4nlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                     1,    13,   25,  38,  53,  69,  89,  113};
// The code book as four little-endian words of four levels each, for byte-permute lookups.
constexpr uint32_t iq4nl_pack(int w) {
  uint32_t r = 0;
  for (int b = 0; b < 4; ++b)
    r |= static_cast<uint32_t>(static_cast<uint8_t>(kIq4nlValues[4 * w + b])) << (8 * b);
  return r;
}
constexpr uint32_t kIq4nlWord0 = iq4nl_pack(0), kIq4nlWord1 = iq4nl_pack(1),
                   kIq4nlWord2 = iq4nl_pack(2), kIq4nlWord3 = iq4nl_pack(3);
__device__ __forceinline__ int iq4nl_value(int code) {
  const uint32_t w =
      code < 8 ? (code < 4 ? kIq4nlWord0 : kIq4nlWord1) : (code < 12 ? kIq4nlWord2 : kIq4nlWord3);
  return static_cast<int8_t>(w >> (8 * (code & 3)));
}

// 6-bit scale s (0..15) of a Q3_K block from its 12 packed bytes (ggml's aux unpacking):
// low 4 bits in byte s (s < 8, low nibble) or s - 8 (high nibble), high 2 bits in byte
// 8 + s % 4 at bit 2 * (s / 4). Returns the signed scale (stored with +32).
__device__ __forceinline__ int q3k_scale(const uint8_t* s, int i) {
  const int lo = i < 8 ? (s[i] & 15) : (s[i - 8] >> 4);
  const int hi = (s[8 + (i & 3)] >> (2 * (i >> 2))) & 3;
  return (lo | (hi << 4)) - 32;
}

// Value i of a row stored as `type` (row points at the row's first byte).
__device__ inline float dequant_one(GgmlType type, const uint8_t* row, int64_t i) {
  switch (type) {
    case GgmlType::F32:
      return reinterpret_cast<const float*>(row)[i];
    case GgmlType::F16:
      return f16_to_f32(reinterpret_cast<const uint16_t*>(row)[i]);
    case GgmlType::BF16:
      return bf16_to_f32(reinterpret_cast<const uint16_t*>(row)[i]);
    case GgmlType::Q8_0: {
      const uint8_t* b = row + (i / 32) * 34;
      return f16_to_f32(ld_u16(b)) * static_cast<float>(static_cast<int8_t>(b[2 + i % 32]));
    }
    case GgmlType::Q4_0: {
      const uint8_t* b = row + (i / 32) * 18;
      const int k = static_cast<int>(i % 32);
      const int q = b[2 + (k & 15)];
      const int v = k < 16 ? (q & 15) : (q >> 4);
      return f16_to_f32(ld_u16(b)) * static_cast<float>(v - 8);
    }
    case GgmlType::Q4_K: {
      const uint8_t* b = row + (i / 256) * 144;
      const int k = static_cast<int>(i % 256);
      const int c = k / 64, w = k % 64;
      const int q = b[16 + 32 * c + (w % 32)];
      float sc, m;
      q4k_scale_min(b + 4, 2 * c + (w >= 32 ? 1 : 0), &sc, &m);
      const int v = w < 32 ? (q & 15) : (q >> 4);
      // Explicit roundings (no FMA contraction): bit-identical to ggml's f32 decoder.
      return __fsub_rn(__fmul_rn(__fmul_rn(f16_to_f32(ld_u16(b)), sc), static_cast<float>(v)),
                       __fmul_rn(f16_to_f32(ld_u16(b + 2)), m));
    }
    // The new types below: products and sums rounded one by one in ggml's order (its f32
    // decoders are compiled without FMA contraction), so the values are ggml's bit for bit.
    case GgmlType::Q4_1: {
      const uint8_t* b = row + (i / 32) * 20;
      const int k = static_cast<int>(i % 32);
      const int q = b[4 + (k & 15)];
      const int v = k < 16 ? (q & 15) : (q >> 4);
      return __fadd_rn(__fmul_rn(static_cast<float>(v), f16_to_f32(ld_u16(b))),
                       f16_to_f32(ld_u16(b + 2)));
    }
    case GgmlType::Q5_0:
    case GgmlType::Q5_1: {
      const bool q51 = type == GgmlType::Q5_1;
      const uint8_t* b = row + (i / 32) * (q51 ? 24 : 22);
      const uint8_t* p = b + (q51 ? 4 : 2);  // qh[4], then qs[16]
      const int k = static_cast<int>(i % 32);
      const int q = p[4 + (k & 15)];
      const int hb = (p[k / 8] >> (k % 8)) & 1;
      const int v = (k < 16 ? (q & 15) : (q >> 4)) | (hb << 4);
      const float d = f16_to_f32(ld_u16(b));
      if (!q51) return __fmul_rn(static_cast<float>(v - 16), d);
      return __fadd_rn(__fmul_rn(static_cast<float>(v), d), f16_to_f32(ld_u16(b + 2)));
    }
    case GgmlType::Q2_K: {
      const uint8_t* b = row + (i / 256) * 84;
      const int k = static_cast<int>(i % 256);
      const int h = k / 128, j = (k % 128) / 32, l = k % 32;
      const int q = (b[16 + 32 * h + l] >> (2 * j)) & 3;
      const int sc = b[k / 16];
      const float dl = __fmul_rn(f16_to_f32(ld_u16(b + 80)), static_cast<float>(sc & 15));
      const float ml = __fmul_rn(f16_to_f32(ld_u16(b + 82)), static_cast<float>(sc >> 4));
      return __fsub_rn(__fmul_rn(dl, static_cast<float>(q)), ml);
    }
    case GgmlType::Q3_K: {
      const uint8_t* b = row + (i / 256) * 110;
      const int k = static_cast<int>(i % 256);
      const int h = k / 128, j = (k % 128) / 32, l = k % 32;
      const int q = (b[32 + 32 * h + l] >> (2 * j)) & 3;
      const int hb = (b[l] >> (4 * h + j)) & 1;
      const float dl =
          __fmul_rn(f16_to_f32(ld_u16(b + 108)), static_cast<float>(q3k_scale(b + 96, k / 16)));
      return __fmul_rn(dl, static_cast<float>(q - (hb != 0 ? 0 : 4)));
    }
    case GgmlType::Q5_K: {
      const uint8_t* b = row + (i / 256) * 176;
      const int k = static_cast<int>(i % 256);
      const int c = k / 64, w = k % 64, hi = w >= 32 ? 1 : 0;
      const int q = b[48 + 32 * c + (w % 32)];
      const int v = (hi != 0 ? (q >> 4) : (q & 15)) | (((b[16 + w % 32] >> (2 * c + hi)) & 1) << 4);
      float sc, m;
      q4k_scale_min(b + 4, 2 * c + hi, &sc, &m);
      return __fsub_rn(__fmul_rn(__fmul_rn(f16_to_f32(ld_u16(b)), sc), static_cast<float>(v)),
                       __fmul_rn(f16_to_f32(ld_u16(b + 2)), m));
    }
    case GgmlType::IQ4_NL: {
      const uint8_t* b = row + (i / 32) * 18;
      const int k = static_cast<int>(i % 32);
      const int q = b[2 + (k & 15)];
      return __fmul_rn(f16_to_f32(ld_u16(b)),
                       static_cast<float>(iq4nl_value(k < 16 ? (q & 15) : (q >> 4))));
    }
    case GgmlType::IQ4_XS: {
      const uint8_t* b = row + (i / 256) * 136;
      const int k = static_cast<int>(i % 256);
      const int ib = k / 32, w = k % 32;
      const int ls =
          ((b[4 + ib / 2] >> (4 * (ib % 2))) & 15) | (((ld_u16(b + 2) >> (2 * ib)) & 3) << 4);
      const int q = b[8 + 16 * ib + (w & 15)];
      const float dl = __fmul_rn(f16_to_f32(ld_u16(b)), static_cast<float>(ls - 32));
      return __fmul_rn(dl, static_cast<float>(iq4nl_value(w < 16 ? (q & 15) : (q >> 4))));
    }
    case GgmlType::Q6_K: {
      const uint8_t* b = row + (i / 256) * 210;
      const int k = static_cast<int>(i % 256);
      const int h = k / 128, r = k % 128, quarter = r / 32, l = r % 32;
      const int lo = b[64 * h + l + 32 * (quarter & 1)];
      const int nib = quarter >= 2 ? (lo >> 4) : (lo & 15);
      const int hi = (b[128 + 32 * h + l] >> (2 * quarter)) & 3;
      const int sc = static_cast<int8_t>(b[192 + 8 * h + l / 16 + 2 * quarter]);
      return f16_to_f32(ld_u16(b + 208)) * static_cast<float>(sc) *
             static_cast<float>((nib | (hi << 4)) - 32);
    }
    default:  // every GgmlType has a case above; other ggml ids never pass the readers
      break;
  }
  return __int_as_float(0x7fc00000);  // unreachable for validated types: poison, not zero
}

}  // namespace pv::kernels::cuda
