// Device-side decoding of GGUF weight blocks (layouts in ../shared/REFERENCE.md, ggml's).
// Two forms: dequant_one() decodes a single value anywhere in a row (embeddings, norm
// weights, biases: small, read once), and the Block* structs below decode one thread's
// share of a block straight into a dot product for the matvec (the hot path).
#pragma once

#include <cuda_fp16.h>

#include <cstdint>

#include "kernels/ggml_types.h"

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

// Exact small-integer -> float without I2F (a quarter-rate instruction on Hopper that
// would cap the matvec below memory speed): the byte k of `w` (0..255) becomes the float
// 2^23 + byte by placing it under the exponent bits 0x4B with one PRMT, then one FADD
// removes 2^23 (and `bias`). Exact for every byte value.
template <int k>
__device__ __forceinline__ float byte_to_float(uint32_t w, float bias) {
  const uint32_t bits = __byte_perm(w, 0x4B000000u, 0x7540u | k);
  return __uint_as_float(bits) - (8388608.0f + bias);
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

// The same scale/min from the 12 bytes held in registers (s[0..3], s[4..7], s[8..11] in
// hd.y, hd.z, hd.w); j is a run-time value, so bytes are picked by shifts, not indexing.
__device__ __forceinline__ void q4k_scale_min_regs(const uint4& hd, int j, float* sc, float* m) {
  const int k = 8 * (j & 3);
  const uint32_t a = (hd.y >> k) & 0xff, b = (hd.z >> k) & 0xff;
  if (j < 4) {
    *sc = static_cast<float>(a & 63);
    *m = static_cast<float>(b & 63);
  } else {
    const uint32_t e = (hd.w >> k) & 0xff;
    *sc = static_cast<float>((e & 15) | ((a >> 6) << 4));
    *m = static_cast<float>((e >> 4) | ((b >> 6) << 4));
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
  }
  return __int_as_float(0x7fc00000);  // unreachable for validated types: poison, not zero
}

// ---- matvec block decoders ------------------------------------------------------------
// Each quant block is shared by kParts threads of a warp; dot<NT>() adds the thread's
// share of w_block . x_t to acc[t] for NT tokens at once (x advances by xstride floats per
// token), so a weight block is fetched and decoded once per NT tokens.

struct BlockQ8_0 {
  static constexpr int kValues = 32, kBytes = 34, kParts = 4;  // 8 values per thread
  template <int NT>
  __device__ static void dot(const uint8_t* b, int part, const float* x, int64_t xstride, int ntok,
                             float (&acc)[NT]) {
    const float d = f16_to_f32(ld_u16(b));
    const uint32_t q0 = ld_u32_a2(b + 2 + 8 * part), q1 = ld_u32_a2(b + 6 + 8 * part);
    float w[8];
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      w[k] = static_cast<float>(static_cast<int8_t>(q0 >> (8 * k)));
      w[k + 4] = static_cast<float>(static_cast<int8_t>(q1 >> (8 * k)));
    }
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      if (t >= ntok) break;
      const float* xt = x + t * xstride + 8 * part;
      const float4 a = ld_f4(xt), c = ld_f4(xt + 4);
      const float s = w[0] * a.x + w[1] * a.y + w[2] * a.z + w[3] * a.w + w[4] * c.x + w[5] * c.y +
                      w[6] * c.z + w[7] * c.w;
      acc[t] += d * s;
    }
  }
  template <int R>
  __device__ static void dot_rows(const uint8_t* b, size_t rb, int part, const float* x,
                                  float (&acc)[R]) {
    const float4 a = ld_f4(x + 8 * part), c = ld_f4(x + 8 * part + 4);
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const uint8_t* p = b + r * rb;
      const float d = f16_to_f32(ld_u16(p));
      // The 8 quant bytes sit at a 2-byte-aligned address: two or three aligned 4-byte
      // loads and a funnel shift replace four 2-byte loads (the load units, not DRAM,
      // were the limit). The tail is a 2-byte load, so no load ever leaves the block.
      const uint8_t* q = p + 2 + 8 * part;
      const unsigned sh = static_cast<unsigned>(reinterpret_cast<uintptr_t>(q) & 3u) * 8u;
      const uint32_t* aw = reinterpret_cast<const uint32_t*>(q - (sh >> 3));
      const uint32_t w0 = __ldg(aw), w1 = __ldg(aw + 1);
      const uint32_t w2 = sh != 0 ? ld_u16(reinterpret_cast<const uint8_t*>(aw + 2)) : 0u;
      // Signed bytes biased by 128 (xor 0x80) so the exact byte->float trick applies.
      const uint32_t q0 = __funnelshift_r(w0, w1, sh) ^ 0x80808080u;
      const uint32_t q1 = __funnelshift_r(w1, w2, sh) ^ 0x80808080u;
      const float s = byte_to_float<0>(q0, 128.f) * a.x + byte_to_float<1>(q0, 128.f) * a.y +
                      byte_to_float<2>(q0, 128.f) * a.z + byte_to_float<3>(q0, 128.f) * a.w +
                      byte_to_float<0>(q1, 128.f) * c.x + byte_to_float<1>(q1, 128.f) * c.y +
                      byte_to_float<2>(q1, 128.f) * c.z + byte_to_float<3>(q1, 128.f) * c.w;
      acc[r] += d * s;
    }
  }
};

