#include "model/formats/gguf_writer.h"

#include <fmt/format.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace pv::model {
namespace {

class ByteSink {
 public:
  std::vector<uint8_t> bytes;
  template <typename T>
  void put(T v) {
    size_t at = bytes.size();
    bytes.resize(at + sizeof(T));
    std::memcpy(bytes.data() + at, &v, sizeof(T));
  }
  // The low `width` bytes of v, little-endian.
  void put_uint(uint64_t v, uint32_t width) {
    for (uint32_t k = 0; k < width; ++k) bytes.push_back(static_cast<uint8_t>(v >> (8 * k)));
  }
  void put_string(const std::string& s) {
    put<uint64_t>(s.size());
    append(s.data(), s.size());
  }
  void append(const void* p, size_t n) {
    if (n == 0) return;
    size_t at = bytes.size();
    bytes.resize(at + n);
    std::memcpy(bytes.data() + at, p, n);
  }
  void pad_to(uint64_t alignment) {
    while (bytes.size() % alignment != 0) bytes.push_back(0);
  }
};

void put_value(ByteSink& out, const GgufValue& v) {
  const GgufTypeInfo& info = gguf_type_info(v.type);
  switch (info.kind) {
    case GgufKind::Unsigned:
      out.put_uint(v.u, info.min_bytes);
      break;
    case GgufKind::Signed:
      out.put_uint(static_cast<uint64_t>(v.i), info.min_bytes);  // two's complement
      break;
    case GgufKind::Float:
      if (info.min_bytes == 4) {
        out.put<float>(static_cast<float>(v.f));
      } else {
        out.put<double>(v.f);
      }
      break;
    case GgufKind::Bool:
      out.put<uint8_t>(v.b ? 1 : 0);
      break;
    case GgufKind::String:
      out.put_string(v.str);
      break;
    case GgufKind::Array:
      out.put<uint32_t>(static_cast<uint32_t>(v.elem_type));
      out.put<uint64_t>(v.items.size());
      for (const auto& item : v.items) {
        if (item.type != v.elem_type) {
          throw std::invalid_argument("GGUF array holds an item of a type other than its own");
        }
        put_value(out, item);
      }
      break;
  }
}

}  // namespace

GgufWriter::GgufWriter(uint32_t alignment, bool force_alignment_key) : alignment_(alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
    throw std::invalid_argument("GGUF alignment must be a power of two");
  }
  if (alignment != 32 || force_alignment_key)
    add("general.alignment", GgufValue::make_u32(alignment));
}

void GgufWriter::add(std::string key, GgufValue value) {
  for (const auto& kv : kvs_) {
    if (kv.key == key) throw std::invalid_argument("duplicate GGUF key " + key);
  }
  kvs_.push_back({std::move(key), std::move(value), 0});
}

void GgufWriter::add_tensor(std::string name, std::vector<uint64_t> dims, kernels::GgmlType type,
                            std::vector<uint8_t> bytes) {
  uint64_t rows = 1;
  for (size_t d = 1; d < dims.size(); ++d) rows *= dims[d];
  uint64_t expect = kernels::row_bytes(type, static_cast<int64_t>(dims.at(0))) * rows;
  if (bytes.size() != expect) {
    throw std::invalid_argument(
        fmt::format("tensor {}: {} bytes given, {} expected", name, bytes.size(), expect));
  }
  tensors_.push_back({std::move(name), std::move(dims), type, std::move(bytes)});
}

std::vector<uint8_t> GgufWriter::serialize(GgufWriteLayout* layout) const {
  ByteSink out;
  GgufWriteLayout lay;
  out.append("GGUF", 4);
  out.put<uint32_t>(3);
  lay.tensor_count_offset = out.bytes.size();
  out.put<uint64_t>(tensors_.size());
  lay.kv_count_offset = out.bytes.size();
  out.put<uint64_t>(kvs_.size());
  for (const auto& kv : kvs_) {
    lay.kv_offsets.push_back(out.bytes.size());
    out.put_string(kv.key);
    out.put<uint32_t>(static_cast<uint32_t>(kv.value.type));
    put_value(out, kv.value);
  }
  lay.tensor_infos_offset = out.bytes.size();
  uint64_t rel = 0;
  for (const auto& t : tensors_) {
    GgufWriteLayout::Tensor lt;
    lt.name = t.name;
    lt.info_offset = out.bytes.size();
    out.put_string(t.name);
    lt.n_dims_offset = out.bytes.size();
    out.put<uint32_t>(static_cast<uint32_t>(t.dims.size()));
    for (uint64_t d : t.dims) out.put<uint64_t>(d);
    lt.type_offset = out.bytes.size();
    out.put<uint32_t>(static_cast<uint32_t>(t.type));
    lt.offset_offset = out.bytes.size();
    out.put<uint64_t>(rel);
    lt.data_offset = rel;  // made absolute below
    lt.nbytes = t.bytes.size();
    rel = (rel + t.bytes.size() + alignment_ - 1) / alignment_ * alignment_;
    lay.tensors.push_back(std::move(lt));
  }
  out.pad_to(alignment_);
  lay.data_start = out.bytes.size();
  for (size_t k = 0; k < tensors_.size(); ++k) {
    lay.tensors[k].data_offset += lay.data_start;
    out.append(tensors_[k].bytes.data(), tensors_[k].bytes.size());
    if (k + 1 < tensors_.size()) out.pad_to(alignment_);
  }
  if (layout) *layout = std::move(lay);
  return std::move(out.bytes);
}

void GgufWriter::write(const std::string& path, GgufWriteLayout* layout) const {
  write_file_atomic(path, serialize(layout));
}

void write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw std::runtime_error("cannot write " + tmp);
    f.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
    if (!f) throw std::runtime_error("cannot write " + tmp);
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace pv::model
