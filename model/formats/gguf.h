// GGUF v3 files: the parsed structure and the validating reader.
// The reader checks everything before it is used: every count and length against the
// bytes left in the file (before any allocation is sized by it), n_dims <= 4, type ids,
// tensor names, alignment, and that tensor data is aligned, inside the file and
// non-overlapping. Tensor data is not copied: GgufTensorInfo::data points into the map
// (or, for data the file places at a misaligned byte, to an aligned copy: see MappedFile).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/quant/ggml_types.h"
#include "model/formats/mapped_file.h"

namespace pv::model {

enum class GgufType : uint32_t {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
};

// What a value type is, from one table the reader, the writer and the renderers share.
enum class GgufKind { Unsigned, Signed, Float, Bool, String, Array };
struct GgufTypeInfo {
  GgufType type;
  std::string_view name;  // "u8", "i32", "string", ...
  GgufKind kind;
  // Bytes of one value: exact for the fixed-size types, the smallest encoding for a
  // string (its u64 length) and an array (u32 element type + u64 count).
  uint32_t min_bytes;
};
// Info of a type id; nullptr for an id that is not a GGUF value type.
const GgufTypeInfo* gguf_type_info(uint32_t type_id);
const GgufTypeInfo& gguf_type_info(GgufType t);
std::string_view gguf_type_name(GgufType t);

// One metadata value. Integers keep their exact value in `u` or `i` (by signedness),
// floats in `f`; arrays hold their element type and items (which may be arrays).
struct GgufValue {
  GgufType type = GgufType::U8;
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0;
  bool b = false;
  std::string str;
  GgufType elem_type = GgufType::U8;  // arrays only
  std::vector<GgufValue> items;       // arrays only

  bool is_integer() const;
  // Builders used by the writer and tests.
  static GgufValue make_u8(uint8_t v);
  static GgufValue make_i8(int8_t v);
  static GgufValue make_u16(uint16_t v);
  static GgufValue make_i16(int16_t v);
  static GgufValue make_u32(uint32_t v);
  static GgufValue make_i32(int32_t v);
  static GgufValue make_u64(uint64_t v);
  static GgufValue make_i64(int64_t v);
  static GgufValue make_f32(float v);
  static GgufValue make_f64(double v);
  static GgufValue make_bool(bool v);
  static GgufValue make_string(std::string v);
  static GgufValue make_array(GgufType elem, std::vector<GgufValue> items);
  static GgufValue make_string_array(const std::vector<std::string>& v);
  static GgufValue make_i32_array(const std::vector<int32_t>& v);

  // A short human rendering (arrays summarised) for pv inspect.
  std::string summary(size_t max_items = 8) const;
};

struct GgufKV {
  std::string key;
  GgufValue value;
  uint64_t offset = 0;  // byte offset of the key in the file
};

struct GgufTensorInfo {
  std::string name;
  std::vector<uint64_t> dims;  // dims[0] fastest-varying (GGUF order)
  kernels::GgmlType type = kernels::GgmlType::F32;
  // The stored ggml type id. `type` is meaningful only when type_supported, which is false
  // only for a type pv does not decode read under GgufReadOptions::keep_unsupported_types.
  uint32_t type_id = 0;
  bool type_supported = true;
  uint64_t offset = 0;       // relative to the data section, as stored
  uint64_t info_offset = 0;  // byte offset of this tensor's info record in the file
  uint64_t nbytes = 0;
  const uint8_t* data = nullptr;  // into the mapping

  uint64_t file_offset(uint64_t data_start) const { return data_start + offset; }
  uint64_t numel() const;
};

struct GgufFile {
  std::shared_ptr<const MappedFile> file;
  uint32_t version = 0;
  uint32_t alignment = 32;
  std::vector<GgufKV> kvs;              // file order
  std::vector<GgufTensorInfo> tensors;  // file order
  uint64_t tensor_infos_offset = 0;     // first tensor info record
  uint64_t data_start = 0;              // absolute offset of the data section

  const std::string& path() const { return file->path(); }
  const GgufKV* find_kv(std::string_view key) const;
  const GgufTensorInfo* find_tensor(std::string_view name) const;
};

// Maximum nesting depth of arrays in metadata (a deeper file is rejected rather than
// recursed into: each level costs only 12 bytes, so depth is otherwise file-sized).
constexpr int kGgufMaxArrayDepth = 8;
constexpr uint64_t kGgufMaxTensorName = 64;
constexpr uint32_t kGgufMaxDims = 4;
// Most memory the parsed metadata may take (a 152k-token vocabulary with its merges takes
// about 60 MiB).
constexpr uint64_t kGgufMaxMetadataMemory = 512ull << 20;

// Parses and validates; throws FormatError.
GgufFile read_gguf(std::shared_ptr<const MappedFile> file);
GgufFile read_gguf(const std::string& path);

// A tensor of a type ggml defines but pv does not decode is refused by read_gguf; with
// keep_unsupported_types it is kept (type_supported false, its bytes sized and checked from
// ggml's block geometry) so tools can list it (pv inspect) or name it in an error (pv
// dequant). Ids ggml does not define are refused either way.
struct GgufReadOptions {
  bool keep_unsupported_types = false;
};
GgufFile read_gguf(const std::string& path, const GgufReadOptions& options);

// True when the first four bytes are "GGUF".
bool looks_like_gguf(const MappedFile& file);

}  // namespace pv::model
