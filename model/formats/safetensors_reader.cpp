// safetensors reader: header length limit, JSON parse errors with byte offsets, dtype and
// shape checks, and the exact-cover rule for data offsets (no gap, no overlap).
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "model/formats/safetensors.h"
#include "mutants/mutant.h"

namespace pv::model {
namespace {

using nlohmann::json;

// Where each top-level key of the header is named (offset of its opening quote), in one
// pass: searching the header once per tensor was quadratic (10,000 tensors took 22 s).
// Keys are matched as written (a key with escapes is found by its raw text only).
std::map<std::string, uint64_t, std::less<>> top_level_keys(std::string_view header,
                                                            uint64_t header_start) {
  std::map<std::string, uint64_t, std::less<>> out;
  int depth = 0;
  bool expect_key = false;
  for (size_t k = 0; k < header.size(); ++k) {
    const char c = header[k];
    if (c == '"') {
      const size_t open = k;
      for (++k; k < header.size() && header[k] != '"'; ++k) {
        if (header[k] == '\\') ++k;
      }
      if (depth == 1 && expect_key) {
        out.emplace(std::string(header.substr(open + 1, k - open - 1)), header_start + open);
        expect_key = false;
      }
    } else if (c == '{' || c == '[') {
      ++depth;
      expect_key = depth == 1 && c == '{';
    } else if (c == '}' || c == ']') {
      --depth;
    } else if (c == ',' && depth == 1) {
      expect_key = true;
    }
  }
  return out;
}

}  // namespace

uint64_t quoted_position(std::string_view text, std::string_view message) {
  size_t a = message.find('\'');
  size_t b = a == std::string_view::npos ? a : message.find('\'', a + 1);
  if (b == std::string_view::npos || b == a + 1) return 0;
  size_t at = text.find(message.substr(a + 1, b - a - 1));
  return at == std::string_view::npos ? 0 : at;
}

std::optional<uint64_t> safetensors_dtype_size(std::string_view d) {
  if (d == "F64" || d == "I64" || d == "U64") return 8;
  if (d == "F32" || d == "I32" || d == "U32") return 4;
  if (d == "F16" || d == "BF16" || d == "I16" || d == "U16") return 2;
  if (d == "I8" || d == "U8" || d == "BOOL" || d == "F8_E4M3" || d == "F8_E5M2") return 1;
  return std::nullopt;
}

std::optional<kernels::GgmlType> safetensors_weight_type(std::string_view d) {
  if (d == "F32") return kernels::GgmlType::F32;
  if (d == "F16") return kernels::GgmlType::F16;
  if (d == "BF16") return kernels::GgmlType::BF16;
  return std::nullopt;
}

const SafetensorsTensor* SafetensorsFile::find(std::string_view name) const {
  auto it = by_name.find(name);
  return it == by_name.end() ? nullptr : &tensors[it->second];
}

std::string text_position(std::string_view path, std::string_view text, uint64_t byte) {
  uint64_t line = 1, col = 1;
  for (uint64_t k = 0; k < byte && k < text.size(); ++k) {
    if (text[k] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return fmt::format("{}:{}:{}", path, line, col);
}

SafetensorsFile read_safetensors(std::shared_ptr<const MappedFile> file) {
  SafetensorsFile out;
  out.file = file;
  Cursor cur(*file);
  out.header_len = cur.u64("safetensors header length");
  if (out.header_len > kSafetensorsMaxHeader) {
    cur.fail_at(0, fmt::format("header length {} exceeds the limit of {} bytes", out.header_len,
                               kSafetensorsMaxHeader));
  }
  if (out.header_len > cur.remaining()) {
    cur.fail_at(0, fmt::format("header length {} exceeds the {} bytes left in the file",
                               out.header_len, cur.remaining()));
  }
  std::string_view header = cur.bytes(out.header_len, "safetensors header");
  out.buffer_start = 8 + out.header_len;
  const uint64_t buffer_size = file->size() - out.buffer_start;

  if (auto deep = json_too_deep(header)) {
    cur.fail_at(8 + *deep, "header JSON is nested deeper than 256 levels");
  }
  json root;
  try {
    root = json::parse(header.begin(), header.end());
  } catch (const json::parse_error& e) {
    // e.byte is 1-based within the header text.
    uint64_t at = 8 + (e.byte > 0 ? e.byte - 1 : 0);
    cur.fail_at(at, fmt::format("header is not valid JSON: {}", e.what()));
  } catch (const json::exception& e) {
    // Not a syntax error but a value nlohmann cannot hold (e.g. a number overflowing a
    // double); it carries no position, so point at the quoted text when it names one.
    cur.fail_at(8 + quoted_position(header, e.what()),
                fmt::format("header JSON holds an unusable value: {}", e.what()));
  }
  if (!root.is_object()) cur.fail_at(8, "header JSON is not an object");

  const auto key_at = top_level_keys(header, 8);
  for (auto it = root.begin(); it != root.end(); ++it) {
    const std::string& name = it.key();
    const auto where = key_at.find(name);
    uint64_t entry_at = where == key_at.end() ? 8 : where->second;
    if (name == "__metadata__") {
      if (!it->is_object()) cur.fail_at(entry_at, "__metadata__ is not an object");
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string()) {
          cur.fail_at(entry_at, fmt::format("__metadata__ value '{}' is not a string", m.key()));
        }
        out.metadata[m.key()] = m->get<std::string>();
      }
      continue;
    }
    cur.set_subject(tensor_subject(name));
    const json& e = *it;
    if (!e.is_object()) cur.fail_at(entry_at, "entry is not an object");
    for (auto f = e.begin(); f != e.end(); ++f) {
      if (f.key() != "dtype" && f.key() != "shape" && f.key() != "data_offsets") {
        cur.fail_at(entry_at, fmt::format("unknown field '{}'", f.key()));
      }
    }
    if (!e.contains("dtype") || !e["dtype"].is_string()) {
      cur.fail_at(entry_at, "missing or non-string \"dtype\"");
    }
    if (!e.contains("shape") || !e["shape"].is_array()) {
      cur.fail_at(entry_at, "missing or non-array \"shape\"");
    }
    if (!e.contains("data_offsets") || !e["data_offsets"].is_array() ||
        e["data_offsets"].size() != 2) {
      cur.fail_at(entry_at, "\"data_offsets\" must be an array [begin, end]");
    }
    SafetensorsTensor t;
    t.name = name;
    t.header_offset = entry_at;
    t.dtype = e["dtype"].get<std::string>();
    auto esize = safetensors_dtype_size(t.dtype);
    if (!esize) cur.fail_at(entry_at, fmt::format("unknown dtype \"{}\"", t.dtype));
    uint64_t numel = 1;
    for (const json& d : e["shape"]) {
      if (!d.is_number_unsigned()) cur.fail_at(entry_at, "shape holds a non-integer or negative");
      uint64_t dim = d.get<uint64_t>();
      if (mul_overflows(numel, dim, &numel)) cur.fail_at(entry_at, "element count overflows");
      t.shape.push_back(dim);
    }
    for (const json& o : e["data_offsets"]) {
      if (!o.is_number_unsigned()) {
        cur.fail_at(entry_at, "data_offsets hold a non-integer or negative");
      }
    }
    t.begin = e["data_offsets"][0].get<uint64_t>();
    t.end = e["data_offsets"][1].get<uint64_t>();
    if (t.end < t.begin) {
      cur.fail_at(entry_at,
                  fmt::format("data_offsets [{}, {}) end before they begin", t.begin, t.end));
    }
    uint64_t want = 0;
    if (mul_overflows(numel, *esize, &want) || want != t.end - t.begin) {
      cur.fail_at(entry_at, fmt::format("data_offsets [{}, {}) hold {} bytes but {} x {} {} "
                                        "needs {}",
                                        t.begin, t.end, t.end - t.begin, numel, *esize, t.dtype,
                                        numel * *esize));
    }
    if (t.end > buffer_size) {
      cur.fail_at(out.buffer_start + std::min(t.begin, buffer_size),
                  fmt::format("data_offsets [{}, {}) run past the end of the file (buffer of {} "
                              "bytes from byte {}, file size {})",
                              t.begin, t.end, buffer_size, out.buffer_start, file->size()));
    }
    t.file_offset = out.buffer_start + t.begin;
    t.data = file->data() + t.file_offset;
    out.tensors.push_back(std::move(t));
  }
  cur.set_subject("");

  // Exact cover: sorted by begin, each tensor starts where the previous one ended, and
  // the last one ends at the end of the file.
  std::sort(out.tensors.begin(), out.tensors.end(), [](const auto& a, const auto& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expect = 0;
  const SafetensorsTensor* prev = nullptr;
  for (const auto& t : out.tensors) {
    cur.set_subject(tensor_subject(t.name));
    if (t.begin < expect && !mutant::planted(mutant::Bug::SafetensorsOverlapAccepted)) {
      cur.fail_at(t.file_offset,
                  fmt::format("data_offsets [{}, {}) overlap tensor '{}' at [{}, {})", t.begin,
                              t.end, prev->name, prev->begin, prev->end));
    }
    if (t.begin > expect) {
      cur.fail_at(out.buffer_start + expect,
                  fmt::format("a gap of {} bytes lies before this tensor's data_offsets [{}, {}) "
                              "(the buffer must be covered exactly)",
                              t.begin - expect, t.begin, t.end));
    }
    if (t.end >= expect) {  // prev: the tensor reaching furthest so far
      expect = t.end;
      prev = &t;
    }
  }
  cur.set_subject("");
  if (expect != buffer_size) {
    cur.fail_at(out.buffer_start + expect,
                fmt::format("{} bytes after the last tensor are covered by no tensor (buffer "
                            "of {} bytes)",
                            buffer_size - expect, buffer_size));
  }
  // Exactly covered, so copies of misaligned data (a header length that is not a multiple
  // of the element size) total at most the file size.
  for (size_t k = 0; k < out.tensors.size(); ++k) {
    auto& t = out.tensors[k];
    t.data = file->aligned(t.file_offset, t.nbytes());
    out.by_name.emplace(t.name, k);
  }
  return out;
}

SafetensorsFile read_safetensors(const std::string& path) {
  return read_safetensors(MappedFile::open(path));
}

}  // namespace pv::model
