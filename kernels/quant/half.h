// IEEE binary16 and bfloat16 <-> float32 conversions, scalar and exact: float -> half/bf16
// rounds to nearest, ties to even (what numpy/PyTorch/ggml produce), half/bf16 -> float is
// exact. GGUF stores F16/BF16 tensors and every block scale in these formats, so any
// rounding difference here shows up as a bit mismatch against the ggml oracle.
#pragma once

#include <bit>
#include <cstdint>

namespace pv::kernels {

inline float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t em = h & 0x7fffu;
  uint32_t bits;
  if (em >= 0x7c00u) {  // inf / nan: keep the payload
    bits = sign | 0x7f800000u | ((em & 0x3ffu) << 13);
  } else if (em >= 0x0400u) {  // normal: rebias the exponent 15 -> 127
    bits = sign | ((em << 13) + 0x38000000u);
  } else {  // zero / subnormal: em * 2^-24 is exact in float
    bits = sign | std::bit_cast<uint32_t>(static_cast<float>(em) * 0x1p-24f);
  }
  return std::bit_cast<float>(bits);
}

inline uint16_t fp32_to_fp16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) {  // inf stays inf; nan stays a (quiet) nan
    return static_cast<uint16_t>(sign | 0x7c00u |
                                 (ax > 0x7f800000u ? 0x200u | ((ax >> 13) & 0x3ffu) : 0u));
  }
  if (ax >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // >= 65520 -> inf
  if (ax < 0x38800000u) {
    // Below the smallest normal half: adding 0.5f puts the float ulp at 2^-24 (the half
    // subnormal unit), so the FPU's own round-to-nearest-even does the rounding.
    const float v = std::bit_cast<float>(ax) + 0.5f;
    return static_cast<uint16_t>(sign | (std::bit_cast<uint32_t>(v) - 0x3f000000u));
  }
  const uint32_t odd = (ax >> 13) & 1u;
  ax += 0xc8000fffu + odd;  // rebias 127 -> 15 and round half to even on bit 13
  return static_cast<uint16_t>(sign | (ax >> 13));
}

// fp16 of v rounded away from zero to the next representable magnitude when the nearest one is
// smaller: a block scale stored this way never maps the block's extreme value past the end
// of the quant range, so quantizers need no clamp (which matters for tiny, subnormal scales,
// whose fp16 rounding is coarse).
inline uint16_t fp32_to_fp16_round_up(float v) {
  uint16_t h = fp32_to_fp16(v);
  const float back = fp16_to_fp32(h);
  if ((h & 0x7fffu) < 0x7bffu && (back < 0.0f ? -back : back) < (v < 0.0f ? -v : v)) ++h;
  return h;
}

inline float bf16_to_fp32(uint16_t h) {
  return std::bit_cast<float>(static_cast<uint32_t>(h) << 16);
}

inline uint16_t fp32_to_bf16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // nan
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

}  // namespace pv::kernels
