// safetensors writer (fixtures and tests): insertion order, header padded to 8 bytes.
#include <fmt/format.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "model/formats/gguf_writer.h"
#include "model/formats/safetensors.h"

namespace pv::model {

void SafetensorsWriter::add_metadata(std::string key, std::string value) {
  metadata_.emplace_back(std::move(key), std::move(value));
}

void SafetensorsWriter::add_tensor(std::string name, std::string dtype, std::vector<uint64_t> shape,
                                   std::vector<uint8_t> bytes) {
  auto esize = safetensors_dtype_size(dtype);
  if (!esize) throw std::invalid_argument("unknown safetensors dtype " + dtype);
  uint64_t numel = 1;
  for (uint64_t d : shape) numel *= d;
  if (numel * *esize != bytes.size()) {
    throw std::invalid_argument(
        fmt::format("tensor {}: {} bytes given, {} expected", name, bytes.size(), numel * *esize));
  }
  tensors_.push_back({std::move(name), std::move(dtype), std::move(shape), std::move(bytes)});
}

std::vector<uint8_t> SafetensorsWriter::serialize() const {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata_.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata_) meta[k] = v;
    header["__metadata__"] = meta;
  }
  uint64_t off = 0;
  for (const auto& t : tensors_) {
    header[t.name] = {
        {"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {off, off + t.bytes.size()}}};
    off += t.bytes.size();
  }
  std::string text = header.dump();
  while ((8 + text.size()) % 8 != 0) text.push_back(' ');
  // Sized once and filled with memcpy (GCC 12 misreports vector::insert chains here).
  std::vector<uint8_t> out(8 + text.size() + off);
  uint64_t n = text.size();
  std::memcpy(out.data(), &n, 8);
  std::memcpy(out.data() + 8, text.data(), text.size());
  size_t at = 8 + text.size();
  for (const auto& t : tensors_) {
    if (!t.bytes.empty()) std::memcpy(out.data() + at, t.bytes.data(), t.bytes.size());
    at += t.bytes.size();
  }
  return out;
}

void SafetensorsWriter::write(const std::string& path) const {
  write_file_atomic(path, serialize());
}

}  // namespace pv::model
