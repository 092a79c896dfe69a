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
    default:  // types without CUDA kernels are refused by prepare_weight
      break;
  }
  return __int_as_float(0x7fc00000);  // unreachable for validated types: poison, not zero
}

}  // namespace pv::kernels::cuda