// Batch-1 form for R rows at once: the thread's x values are loaded once and reused for
// the same block position of R consecutive rows (row stride rb bytes).
template <class Q, int R>
__device__ __forceinline__ void dot_rows_generic(const uint8_t* b, size_t rb, int part,
                                                 const float* x, float (&acc)[R]) {
#pragma unroll
  for (int r = 0; r < R; ++r) {
    float a[1] = {0.f};
    Q::template dot<1>(b + r * rb, part, x, 0, 1, a);
    acc[r] += a[0];
  }
}

struct BlockQ4_0 {
  static constexpr int kValues = 32, kBytes = 18, kParts = 2;  // 16 values per thread
  template <int NT>
  __device__ static void dot(const uint8_t* b, int part, const float* x, int64_t xstride, int ntok,
                             float (&acc)[NT]) {
    const float d = f16_to_f32(ld_u16(b));
    const uint32_t q0 = ld_u32_a2(b + 2 + 8 * part), q1 = ld_u32_a2(b + 6 + 8 * part);
    float lo[8], hi[8];
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      lo[k] = static_cast<float>((q0 >> (8 * k)) & 15);
      hi[k] = static_cast<float>((q0 >> (8 * k + 4)) & 15);
      lo[k + 4] = static_cast<float>((q1 >> (8 * k)) & 15);
      hi[k + 4] = static_cast<float>((q1 >> (8 * k + 4)) & 15);
    }
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      if (t >= ntok) break;
      const float* xt = x + t * xstride + 8 * part;
      const float4 a = ld_f4(xt), c = ld_f4(xt + 4), e = ld_f4(xt + 16), f = ld_f4(xt + 20);
      const float s = lo[0] * a.x + lo[1] * a.y + lo[2] * a.z + lo[3] * a.w + lo[4] * c.x +
                      lo[5] * c.y + lo[6] * c.z + lo[7] * c.w + hi[0] * e.x + hi[1] * e.y +
                      hi[2] * e.z + hi[3] * e.w + hi[4] * f.x + hi[5] * f.y + hi[6] * f.z +
                      hi[7] * f.w;
      const float sx = a.x + a.y + a.z + a.w + c.x + c.y + c.z + c.w + e.x + e.y + e.z + e.w + f.x +
                       f.y + f.z + f.w;
      acc[t] += d * (s - 8.0f * sx);
    }
  }
  template <int R>
  __device__ static void dot_rows(const uint8_t* b, size_t rb, int part, const float* x,
                                  float (&acc)[R]) {
    dot_rows_generic<BlockQ4_0, R>(b, rb, part, x, acc);
  }
};

