// Weight storage types shared by the file readers (model/) and the kernels.
// Ids and block layouts are ggml's (see ../shared/REFERENCE.md): a GGUF tensor
// keeps its stored type all the way to the matvec; nothing is dequantized at load.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace pv::kernels {

// The ids are ggml's, so they have gaps: every ggml type missing here (Q8_1, Q8_K, the
// IQ1/IQ2/IQ3 lattice types, ternary types, ...) is refused by the readers, by name and id.
enum class GgmlType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,     // 32 values: f16 scale, 4-bit codes
  Q4_1 = 3,     // 32 values: f16 scale and min, 4-bit codes
  Q5_0 = 6,     // 32 values: f16 scale, 4-bit codes + 32 high bits
  Q5_1 = 7,     // 32 values: f16 scale and min, 4-bit codes + 32 high bits
  Q8_0 = 8,     // 32 values: f16 scale, int8 codes
  Q2_K = 10,    // 256 values: f16 scale and min, 4-bit sub-block scales/mins, 2-bit codes
  Q3_K = 11,    // 256 values: f16 scale, 6-bit signed sub-block scales, 2-bit codes + high bits
  Q4_K = 12,    // 256 values: f16 scale and min, 6-bit sub-block scales, 4-bit codes
  Q5_K = 13,    // 256 values: as Q4_K plus one high bit per value
  Q6_K = 14,    // 256 values: f16 scale, int8 sub-block scales, 6-bit codes
  IQ4_NL = 20,  // 32 values: f16 scale, 4-bit indices into a fixed non-linear codebook
  IQ4_XS = 23,  // 256 values: f16 scale, 6-bit sub-block scales, IQ4_NL codebook indices
  BF16 = 30,
};

struct TypeTraits {
  GgmlType type;
  std::string_view name;
  int block_values;    // values per block (1 for plain float types)
  size_t block_bytes;  // bytes per block
};

// Traits for a supported type; nullopt for an id pv does not implement.
std::optional<TypeTraits> type_traits(uint32_t ggml_type_id);
// ggml's name of any type id it defines (also those pv does not implement, so an error or
// `pv inspect` can say "IQ2_XXS (16)"); nullopt for an id ggml does not define.
std::optional<std::string_view> ggml_type_name(uint32_t ggml_type_id);
// Block geometry of any type id ggml defines, implemented by pv or not (so a reader can
// size and skip a tensor it cannot decode); nullopt for an id ggml does not define.
struct BlockGeometry {
  int block_values;
  size_t block_bytes;
};
std::optional<BlockGeometry> ggml_block_geometry(uint32_t ggml_type_id);
// "Q5_K (13)", or "unknown type (77)" for an id ggml does not define.
std::string describe_type_id(uint32_t ggml_type_id);
const TypeTraits& traits(GgmlType type);
std::string_view type_name(GgmlType type);

// Bytes of one row of `n` values; throws std::invalid_argument when n is not a
// multiple of the block size (a clear error, never a silent truncation).
size_t row_bytes(GgmlType type, int64_t n);

}  // namespace pv::kernels
