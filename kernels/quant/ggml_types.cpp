#include "kernels/quant/ggml_types.h"

#include <array>
#include <stdexcept>
#include <string>

namespace pv::kernels {
namespace {

constexpr std::array<TypeTraits, 15> kTraits = {{
    {GgmlType::F32, "F32", 1, 4},
    {GgmlType::F16, "F16", 1, 2},
    {GgmlType::Q4_0, "Q4_0", 32, 18},
    {GgmlType::Q4_1, "Q4_1", 32, 20},
    {GgmlType::Q5_0, "Q5_0", 32, 22},
    {GgmlType::Q5_1, "Q5_1", 32, 24},
    {GgmlType::Q8_0, "Q8_0", 32, 34},
    {GgmlType::Q2_K, "Q2_K", 256, 84},
    {GgmlType::Q3_K, "Q3_K", 256, 110},
    {GgmlType::Q4_K, "Q4_K", 256, 144},
    {GgmlType::Q5_K, "Q5_K", 256, 176},
    {GgmlType::Q6_K, "Q6_K", 256, 210},
    {GgmlType::IQ4_NL, "IQ4_NL", 32, 18},
    {GgmlType::IQ4_XS, "IQ4_XS", 256, 136},
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