// Q4_K: 8 threads per 144-byte super-block; thread p reads 16 quant bytes (one 16-byte
// load: a block is 144 = 9*16 bytes, so these stay aligned) holding 16 values of
// sub-block 2c (low nibbles) and 16 of sub-block 2c+1 (high nibbles), c = p/2.
struct BlockQ4_K {
  static constexpr int kValues = 256, kBytes = 144, kParts = 8;
  template <int NT>
  __device__ static void dot(const uint8_t* b, int part, const float* x, int64_t xstride, int ntok,
                             float (&acc)[NT]) {
    const int c = part >> 1, h = part & 1;
    const uint4 qv = __ldg(reinterpret_cast<const uint4*>(b + 16 + 32 * c + 16 * h));
    const float d = f16_to_f32(ld_u16(b)), dmin = f16_to_f32(ld_u16(b + 2));
    float sc0, m0, sc1, m1;
    q4k_scale_min(b + 4, 2 * c, &sc0, &m0);
    q4k_scale_min(b + 4, 2 * c + 1, &sc1, &m1);
    const uint32_t qw[4] = {qv.x, qv.y, qv.z, qv.w};
    float lo[16], hi[16];
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      lo[i] = static_cast<float>((qw[i / 4] >> (8 * (i % 4))) & 15);
      hi[i] = static_cast<float>((qw[i / 4] >> (8 * (i % 4) + 4)) & 15);
    }
    const float a0 = d * sc0, a1 = d * sc1, b0 = dmin * m0, b1 = dmin * m1;
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      if (t >= ntok) break;
      const float* xl = x + t * xstride + 64 * c + 16 * h;
      const float* xh = xl + 32;
      float sl = 0.f, sh = 0.f, xsl = 0.f, xsh = 0.f;
#pragma unroll
      for (int i = 0; i < 16; i += 4) {
        const float4 u = ld_f4(xl + i), v = ld_f4(xh + i);
        sl += lo[i] * u.x + lo[i + 1] * u.y + lo[i + 2] * u.z + lo[i + 3] * u.w;
        sh += hi[i] * v.x + hi[i + 1] * v.y + hi[i + 2] * v.z + hi[i + 3] * v.w;
        xsl += (u.x + u.y) + (u.z + u.w);
        xsh += (v.x + v.y) + (v.z + v.w);
      }
      acc[t] += a0 * sl + a1 * sh - b0 * xsl - b1 * xsh;
    }
  }
  template <int R>
  __device__ static void dot_rows(const uint8_t* b, size_t rb, int part, const float* x,
                                  float (&acc)[R]) {
    const int c = part >> 1, h = part & 1;
    const float* xl = x + 64 * c + 16 * h;
    float xlo[16], xhi[16];
#pragma unroll
    for (int i = 0; i < 16; i += 4) {
      const float4 u = ld_f4(xl + i), v = ld_f4(xl + 32 + i);
      xlo[i] = u.x, xlo[i + 1] = u.y, xlo[i + 2] = u.z, xlo[i + 3] = u.w;
      xhi[i] = v.x, xhi[i + 1] = v.y, xhi[i + 2] = v.z, xhi[i + 3] = v.w;
    }
    float xsl = 0.f, xsh = 0.f;
#pragma unroll
    for (int i = 0; i < 16; ++i) xsl += xlo[i], xsh += xhi[i];
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const uint8_t* p = b + r * rb;
      const uint4 qv = __ldg(reinterpret_cast<const uint4*>(p + 16 + 32 * c + 16 * h));
      // d, dmin and the 12 scale bytes in one 16-byte load (a block is 16-byte aligned):
      // hd.x = d|dmin, hd.y = s[0..3], hd.z = s[4..7], hd.w = s[8..11].
      const uint4 hd = __ldg(reinterpret_cast<const uint4*>(p));
      float sc0, m0, sc1, m1;
      q4k_scale_min_regs(hd, 2 * c, &sc0, &m0);
      q4k_scale_min_regs(hd, 2 * c + 1, &sc1, &m1);
      const uint32_t dm = hd.x;
      const uint32_t qw[4] = {qv.x, qv.y, qv.z, qv.w};
      float sl = 0.f, sh = 0.f;
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        const uint32_t lo = qw[k] & 0x0F0F0F0Fu, hi = (qw[k] >> 4) & 0x0F0F0F0Fu;
        sl += byte_to_float<0>(lo, 0.f) * xlo[4 * k] + byte_to_float<1>(lo, 0.f) * xlo[4 * k + 1] +
              byte_to_float<2>(lo, 0.f) * xlo[4 * k + 2] +
              byte_to_float<3>(lo, 0.f) * xlo[4 * k + 3];
        sh += byte_to_float<0>(hi, 0.f) * xhi[4 * k] + byte_to_float<1>(hi, 0.f) * xhi[4 * k + 1] +
              byte_to_float<2>(hi, 0.f) * xhi[4 * k + 2] +
              byte_to_float<3>(hi, 0.f) * xhi[4 * k + 3];
      }
      const float d = f16_to_f32(static_cast<uint16_t>(dm & 0xffff));
      const float dmin = f16_to_f32(static_cast<uint16_t>(dm >> 16));
      acc[r] += d * (sc0 * sl + sc1 * sh) - dmin * (m0 * xsl + m1 * xsh);
    }
  }
};

