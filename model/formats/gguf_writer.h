// GGUF v3 writer: metadata of every value type (nested arrays included) and tensors
// in any stored type, each placed at an aligned offset. Used by the fixture generator
// and by tests that build (and then deliberately break) files; the layout it reports
// tells a test where each field landed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/quant/ggml_types.h"
#include "model/formats/gguf.h"

namespace pv::model {

struct GgufWriteLayout {
  struct Tensor {
    std::string name;
    uint64_t info_offset = 0;    // start of the info record (name length)
    uint64_t n_dims_offset = 0;  // the u32 n_dims field
    uint64_t type_offset = 0;    // the u32 ggml type field
    uint64_t offset_offset = 0;  // the u64 data offset field
    uint64_t data_offset = 0;    // absolute offset of the tensor's bytes
    uint64_t nbytes = 0;
  };
  uint64_t kv_count_offset = 0;  // the u64 metadata count in the header
  uint64_t tensor_count_offset = 0;
  std::vector<uint64_t> kv_offsets;  // start of each key/value record
  uint64_t tensor_infos_offset = 0;
  uint64_t data_start = 0;
  std::vector<Tensor> tensors;
};

class GgufWriter {
 public:
  // Alignment of the data section and each tensor (written as general.alignment when
  // it differs from the default 32, or when force_alignment_key is set).
  explicit GgufWriter(uint32_t alignment = 32, bool force_alignment_key = false);

  void add(std::string key, GgufValue value);
  // dims in GGUF order (dims[0] fastest); bytes must be exactly the stored size.
  void add_tensor(std::string name, std::vector<uint64_t> dims, kernels::GgmlType type,
                  std::vector<uint8_t> bytes);

  std::vector<uint8_t> serialize(GgufWriteLayout* layout = nullptr) const;
  // Writes atomically (temp file + rename).
  void write(const std::string& path, GgufWriteLayout* layout = nullptr) const;

 private:
  struct PendingTensor {
    std::string name;
    std::vector<uint64_t> dims;
    kernels::GgmlType type;
    std::vector<uint8_t> bytes;
  };
  uint32_t alignment_;
  std::vector<GgufKV> kvs_;
  std::vector<PendingTensor> tensors_;
};

// Writes bytes to path atomically (temp file in the same directory + rename).
void write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes);

}  // namespace pv::model
