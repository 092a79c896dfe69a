#include "model/formats/finite_scan.h"

#include <cstring>

#include "kernels/quant/quant_blocks.h"
#include "mutants/mutant.h"

namespace pv::model {
namespace {

using kernels::GgmlType;

// The exponent bits all set: Inf or NaN, for each width (checked on the bits: no
// conversion, and memcpy, so data at any address is fine).
bool f32_bad(const uint8_t* p) {
  uint32_t u;
  std::memcpy(&u, p, 4);
  return (u & 0x7F800000u) == 0x7F800000u;
}
bool f16_bad(const uint8_t* p) {
  uint16_t u;
  std::memcpy(&u, p, 2);
  return (u & 0x7C00u) == 0x7C00u;
}
bool bf16_bad(const uint8_t* p) {
  uint16_t u;
  std::memcpy(&u, p, 2);
  return (u & 0x7F80u) == 0x7F80u;
}

// Every `stride` bytes, the fields at `offsets` (fp16).
template <size_t N>
std::optional<uint64_t> scan_scales(const uint8_t* data, uint64_t nbytes, uint64_t stride,
                                    const uint64_t (&offsets)[N]) {
  for (uint64_t b = 0; b + stride <= nbytes; b += stride) {
    for (uint64_t o : offsets) {
      if (f16_bad(data + b + o)) return b + o;
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<uint64_t> first_non_finite(GgmlType type, const uint8_t* data, uint64_t nbytes) {
  if (mutant::planted(mutant::Bug::NonFiniteAccepted)) return std::nullopt;
  switch (type) {
    case GgmlType::F32:
      for (uint64_t k = 0; k + 4 <= nbytes; k += 4) {
        if (f32_bad(data + k)) return k;
      }
      return std::nullopt;
    case GgmlType::F16:
      for (uint64_t k = 0; k + 2 <= nbytes; k += 2) {
        if (f16_bad(data + k)) return k;
      }
      return std::nullopt;
    case GgmlType::BF16:
      for (uint64_t k = 0; k + 2 <= nbytes; k += 2) {
        if (bf16_bad(data + k)) return k;
      }
      return std::nullopt;
    case GgmlType::Q8_0: {
      static constexpr uint64_t o[] = {offsetof(kernels::BlockQ8_0, d)};
      return scan_scales(data, nbytes, sizeof(kernels::BlockQ8_0), o);
    }
    case GgmlType::Q4_0: {
      static constexpr uint64_t o[] = {offsetof(kernels::BlockQ4_0, d)};
      return scan_scales(data, nbytes, sizeof(kernels::BlockQ4_0), o);
    }
    case GgmlType::Q4_K: {
      static constexpr uint64_t o[] = {offsetof(kernels::BlockQ4_K, d),
                                       offsetof(kernels::BlockQ4_K, dmin)};
      return scan_scales(data, nbytes, sizeof(kernels::BlockQ4_K), o);
    }
    case GgmlType::Q6_K: {
      static constexpr uint64_t o[] = {offsetof(kernels::BlockQ6_K, d)};
      return scan_scales(data, nbytes, sizeof(kernels::BlockQ6_K), o);
    }
    case GgmlType::Q4_1: {
      static constexpr uint64_t o[] = {offsetof(kernels::BlockQ4_1, d),
                                       offsetof(kernels::BlockQ4_1, m)};
      return scan_scales(data, nbytes, sizeof(kernels::BlockQ4_1), o);
    }
    case GgmlType::Q5_0: {
      static constexpr uint64_t o[] = {offsetof(kernels::BlockQ5_0, d)};
      return scan_scales(data, nbytes, sizeof(kernels::BlockQ5_0), o);
    }
    case GgmlType::Q5_1: {
      static constexpr uint64_t o[] = {offsetof(kernels::BlockQ5_1, d),
                                       offsetof(kernels::BlockQ5_1, m)};
      return scan_scales(data, nbytes, sizeof(kernels::BlockQ5_1), o);
    }
    case GgmlType::Q2_K: {
      static constexpr uint64_t o[] = {offsetof(kernels::BlockQ2_K, d),
                                       offsetof(kernels::BlockQ2_K, dmin)};
      return scan_scales(data, nbytes, sizeof(kernels::BlockQ2_K), o);
    }
    case GgmlType::Q3_K: {
      static constexpr uint64_t o[] = {offsetof(kernels::BlockQ3_K, d)};
      return scan_scales(data, nbytes, sizeof(kernels::BlockQ3_K), o);
    }
    case GgmlType::Q5_K: {
      static constexpr uint64_t o[] = {offsetof(kernels::BlockQ5_K, d),
                                       offsetof(kernels::BlockQ5_K, dmin)};
      return scan_scales(data, nbytes, sizeof(kernels::BlockQ5_K), o);
    }
    case GgmlType::IQ4_NL: {
      static constexpr uint64_t o[] = {offsetof(kernels::BlockIQ4_NL, d)};
      return scan_scales(data, nbytes, sizeof(kernels::BlockIQ4_NL), o);
    }
    case GgmlType::IQ4_XS: {
      static constexpr uint64_t o[] = {offsetof(kernels::BlockIQ4_XS, d)};
      return scan_scales(data, nbytes, sizeof(kernels::BlockIQ4_XS), o);
    }
    default:
      return std::nullopt;
  }
}

}  // namespace pv::model