// Q6_K: 16 threads per 210-byte super-block (2-byte aligned only); thread p covers
// half h = p/8 and positions l = 4j..4j+3 (j = p%8) of all four 32-value quarters.
struct BlockQ6_K {
  static constexpr int kValues = 256, kBytes = 210, kParts = 16;
  template <int NT>
  __device__ static void dot(const uint8_t* b, int part, const float* x, int64_t xstride, int ntok,
                             float (&acc)[NT]) {
    const int h = part >> 3, l0 = 4 * (part & 7), is = (part & 7) >> 2;
    const uint32_t qa = ld_u32_a2(b + 64 * h + l0);
    const uint32_t qb = ld_u32_a2(b + 64 * h + 32 + l0);
    const uint32_t qh = ld_u32_a2(b + 128 + 32 * h + l0);
    const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192 + 8 * h + is);
    const float d = f16_to_f32(ld_u16(b + 208));
    const float s0 = d * sc[0], s1 = d * sc[2], s2 = d * sc[4], s3 = d * sc[6];
    float w[4][4];
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      w[0][k] = static_cast<float>(
          static_cast<int>(((qa >> (8 * k)) & 15) | (((qh >> (8 * k)) & 3) << 4)) - 32);
      w[1][k] = static_cast<float>(
          static_cast<int>(((qb >> (8 * k)) & 15) | (((qh >> (8 * k + 2)) & 3) << 4)) - 32);
      w[2][k] = static_cast<float>(
          static_cast<int>(((qa >> (8 * k + 4)) & 15) | (((qh >> (8 * k + 4)) & 3) << 4)) - 32);
      w[3][k] = static_cast<float>(
          static_cast<int>(((qb >> (8 * k + 4)) & 15) | (((qh >> (8 * k + 6)) & 3) << 4)) - 32);
    }
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      if (t >= ntok) break;
      const float* xt = x + t * xstride + 128 * h + l0;
      float s[4];
#pragma unroll
      for (int qq = 0; qq < 4; ++qq) {
        const float4 u = ld_f4(xt + 32 * qq);
        s[qq] = w[qq][0] * u.x + w[qq][1] * u.y + w[qq][2] * u.z + w[qq][3] * u.w;
      }
      acc[t] += s0 * s[0] + s1 * s[1] + s2 * s[2] + s3 * s[3];
    }
  }
  template <int R>
  __device__ static void dot_rows(const uint8_t* b, size_t rb, int part, const float* x,
                                  float (&acc)[R]) {
    dot_rows_generic<BlockQ6_K, R>(b, rb, part, x, acc);
  }
};

}  // namespace pv::kernels::cuda
