// A read-only view of a weight tensor in its stored type. The bytes usually live
// in a memory-mapped file owned by model/; kernels never own or copy them.
#pragma once

#include <cstdint>
#include <string>

#include "kernels/quant/ggml_types.h"

namespace pv::kernels {

// A 1-D or 2-D weight. For a Linear layer HF [out, in] (GGUF dims {in, out}):
// rows = out, cols = in, each row `row_bytes(type, cols)` bytes, blocks along cols.
// A 1-D tensor (norm weight, bias) has rows = 1.
struct TensorView {
  std::string name;
  GgmlType type = GgmlType::F32;
  int64_t rows = 0;
  int64_t cols = 0;
  const void* data = nullptr;
  size_t nbytes = 0;

  int64_t numel() const { return rows * cols; }
  const uint8_t* row(int64_t r) const;  // start of row r
};

}  // namespace pv::kernels
