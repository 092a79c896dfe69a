// pv dequant FILE TENSOR --out F: one GGUF tensor's values as pv decodes them, written as
// little-endian f32 (row after row, dims[0] values per row) -- the bytes to diff against
// another implementation's decode (gguf-py, llama.cpp) when a quantized model misbehaves.
// Exit status: 0 written; 2 usage or input errors (not a GGUF file, malformed file, no such
// tensor, a type pv does not decode -- named with its ggml id -- or an unwritable output).
#include <fmt/format.h>

#include <bit>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "kernels/quant/ggml_types.h"
#include "kernels/quant/quant.h"
#include "model/formats/gguf.h"
#include "model/formats/gguf_writer.h"
#include "tools/command.h"

namespace {

static_assert(std::endian::native == std::endian::little,
              "pv dequant writes the host's f32 bytes as little-endian");

int run_dequant(const std::string& path, const std::string& tensor, const std::string& out) {
  pv::model::GgufReadOptions opts;
  opts.keep_unsupported_types = true;  // so an unsupported tensor is named, not the whole file
  const pv::model::GgufFile f = pv::model::read_gguf(path, opts);
  const pv::model::GgufTensorInfo* t = f.find_tensor(tensor);
  if (t == nullptr) {
    throw std::invalid_argument(fmt::format("{}: no tensor named '{}' ({} tensors in the file)",
                                            path, tensor, f.tensors.size()));
  }
  if (!t->type_supported) {
    throw std::invalid_argument(
        fmt::format("{}: tensor '{}' (info record at byte {}) is stored as {}, which pv does "
                    "not decode",
                    path, tensor, t->info_offset, pv::kernels::describe_type_id(t->type_id)));
  }
  const int64_t row = static_cast<int64_t>(t->dims[0]);
  const uint64_t rows = t->numel() / t->dims[0];
  const size_t rb = pv::kernels::row_bytes(t->type, row);
  std::vector<float> values(static_cast<size_t>(t->numel()));
  for (uint64_t r = 0; r < rows; ++r) {
    pv::kernels::dequantize_row(t->type, t->data + r * rb, values.data() + r * row, row);
  }
  std::vector<uint8_t> bytes(values.size() * sizeof(float));
  if (!bytes.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
  pv::model::write_file_atomic(out, bytes);
  fmt::print("{}: {} ({}, {} values) -> {} ({} bytes of little-endian f32)\n", path, tensor,
             pv::kernels::type_name(t->type), values.size(), out, bytes.size());
  return 0;
}

std::function<int()> setup_dequant(CLI::App& sub) {
  auto path = std::make_shared<std::string>();
  auto tensor = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  sub.add_option("FILE", *path, "A .gguf file")->required();
  sub.add_option("TENSOR", *tensor, "Tensor name, e.g. blk.0.ffn_down.weight")->required();
  sub.add_option("--out", *out, "Output file: the values as little-endian f32")->required();
  return [path, tensor, out]() { return run_dequant(*path, *tensor, *out); };
}

PV_COMMAND("dequant", "Write one GGUF tensor's values, as pv decodes them, as little-endian f32",
           setup_dequant);

}  // namespace
