#include "model/trace/trace_store.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "model/formats/safetensors.h"
#include "model/trace/aprt.h"

namespace pv::model {
namespace {

using nlohmann::json;

[[noreturn]] void fail(const std::string& path, const std::string& msg) {
  throw std::runtime_error(fmt::format("{}: {}", path, msg));
}

bool is_llama_per_layer_alias(const std::string& base) {
  for (const auto& a : stage_aliases()) {
    if (base == a.name && std::string(a.tool) == "llama.cpp" &&
        (!a.stage || is_per_layer(*a.stage))) {
      return true;
    }
  }
  return false;
}

bool all_digits(const std::string& s) {
  return !s.empty() && s.size() < 10 &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Metadata values that hold JSON arrays (tokens, stage_order) are located within their
// own string: the error names the key and the character.
class MetadataLocator : public TokenLocator {
 public:
  MetadataLocator(const std::map<std::string, std::string>& md, std::string path)
      : md_(md), path_(std::move(path)) {}
  std::string locate(const std::string& key, size_t index) const override {
    auto it = md_.find(key);
    if (it == md_.end()) return "";
    const size_t off = array_element_offset(it->second, "", index);
    if (off == std::string::npos) return "";
    return fmt::format(" (character {} of __metadata__ \"{}\" in {})", off + 1, key, path_);
  }

 private:
  const std::map<std::string, std::string>& md_;
  std::string path_;
};

// The index of a safetensors trace in the shape of trace.json, so both forms share one
// validating parser (parse_trace_index).
json index_of_safetensors(const SafetensorsFile& f) {
  const std::string& path = f.path();
  const auto& md = f.metadata;
  if (!md.count("schema")) {
    fail(path, fmt::format("not a pv trace: __metadata__ has no \"schema\" (a safetensors trace "
                           "holds \"schema\": \"{}\"; model/trace/FORMAT.md)",
                           kTraceSchema));
  }
  json j = json::object();
  for (const auto& [key, value] : md) {
    if (key == "n_layers" || key == "n_heads" || key == "n_kv_heads" || key == "head_dim") {
      if (!all_digits(value)) {
        fail(path,
             fmt::format("__metadata__ \"{}\" is \"{}\"; expected a decimal integer", key, value));
      }
      j[key] = std::stoll(value);
    } else if (key == "tokens" || key == "greedy_tokens" || key == "stage_order") {
      try {
        j[key] = json::parse(value);
      } catch (const json::parse_error& e) {
        fail(path, fmt::format("__metadata__ \"{}\" is not a JSON array (character {}): {}", key,
                               e.byte, e.what()));
      }
    } else {
      j[key] = value;  // strings; unknown keys are ignored by the parser
    }
  }
  json stages = json::array();
  for (const auto& t : f.tensors) {
    if (t.dtype != "F32" && t.dtype != "F64") {
      fail(path, fmt::format("tensor \"{}\" has dtype {}; trace stages are F32 (or F64, rounded "
                             "to F32 on read)",
                             t.name, t.dtype));
    }
    const auto [name, layer] = parse_safetensors_key(t.name);
    json shape = json::array();
    for (uint64_t d : t.shape) shape.push_back(d);
    if (t.shape.empty()) shape.push_back(1);  // a scalar is one element
    stages.push_back({{"stage", name},
                      {"layer", layer >= 0 ? json(layer) : json(nullptr)},
                      {"file", t.name},
                      {"shape", shape}});
  }
  j["stages"] = std::move(stages);
  return j;
}

std::vector<uint8_t> f32_le_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> out(v.size() * 4);
  for (size_t i = 0; i < v.size(); ++i) {
    uint32_t bits;
    std::memcpy(&bits, &v[i], 4);
    for (int b = 0; b < 4; ++b) out[4 * i + b] = static_cast<uint8_t>(bits >> (8 * b));
  }
  return out;
}

int64_t numel_of(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// The entries as the writers name them: pv's names for pv stages, declared names for
// user stages.
TraceMeta canonical_meta(const OpenTrace& t) {
  TraceMeta m = t.meta;
  for (auto& e : m.entries) e.file.clear();
  return m;
}

}  // namespace

std::string safetensors_key(const std::string& name, int layer) {
  return layer >= 0 ? fmt::format("L{}.{}", layer, name) : name;
}

std::pair<std::string, int> parse_safetensors_key(const std::string& key) {
  if (key.size() > 2 && key[0] == 'L') {
    const size_t dot = key.find('.');
    if (dot != std::string::npos && all_digits(key.substr(1, dot - 1))) {
      return {key.substr(dot + 1), std::stoi(key.substr(1, dot - 1))};
    }
  }
  const size_t dash = key.rfind('-');
  if (dash != std::string::npos && all_digits(key.substr(dash + 1)) &&
      is_llama_per_layer_alias(key.substr(0, dash))) {
    return {key.substr(0, dash), std::stoi(key.substr(dash + 1))};
  }
  return {key, -1};
}

OpenTrace open_trace(const std::string& path) {
  namespace fs = std::filesystem;
  OpenTrace t;
  t.path = path;
  if (fs::is_directory(path)) {
    t.format = TraceFormat::AprtDir;
    t.meta = read_trace_meta(path);
    return t;
  }
  if (!fs::exists(path)) {
    fail(path, "no such trace (an APRT trace directory or a .safetensors trace file)");
  }
  t.format = TraceFormat::Safetensors;
  auto st = std::make_shared<SafetensorsFile>(read_safetensors(path));
  const MetadataLocator loc(st->metadata, path);
  t.meta = parse_trace_index(index_of_safetensors(*st), path, false, &loc);
  t.st = std::move(st);
  return t;
}

TraceMeta read_any_trace_meta(const std::string& path) { return open_trace(path).meta; }

std::vector<float> read_stage(const OpenTrace& t, const TraceEntry& e) {
  const int64_t numel = numel_of(e.shape);
  if (t.format == TraceFormat::AprtDir) {
    const std::string f = (std::filesystem::path(t.path) / e.file).string();
    AprtTensor a = read_aprt(f);
    const uint32_t want_layer = e.layer < 0 ? kWholeModelLayer : static_cast<uint32_t>(e.layer);
    if (static_cast<int64_t>(a.data.size()) != numel) {
      throw std::runtime_error(fmt::format("{}: holds {} elements but trace.json says shape {}", f,
                                           a.data.size(), fmt::join(e.shape, "x")));
    }
    if (a.layer != want_layer) {
      throw std::runtime_error(
          fmt::format("{}: APRT layer field is {} but trace.json says {}", f, a.layer, want_layer));
    }
    return std::move(a.data);
  }
  const SafetensorsTensor* st = t.st->find(e.file);
  if (st == nullptr) fail(t.path, fmt::format("tensor \"{}\" vanished", e.file));
  std::vector<float> out(static_cast<size_t>(numel));
  const uint8_t* p = st->data;
  if (st->dtype == "F32") {
    for (size_t i = 0; i < out.size(); ++i) {
      uint32_t bits = 0;
      for (int b = 0; b < 4; ++b) bits |= uint32_t{p[4 * i + b]} << (8 * b);
      std::memcpy(&out[i], &bits, 4);
    }
  } else {  // F64 (index_of_safetensors admits nothing else)
    for (size_t i = 0; i < out.size(); ++i) {
      uint64_t bits = 0;
      for (int b = 0; b < 8; ++b) bits |= uint64_t{p[8 * i + b]} << (8 * b);
      double d;
      std::memcpy(&d, &bits, 8);
      out[i] = static_cast<float>(d);
    }
  }
  return out;
}

void write_safetensors_trace(const OpenTrace& t, const std::string& out) {
  const TraceMeta m = canonical_meta(t);
  SafetensorsWriter w;
  w.add_metadata("schema", kTraceSchema);
  w.add_metadata("n_layers", std::to_string(m.n_layers));
  w.add_metadata("tokens", json(m.tokens).dump());
  if (!m.greedy_tokens.empty()) w.add_metadata("greedy_tokens", json(m.greedy_tokens).dump());
  for (const auto& [k, v] : {std::pair<const char*, const std::string*>{"producer", &m.producer},
                             {"model", &m.model},
                             {"architecture", &m.architecture},
                             {"backend", &m.backend},
                             {"dtype", &m.dtype},
                             {"weight_type", &m.weight_type}}) {
    if (!v->empty()) w.add_metadata(k, *v);
  }
  if (!m.qk_rows.empty() && !m.qk_rows_inferred) w.add_metadata("qk_rows", m.qk_rows);
  if (m.n_heads > 0) w.add_metadata("n_heads", std::to_string(m.n_heads));
  if (m.n_kv_heads > 0) w.add_metadata("n_kv_heads", std::to_string(m.n_kv_heads));
  if (m.head_dim > 0) w.add_metadata("head_dim", std::to_string(m.head_dim));
  if (!m.stage_order.empty()) w.add_metadata("stage_order", json(m.stage_order).dump());
  for (size_t i = 0; i < m.entries.size(); ++i) {
    const TraceEntry& e = m.entries[i];
    std::vector<uint64_t> shape(e.shape.begin(), e.shape.end());
    w.add_tensor(safetensors_key(entry_name(e), e.layer), "F32", std::move(shape),
                 f32_le_bytes(read_stage(t, t.meta.entries[i])));
  }
  w.write(out);
}

void write_aprt_trace(const OpenTrace& t, const std::string& out) {
  namespace fs = std::filesystem;
  TraceMeta m = canonical_meta(t);
  fs::create_directories(out);
  for (size_t i = 0; i < m.entries.size(); ++i) {
    TraceEntry& e = m.entries[i];
    e.file = e.user.empty() ? stage_file(e.stage, e.layer) : stage_file(e.user, e.layer);
    const fs::path f = fs::path(out) / e.file;
    fs::create_directories(f.parent_path());
    const std::vector<float> v = read_stage(t, t.meta.entries[i]);
    write_aprt(f.string(), e.layer < 0 ? kWholeModelLayer : static_cast<uint32_t>(e.layer),
               v.data(), v.size());
  }
  write_trace_meta(out, m);
}

TraceFormat format_for_output(const std::string& path, const std::string& format_flag) {
  if (format_flag == "safetensors") return TraceFormat::Safetensors;
  if (format_flag == "aprt") return TraceFormat::AprtDir;
  if (!format_flag.empty() && format_flag != "auto") {
    throw std::invalid_argument(fmt::format(
        "--format \"{}\": expected aprt, safetensors or auto (by the --out suffix)", format_flag));
  }
  const std::string suffix = ".safetensors";
  return path.size() > suffix.size() &&
                 path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0
             ? TraceFormat::Safetensors
             : TraceFormat::AprtDir;
}

}  // namespace pv::model
