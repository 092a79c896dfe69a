#include "model/trace/trace_dir.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

namespace pv::model {
namespace {

using nlohmann::json;

[[noreturn]] void fail(const std::string& path, const std::string& msg) {
  throw std::runtime_error(fmt::format("{}: {}", path, msg));
}

const json& need(const json& obj, const char* key, const std::string& path,
                 const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end()) fail(path, fmt::format("{}: missing key \"{}\"", where, key));
  return *it;
}

std::string need_string(const json& obj, const char* key, const std::string& path,
                        const std::string& where) {
  const json& v = need(obj, key, path, where);
  if (!v.is_string()) fail(path, fmt::format("{}: \"{}\" must be a string", where, key));
  return v.get<std::string>();
}

std::vector<int32_t> int_list(const json& v, const char* key, const std::string& path) {
  if (!v.is_array()) fail(path, fmt::format("\"{}\" must be an array of integers", key));
  std::vector<int32_t> out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_number_integer()) fail(path, fmt::format("\"{}\"[{}] is not an integer", key, i));
    out.push_back(v[i].get<int32_t>());
  }
  return out;
}

int optional_positive_int(const json& j, const char* key, const std::string& path) {
  if (!j.contains(key)) return 0;
  const json& v = j[key];
  if (!v.is_number_integer() || v.get<int64_t>() <= 0 || v.get<int64_t>() > 1000000) {
    fail(path, fmt::format("\"{}\" must be a positive integer", key));
  }
  return v.get<int>();
}

}  // namespace

bool is_qk_row_stage(Stage stage) {
  return stage == Stage::qkv_matmul || stage == Stage::qkv_bias || stage == Stage::q_post_rope ||
         stage == Stage::k_post_rope;
}

bool is_hf_produced(const TraceMeta& meta) {
  return meta.backend == "hf-transformers" || meta.producer.rfind("tools/hf_oracle.py", 0) == 0;
}

std::string stage_file(Stage stage, int layer) {
  if (!is_per_layer(stage)) return fmt::format("{}.bin", stage_name(stage));
  return fmt::format("layer-{}/{}.bin", layer, stage_name(stage));
}

int64_t computation_order(Stage stage, int layer) {
  const int s = static_cast<int>(stage);
  if (stage == Stage::embedding) return -1;
  if (!is_per_layer(stage)) return (int64_t{1} << 40) + s;  // after every layer
  return static_cast<int64_t>(layer) * kStageCount + s;
}

void sort_entries(std::vector<TraceEntry>& entries) {
  std::stable_sort(entries.begin(), entries.end(), [](const TraceEntry& a, const TraceEntry& b) {
    return computation_order(a.stage, a.layer) < computation_order(b.stage, b.layer);
  });
}

std::string entry_label(Stage stage, int layer) {
  if (!is_per_layer(stage)) return std::string(stage_name(stage));
  return fmt::format("L{} {}", layer, stage_name(stage));
}

