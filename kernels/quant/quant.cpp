// Row decoders for every stored type and the quantizers of the plain and 32-value block
// types; the K-quant quantizers live in quant_k.cpp. Decoders follow ggml's arithmetic
// order exactly (scale products formed in f32 first), which is what makes them bit-exact.
#include "kernels/quant/quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "kernels/quant/quant_blocks.h"
#include "kernels/quant/quant_k.h"

namespace pv::kernels {
namespace {

// Validates n against the type's block size (row_bytes throws a clear error) and returns
// the number of blocks.
int64_t blocks_of(GgmlType type, int64_t n) {
  const size_t bytes = row_bytes(type, n);
  return static_cast<int64_t>(bytes / traits(type).block_bytes);
}

void dequantize_q8_0(const BlockQ8_0* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(b[i].d);
    for (int j = 0; j < kQK; ++j) y[i * kQK + j] = static_cast<float>(b[i].qs[j]) * d;
  }
}

void dequantize_q4_0(const BlockQ4_0* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(b[i].d);
    for (int j = 0; j < kQK / 2; ++j) {
      y[i * kQK + j] = static_cast<float>((b[i].qs[j] & 0xF) - 8) * d;
      y[i * kQK + j + kQK / 2] = static_cast<float>((b[i].qs[j] >> 4) - 8) * d;
    }
  }
}

void dequantize_q4_K(const BlockQ4_K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(b[i].d);
    const float dmin = fp16_to_fp32(b[i].dmin);
    const uint8_t* q = b[i].qs;
    for (int c = 0; c < 4; ++c) {  // four 64-value chunks, each two sub-blocks
      uint8_t sc, m;
      q4k_scale_min(2 * c, b[i].scales, &sc, &m);
      const float d1 = d * sc, m1 = dmin * m;
      q4k_scale_min(2 * c + 1, b[i].scales, &sc, &m);
      const float d2 = d * sc, m2 = dmin * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
      q += 32;
    }
  }
}

void dequantize_q6_K(const BlockQ6_K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(b[i].d);
    const uint8_t* ql = b[i].ql;
    const uint8_t* qh = b[i].qh;
    const int8_t* sc = b[i].scales;
    for (int half = 0; half < 2; ++half) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
        y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
        y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
        y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
      }
      y += 128;
      ql += 64;
      qh += 32;
      sc += 8;
    }
  }
}

// Q8_0: d = amax/127 rounded up to fp16; q is computed against the stored d, so
// |x - d*q| <= d/2 for every value of the stored block (no value reaches the clamp).
void quantize_q8_0(const float* x, BlockQ8_0* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
    b[i].d = fp32_to_fp16_round_up(amax / 127.0f);
    const float d = fp16_to_fp32(b[i].d);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < kQK; ++j) {
      const float q = std::nearbyint(x[j] * id);
      b[i].qs[j] = static_cast<int8_t>(std::clamp(q, -127.0f, 127.0f));
    }
  }
}

// Q4_0: the value of largest magnitude maps to -8 (d = -xmax/8, magnitude rounded up to fp16),
// using the full 16-level range on that side; values on the other side clamp at +7, so
// |err| <= |d|/2 on the extreme's side and |err| <= |d| overall.
void quantize_q4_0(const float* x, BlockQ4_0* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    float amax = 0.0f, xmax = 0.0f;
    for (int j = 0; j < kQK; ++j) {
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        xmax = x[j];
      }
    }
    b[i].d = fp32_to_fp16_round_up(xmax / -8.0f);
    const float d = fp16_to_fp32(b[i].d);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    auto level = [&](float v) {
      return static_cast<uint8_t>(std::clamp(std::nearbyint(v * id) + 8.0f, 0.0f, 15.0f));
    };
    for (int j = 0; j < kQK / 2; ++j) {
      b[i].qs[j] = static_cast<uint8_t>(level(x[j]) | (level(x[j + kQK / 2]) << 4));
    }
  }
}

}  // namespace

void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n) {
  const int64_t nb = blocks_of(type, n);
  switch (type) {
    case GgmlType::F32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case GgmlType::F16: {
      const auto* h = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(h[i]);
      return;
    }
    case GgmlType::BF16: {
      const auto* h = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(h[i]);
      return;
    }
    case GgmlType::Q8_0:
      return dequantize_q8_0(static_cast<const BlockQ8_0*>(src), dst, nb);
    case GgmlType::Q4_0:
      return dequantize_q4_0(static_cast<const BlockQ4_0*>(src), dst, nb);
    case GgmlType::Q4_K:
      return dequantize_q4_K(static_cast<const BlockQ4_K*>(src), dst, nb);
    case GgmlType::Q6_K:
      return dequantize_q6_K(static_cast<const BlockQ6_K*>(src), dst, nb);
    default:
      break;
  }
  throw std::invalid_argument("dequantize_row: unsupported type id " +
                              std::to_string(static_cast<uint32_t>(type)));
}

void quantize_row(GgmlType type, const float* src, void* dst, int64_t n) {
  const int64_t nb = blocks_of(type, n);
  if (traits(type).block_values > 1) {
    // Block scales are derived from the values; an inf/NaN would poison a whole block.
    for (int64_t i = 0; i < n; ++i) {
      if (!std::isfinite(src[i])) {
        throw std::invalid_argument("quantize_row: " + std::string(type_name(type)) +
                                    " input value " + std::to_string(i) + " is not finite");
      }
    }
  }
  switch (type) {
    case GgmlType::F32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case GgmlType::F16: {
      auto* h = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) h[i] = fp32_to_fp16(src[i]);
      return;
    }
    case GgmlType::BF16: {
      auto* h = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) h[i] = fp32_to_bf16(src[i]);
      return;
    }
    case GgmlType::Q8_0:
      return quantize_q8_0(src, static_cast<BlockQ8_0*>(dst), nb);
    case GgmlType::Q4_0:
      return quantize_q4_0(src, static_cast<BlockQ4_0*>(dst), nb);
    case GgmlType::Q4_K:
      return quantize_q4_K(src, static_cast<BlockQ4_K*>(dst), nb);
    case GgmlType::Q6_K:
      return quantize_q6_K(src, static_cast<BlockQ6_K*>(dst), nb);
    default:
      break;
  }
  throw std::invalid_argument("quantize_row: unsupported type id " +
                              std::to_string(static_cast<uint32_t>(type)));
}

}  // namespace pv::kernels
