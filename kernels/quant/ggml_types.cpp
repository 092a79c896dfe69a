#include "kernels/quant/ggml_types.h"

#include <array>
#include <stdexcept>
#include <string>

namespace pv::kernels {
namespace {

constexpr std::array<TypeTraits, 7> kTraits = {{
    {GgmlType::F32, "F32", 1, 4},
    {GgmlType::F16, "F16", 1, 2},
    {GgmlType::Q4_0, "Q4_0", 32, 18},
    {GgmlType::Q8_0, "Q8_0", 32, 34},
    {GgmlType::Q4_K, "Q4_K", 256, 144},
    {GgmlType::Q6_K, "Q6_K", 256, 210},
    {GgmlType::BF16, "BF16", 1, 2},
}};

}  // namespace

std::optional<TypeTraits> type_traits(uint32_t ggml_type_id) {
  for (const auto& t : kTraits) {
    if (static_cast<uint32_t>(t.type) == ggml_type_id) return t;
  }
  return std::nullopt;
}

const TypeTraits& traits(GgmlType type) {
  for (const auto& t : kTraits) {
    if (t.type == type) return t;
  }
  throw std::invalid_argument("unsupported ggml type id " +
                              std::to_string(static_cast<uint32_t>(type)));
}

std::string_view type_name(GgmlType type) { return traits(type).name; }

size_t row_bytes(GgmlType type, int64_t n) {
  const TypeTraits& t = traits(type);
  if (n < 0 || n % t.block_values != 0) {
    throw std::invalid_argument("a " + std::string(t.name) + " row of " + std::to_string(n) +
                                " values is not a multiple of its block size " +
                                std::to_string(t.block_values));
  }
  return static_cast<size_t>(n / t.block_values) * t.block_bytes;
}

}  // namespace pv::kernels