TraceMeta read_trace_meta(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / "trace.json").string();
  std::ifstream f(path);
  if (!f)
    fail(path, "cannot open (is this a trace directory written by pv trace or hf_oracle.py?)");
  json j;
  try {
    j = json::parse(f);
  } catch (const json::parse_error& e) {
    fail(path, fmt::format("invalid JSON at byte {}: {}", e.byte, e.what()));
  }
  if (!j.is_object()) fail(path, "top level must be an object");
  const std::string schema = need_string(j, "schema", path, "trace.json");
  if (schema != kTraceSchema) {
    fail(path, fmt::format("schema \"{}\" is not \"{}\"", schema, kTraceSchema));
  }
  TraceMeta m;
  m.producer = j.value("producer", "");
  m.model = j.value("model", "");
  m.architecture = j.value("architecture", "");
  m.backend = j.value("backend", "");
  m.dtype = j.value("dtype", "f32");
  m.weight_type = j.value("weight_type", "");
  const json& nl = need(j, "n_layers", path, "trace.json");
  if (!nl.is_number_integer() || nl.get<int64_t>() < 0 || nl.get<int64_t>() > 100000) {
    fail(path, "\"n_layers\" must be a non-negative integer");
  }
  m.n_layers = nl.get<int>();
  m.tokens = int_list(need(j, "tokens", path, "trace.json"), "tokens", path);
  if (j.contains("greedy_tokens"))
    m.greedy_tokens = int_list(j["greedy_tokens"], "greedy_tokens", path);
  m.n_heads = optional_positive_int(j, "n_heads", path);
  m.n_kv_heads = optional_positive_int(j, "n_kv_heads", path);
  m.head_dim = optional_positive_int(j, "head_dim", path);
  if (j.contains("qk_rows")) {
    const std::string rows = need_string(j, "qk_rows", path, "trace.json");
    if (rows != kQkRowsHf && rows != kQkRowsGgufLlama) {
      fail(path, fmt::format("\"qk_rows\" is \"{}\"; expected \"{}\" or \"{}\"", rows, kQkRowsHf,
                             kQkRowsGgufLlama));
    }
    if (rows == kQkRowsGgufLlama && (m.n_heads == 0 || m.n_kv_heads == 0 || m.head_dim == 0)) {
      fail(path, fmt::format("\"qk_rows\": \"{}\" needs \"n_heads\", \"n_kv_heads\" and "
                             "\"head_dim\" (the per-head permutation is undone with them)",
                             rows));
    }
    m.qk_rows = rows;
  } else if (is_hf_produced(m)) {
    // tools/hf_oracle.py dumps transformers' own tensors, which are in checkpoint order.
    m.qk_rows = kQkRowsHf;
    m.qk_rows_inferred = true;
  }
  const json& stages = need(j, "stages", path, "trace.json");
  if (!stages.is_array()) fail(path, "\"stages\" must be an array");
  std::set<std::pair<int, int>> seen;
  for (size_t i = 0; i < stages.size(); ++i) {
    const json& e = stages[i];
    const std::string where = fmt::format("stages[{}]", i);
    if (!e.is_object()) fail(path, where + " must be an object");
    TraceEntry t;
    const std::string name = need_string(e, "stage", path, where);
    auto st = stage_from_name(name);
    if (!st) fail(path, fmt::format("{}: unknown stage \"{}\"", where, name));
    t.stage = *st;
    const json& layer = need(e, "layer", path, where);
    if (is_per_layer(t.stage)) {
      if (!layer.is_number_integer() || layer.get<int64_t>() < 0 ||
          layer.get<int64_t>() >= m.n_layers) {
        fail(path, fmt::format("{}: per-layer stage {} needs a layer in [0, {})", where, name,
                               m.n_layers));
      }
      t.layer = layer.get<int>();
    } else if (!layer.is_null()) {
      fail(path, fmt::format("{}: whole-model stage {} must have \"layer\": null", where, name));
    }
    t.file = need_string(e, "file", path, where);
    if (t.file != stage_file(t.stage, t.layer)) {
      fail(path, fmt::format("{}: file \"{}\" should be \"{}\"", where, t.file,
                             stage_file(t.stage, t.layer)));
    }
    const json& shape = need(e, "shape", path, where);
    if (!shape.is_array() || shape.empty())
      fail(path, where + ": \"shape\" must be a non-empty array");
    for (const auto& d : shape) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0) {
        fail(path, where + ": \"shape\" entries must be non-negative integers");
      }
      t.shape.push_back(d.get<int64_t>());
    }
    if (!seen.insert({static_cast<int>(t.stage), t.layer}).second) {
      fail(path, fmt::format("{}: {} listed twice", where, entry_label(t.stage, t.layer)));
    }
    m.entries.push_back(std::move(t));
  }
  sort_entries(m.entries);
  return m;
}

void write_trace_meta(const std::string& dir, const TraceMeta& meta) {
  json j;
  j["schema"] = kTraceSchema;
  j["producer"] = meta.producer;
  j["model"] = meta.model;
  j["architecture"] = meta.architecture;
  j["backend"] = meta.backend;
  j["dtype"] = meta.dtype;
  if (!meta.weight_type.empty()) j["weight_type"] = meta.weight_type;
  j["n_layers"] = meta.n_layers;
  j["tokens"] = meta.tokens;
  if (!meta.greedy_tokens.empty()) j["greedy_tokens"] = meta.greedy_tokens;
  if (!meta.qk_rows.empty() && !meta.qk_rows_inferred) j["qk_rows"] = meta.qk_rows;
  if (meta.n_heads > 0) j["n_heads"] = meta.n_heads;
  if (meta.n_kv_heads > 0) j["n_kv_heads"] = meta.n_kv_heads;
  if (meta.head_dim > 0) j["head_dim"] = meta.head_dim;
  std::vector<TraceEntry> entries = meta.entries;
  sort_entries(entries);
  json st = json::array();
  for (const auto& e : entries) {
    json o;
    o["stage"] = std::string(stage_name(e.stage));
    o["layer"] = is_per_layer(e.stage) ? json(e.layer) : json(nullptr);
    o["file"] = e.file;
    o["shape"] = e.shape;
    st.push_back(std::move(o));
  }
  j["stages"] = std::move(st);
  const std::string path = (std::filesystem::path(dir) / "trace.json").string();
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    if (!f) fail(tmp, "cannot create");
    f << j.dump(1) << "\n";
    if (!f) fail(tmp, "write failed");
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace pv::model
