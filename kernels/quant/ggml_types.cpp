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

// ggml's type names by id (ggml.h's enum ggml_type); empty entries are ids ggml retired.
constexpr std::array<std::string_view, 40> kGgmlNames = {
    "F32",    "F16",   "Q4_0",  "Q4_1",   "",      "",      "Q5_0",    "Q5_1",   "Q8_0",    "Q8_1",
    "Q2_K",   "Q3_K",  "Q4_K",  "Q5_K",   "Q6_K",  "Q8_K",  "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S",
    "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS", "I8",    "I16",   "I32",     "I64",    "F64",     "IQ1_M",
    "BF16",   "",      "",      "",       "TQ1_0", "TQ2_0", "",        "",       "",        "MXFP4",
};

}  // namespace

std::optional<TypeTraits> type_traits(uint32_t ggml_type_id) {
  for (const auto& t : kTraits) {
    if (static_cast<uint32_t>(t.type) == ggml_type_id) return t;
  }
  return std::nullopt;
}

// Values and bytes per block of every ggml type by id (ggml-common.h's block structs; 0/0
// for retired ids). The IQ1/IQ2/IQ3 lattice, ternary and MXFP4 layouts are listed only so a
// file holding them can be walked and shown; pv decodes none of them.
constexpr std::array<BlockGeometry, 40> kGgmlGeometry = {{
    {1, 4},    {1, 2},    {32, 18},  {32, 20},   {0, 0},     {0, 0},     {32, 22},   {32, 24},
    {32, 34},  {32, 36},  {256, 84}, {256, 110}, {256, 144}, {256, 176}, {256, 210}, {256, 292},
    {256, 66}, {256, 74}, {256, 98}, {256, 50},  {32, 18},   {256, 110}, {256, 82},  {256, 136},
    {1, 1},    {1, 2},    {1, 4},    {1, 8},     {1, 8},     {256, 56},  {1, 2},     {0, 0},
    {0, 0},    {0, 0},    {256, 54}, {256, 66},  {0, 0},     {0, 0},     {0, 0},     {32, 17},
}};

std::optional<BlockGeometry> ggml_block_geometry(uint32_t ggml_type_id) {
  if (ggml_type_id >= kGgmlGeometry.size() || kGgmlGeometry[ggml_type_id].block_values == 0) {
    return std::nullopt;
  }
  return kGgmlGeometry[ggml_type_id];
}

std::optional<std::string_view> ggml_type_name(uint32_t ggml_type_id) {
  if (ggml_type_id >= kGgmlNames.size() || kGgmlNames[ggml_type_id].empty()) return std::nullopt;
  return kGgmlNames[ggml_type_id];
}

std::string describe_type_id(uint32_t ggml_type_id) {
  const auto name = ggml_type_name(ggml_type_id);
  return (name ? std::string(*name) : std::string("unknown type")) + " (" +
         std::to_string(ggml_type_id) + ")";
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
