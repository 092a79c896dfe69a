// safetensors files: the validating reader and the writer (fixtures, tests).
// Layout: u64 LE header length N (<= 100,000,000), N bytes of JSON
//   {name: {"dtype", "shape", "data_offsets": [begin, end)}, "__metadata__": {...}},
// then the byte buffer. A valid file's tensors cover the buffer exactly, no overlap.
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

constexpr uint64_t kSafetensorsMaxHeader = 100'000'000;

struct SafetensorsTensor {
  std::string name;
  std::string dtype;            // "F32", "BF16", "I64", ...
  std::vector<uint64_t> shape;  // row-major, outermost first
  uint64_t begin = 0, end = 0;  // data_offsets, relative to the buffer
  uint64_t file_offset = 0;     // absolute offset of the tensor's bytes
  uint64_t header_offset = 0;   // where the tensor's entry is named in the header (best effort)
  const uint8_t* data = nullptr;
  uint64_t nbytes() const { return end - begin; }
};

struct SafetensorsFile {
  std::shared_ptr<const MappedFile> file;
  uint64_t header_len = 0;
  uint64_t buffer_start = 0;  // 8 + header_len
  std::map<std::string, std::string> metadata;
  std::vector<SafetensorsTensor> tensors;              // sorted by begin
  std::map<std::string, size_t, std::less<>> by_name;  // name -> index into tensors

  const std::string& path() const { return file->path(); }
  const SafetensorsTensor* find(std::string_view name) const;
};

// Bytes per element of a safetensors dtype; nullopt for a name the format does not have.
std::optional<uint64_t> safetensors_dtype_size(std::string_view dtype);
// The ggml type pv computes a safetensors weight in: F32, F16, BF16; nullopt otherwise.
std::optional<kernels::GgmlType> safetensors_weight_type(std::string_view dtype);

SafetensorsFile read_safetensors(std::shared_ptr<const MappedFile> file);
SafetensorsFile read_safetensors(const std::string& path);

// Writer: tensors in insertion order, header padded with spaces to a multiple of 8.
class SafetensorsWriter {
 public:
  void add_metadata(std::string key, std::string value);
  void add_tensor(std::string name, std::string dtype, std::vector<uint64_t> shape,
                  std::vector<uint8_t> bytes);
  std::vector<uint8_t> serialize() const;
  void write(const std::string& path) const;

 private:
  struct Pending {
    std::string name, dtype;
    std::vector<uint64_t> shape;
    std::vector<uint8_t> bytes;
  };
  std::vector<std::pair<std::string, std::string>> metadata_;
  std::vector<Pending> tensors_;
};

// Offset in `text` of the first '...'-quoted fragment of an error message (0 when none):
// locates values nlohmann rejects without a position (number overflow).
uint64_t quoted_position(std::string_view text, std::string_view message);

// "file:line:col" for a byte offset inside a text (JSON) held in memory.
std::string text_position(std::string_view path, std::string_view text, uint64_t byte);

}  // namespace pv::model
