#include "model/trace/trace_dir.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
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

// Token ids are int32 everywhere in pv; a value that does not fit is refused rather than
// truncated (2^32 + 3 would otherwise read as 3 and compare equal to a real 3).
std::vector<int32_t> token_list(const json& v, const char* key, const std::string& path,
                                const TokenLocator* loc) {
  if (!v.is_array()) fail(path, fmt::format("\"{}\" must be an array of integers", key));
  std::vector<int32_t> out;
  for (size_t i = 0; i < v.size(); ++i) {
    const json& e = v[i];
    std::string why;
    if (!e.is_number_integer()) {
      why = "is not an integer";
    } else if (e.is_number_unsigned() ? e.get<uint64_t>() > 2147483647u
                                      : (e.get<int64_t>() < 0 || e.get<int64_t>() > 2147483647)) {
      why = e.is_number_unsigned() || e.get<int64_t>() >= 0
                ? "does not fit a token id (0 .. 2147483647)"
                : "is negative; token ids are 0 .. 2147483647";
    }
    if (!why.empty()) {
      fail(path, fmt::format("\"{}\"[{}] = {} {}{}", key, i, e.dump(), why,
                             loc != nullptr ? loc->locate(key, i) : std::string()));
    }
    out.push_back(static_cast<int32_t>(e.get<int64_t>()));
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

// q_norm / k_norm are in: each head's RMS is a sum over its D values (order-free) and the
// weight multiplies value j by w[j], so a model whose q/k rows are permuted within each head
// (with its norm weight permuted alike, as it must be to compute the same function) emits
// q_norm / k_norm permuted the same way. Left as stored, they would differ from HF's by the
// permutation alone and bisect would blame the norm.
bool is_qk_row_stage(Stage stage) {
  return stage == Stage::qkv_matmul || stage == Stage::qkv_bias || stage == Stage::q_norm ||
         stage == Stage::k_norm || stage == Stage::q_post_rope || stage == Stage::k_post_rope;
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
    return a.order.value_or(computation_order(a.stage, a.layer)) <
           b.order.value_or(computation_order(b.stage, b.layer));
  });
}

std::string entry_label(Stage stage, int layer) {
  if (!is_per_layer(stage)) return std::string(stage_name(stage));
  return fmt::format("L{} {}", layer, stage_name(stage));
}

namespace {

// Locates trace.json's token arrays in its text, for line:col in error messages.
class TextLocator : public TokenLocator {
 public:
  TextLocator(std::string path, std::string text)
      : path_(std::move(path)), text_(std::move(text)) {}
  std::string locate(const std::string& key, size_t index) const override {
    const size_t off = array_element_offset(text_, key, index);
    if (off == std::string::npos) return "";
    return fmt::format(" at {}:{}", path_, line_col(text_, off));
  }

 private:
  std::string path_, text_;
};

struct Resolved {
  std::optional<Stage> stage;
  std::string user;
  std::string canonical() const { return stage ? std::string(stage_name(*stage)) : user; }
};

}  // namespace

std::string entry_name(const TraceEntry& e) {
  return e.user.empty() ? std::string(stage_name(e.stage)) : e.user;
}

std::string entry_label(const std::string& name, int layer) {
  return layer >= 0 ? fmt::format("L{} {}", layer, name) : name;
}

std::string entry_label(const TraceEntry& e) { return entry_label(entry_name(e), e.layer); }

std::string stage_file(const std::string& name, int layer) {
  if (layer < 0) return fmt::format("{}.bin", name);
  return fmt::format("layer-{}/{}.bin", layer, name);
}

bool valid_user_stage_name(const std::string& name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

const std::vector<StageAlias>& stage_aliases() {
  // llama.cpp: the names its graph builders give tensors with cb(cur, name, il) (shown as
  // "name-il" by GGML's eval callback); FORMAT.md "Aliases" gives each one's meaning and
  // layout. aprender: apr trace --save-tensor uses pv's names, plus layer_output.
  static const std::vector<StageAlias> table = {
      {"attn_norm", "llama.cpp", Stage::attn_norm, nullptr},
      {"Qcur", "llama.cpp", Stage::q_post_rope, nullptr},
      {"Kcur", "llama.cpp", Stage::k_post_rope, nullptr},
      // qwen3 (src/models/qwen3.cpp): build_norm(Qcur, attn_q_norm) named before RoPE.
      {"Qcur_normed", "llama.cpp", Stage::q_norm, nullptr},
      {"Kcur_normed", "llama.cpp", Stage::k_norm, nullptr},
      {"kq", "llama.cpp", std::nullopt,
       "llama.cpp's kq-N is q.k^T before the 1/sqrt(head_dim) scale (ggml_soft_max_ext applies "
       "it) over the KV cache's length, while pv's attn_scores is scaled: the values differ, so "
       "it is not an alias; declare \"kq\" in \"stage_order\" to compare it as a user stage"},
      {"kq_soft_max", "llama.cpp", Stage::attn_softmax, nullptr},
      {"kqv_out", "llama.cpp", Stage::attention, nullptr},
      {"ffn_out", "llama.cpp", Stage::ffn_out, nullptr},
      {"l_out", "llama.cpp", Stage::post_ffn_residual, nullptr},
      {"result_norm", "llama.cpp", Stage::final_norm, nullptr},
      {"result_output", "llama.cpp", Stage::lm_head, nullptr},
      {"layer_output", "aprender", Stage::post_ffn_residual, nullptr},
  };
  return table;
}

std::optional<Stage> resolve_stage_name(const std::string& name, bool declared,
                                        const std::string& where) {
  if (auto st = stage_from_name(name)) return st;
  for (const auto& a : stage_aliases()) {
    if (name != a.name) continue;
    if (a.stage) return a.stage;
    if (declared) return std::nullopt;
    throw std::runtime_error(
        fmt::format("{}: stage \"{}\" ({}) is refused: {}", where, name, a.tool, a.refusal));
  }
  return std::nullopt;
}

size_t array_element_offset(std::string_view text, const std::string& key, size_t index) {
  size_t at = 0;
  if (!key.empty()) {
    const std::string quoted = "\"" + key + "\"";
    at = text.find(quoted);
    if (at == std::string_view::npos) return std::string_view::npos;
    at += quoted.size();
  }
  at = text.find('[', at);
  if (at == std::string_view::npos) return at;
  ++at;
  auto skip_ws = [&](size_t p) {
    while (p < text.size() && std::isspace(static_cast<unsigned char>(text[p]))) ++p;
    return p;
  };
  size_t elem = 0;
  size_t p = skip_ws(at);
  int depth = 0;
  bool in_string = false;
  if (index == 0) return p < text.size() && text[p] != ']' ? p : std::string_view::npos;
  for (; p < text.size(); ++p) {
    const char c = text[p];
    if (in_string) {
      if (c == '\\')
        ++p;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"')
      in_string = true;
    else if (c == '[' || c == '{')
      ++depth;
    else if ((c == ']' || c == '}') && depth-- == 0)
      return std::string_view::npos;
    else if (c == ',' && depth == 0 && ++elem == index)
      return skip_ws(p + 1);
  }
  return std::string_view::npos;
}

std::string line_col(std::string_view text, size_t offset) {
  size_t line = 1, col = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return fmt::format("{}:{}", line, col);
}

TraceMeta read_trace_meta(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / "trace.json").string();
  std::ifstream f(path, std::ios::binary);
  if (!f)
    fail(path, "cannot open (is this a trace directory written by pv trace or hf_oracle.py?)");
  const std::string text{std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    fail(path, fmt::format("invalid JSON at byte {} ({}): {}", e.byte,
                           line_col(text, e.byte > 0 ? e.byte - 1 : 0), e.what()));
  }
  const TextLocator loc(path, text);
  return parse_trace_index(j, path, true, &loc);
}

TraceMeta parse_trace_index(const json& j, const std::string& path, bool aprt_files,
                            const TokenLocator* loc) {
  if (!j.is_object()) fail(path, "top level must be an object");
  const std::string idx = aprt_files ? "trace.json" : "__metadata__";
  const std::string schema = need_string(j, "schema", path, idx);
  if (schema != kTraceSchema) {
    fail(path, fmt::format("schema \"{}\" is not \"{}\"", schema, kTraceSchema));
  }
  TraceMeta m;
  auto opt_string = [&](const char* key, const char* dflt) {
    if (!j.contains(key)) return std::string(dflt);
    return need_string(j, key, path, idx);
  };
  m.producer = opt_string("producer", "");
  m.model = opt_string("model", "");
  m.architecture = opt_string("architecture", "");
  m.backend = opt_string("backend", "");
  m.dtype = opt_string("dtype", "f32");
  m.weight_type = opt_string("weight_type", "");
  const json& nl = need(j, "n_layers", path, idx);
  if (!nl.is_number_integer() || nl.get<int64_t>() < 0 || nl.get<int64_t>() > 100000) {
    fail(path, "\"n_layers\" must be a non-negative integer");
  }
  m.n_layers = nl.get<int>();
  m.tokens = token_list(need(j, "tokens", path, idx), "tokens", path, loc);
  if (j.contains("greedy_tokens"))
    m.greedy_tokens = token_list(j["greedy_tokens"], "greedy_tokens", path, loc);
  m.n_heads = optional_positive_int(j, "n_heads", path);
  m.n_kv_heads = optional_positive_int(j, "n_kv_heads", path);
  m.head_dim = optional_positive_int(j, "head_dim", path);
  if (j.contains("qk_rows")) {
    const std::string rows = need_string(j, "qk_rows", path, idx);
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
  // The declared order: pv stages (or aliases) and user stages, each once.
  std::map<std::string, size_t> position;  // canonical name -> index in stage_order
  std::set<std::string> declared_raw;
  if (j.contains("stage_order")) {
    const json& so = j["stage_order"];
    if (!so.is_array()) fail(path, "\"stage_order\" must be an array of stage names");
    for (size_t i = 0; i < so.size(); ++i) {
      const std::string where = fmt::format("\"stage_order\"[{}]", i);
      if (!so[i].is_string()) fail(path, where + " must be a string");
      const std::string name = so[i].get<std::string>();
      const auto st = resolve_stage_name(name, true, path + ": " + where);
      if (!st && !valid_user_stage_name(name)) {
        fail(path, fmt::format("{}: user stage name \"{}\" must match [A-Za-z_][A-Za-z0-9_]*",
                               where, name));
      }
      const std::string canon = st ? std::string(stage_name(*st)) : name;
      if (!position.emplace(canon, i).second) {
        fail(path, fmt::format("{}: \"{}\" ({}) is listed twice", where, name, canon));
      }
      declared_raw.insert(name);
      m.stage_order.push_back(canon);
    }
  }
  const json& stages = need(j, "stages", path, idx);
  if (!stages.is_array()) fail(path, "\"stages\" must be an array");
  std::set<std::pair<std::string, int>> seen;
  for (size_t i = 0; i < stages.size(); ++i) {
    const json& e = stages[i];
    std::string where = fmt::format("stages[{}]", i);
    if (!e.is_object()) fail(path, where + " must be an object");
    if (!aprt_files && e.contains("file") && e["file"].is_string()) {
      where = fmt::format("tensor \"{}\"", e["file"].get<std::string>());
    }
    TraceEntry t;
    const std::string name = need_string(e, "stage", path, where);
    const bool declared = declared_raw.count(name) > 0;
    Resolved r;
    r.stage = resolve_stage_name(name, declared, fmt::format("{}: {}", path, where));
    if (!r.stage) {
      if (!declared) {
        fail(path, fmt::format("{}: unknown stage \"{}\": not a pv stage, not an alias of one "
                               "(model/trace/FORMAT.md), and not declared in \"stage_order\"",
                               where, name));
      }
      r.user = name;
    }
    if (!position.empty() && !position.count(r.canonical())) {
      fail(path, fmt::format("{}: stage \"{}\" is not in \"stage_order\" (a trace that declares "
                             "its order must list every stage it holds)",
                             where, name));
    }
    if (r.stage) t.stage = *r.stage;
    t.user = r.user;
    const json& layer = need(e, "layer", path, where);
    const bool per_layer = r.stage ? is_per_layer(*r.stage) : !layer.is_null();
    if (per_layer) {
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
    if (aprt_files) {
      const std::string canon_file =
          r.stage ? stage_file(*r.stage, t.layer) : stage_file(r.user, t.layer);
      if (t.file != canon_file && t.file != stage_file(name, t.layer)) {
        fail(path, fmt::format("{}: file \"{}\" should be \"{}\"", where, t.file, canon_file));
      }
    }
    const json& shape = need(e, "shape", path, where);
    if (!shape.is_array() || shape.empty())
      fail(path, where + ": \"shape\" must be a non-empty array");
    // The element count sizes every read of the stage (and lm_head's rows x vocab): a
    // product that wraps would pass the data-size check with a small count and then be
    // read far past the data.
    int64_t numel = 1;
    for (size_t k = 0; k < shape.size(); ++k) {
      const auto& d = shape[k];
      if (!d.is_number_integer() || (d.is_number_unsigned() && d.get<uint64_t>() > INT64_MAX) ||
          d.get<int64_t>() < 0) {
        fail(path, where + ": \"shape\" entries must be non-negative integers below 2^63");
      }
      t.shape.push_back(d.get<int64_t>());
      if (__builtin_mul_overflow(numel, t.shape.back(), &numel)) {
        fail(path, fmt::format("{}: stage {}: \"shape\" [{}] has an element count that "
                               "overflows 64 bits (at dimension {})",
                               where, name, fmt::join(t.shape, ", "), k));
      }
    }
    if (!seen.insert({r.canonical(), t.layer}).second) {
      fail(path, fmt::format("{}: {} listed twice{}", where, entry_label(r.canonical(), t.layer),
                             r.canonical() != name ? " (\"" + name + "\" is an alias)" : ""));
    }
    m.entries.push_back(std::move(t));
  }
  if (!position.empty()) {
    // Whole-model stages declared before the first per-layer stage come before layer 0,
    // the others after the last layer; within a layer, the declared order.
    size_t first_layered = SIZE_MAX;
    for (const auto& e : m.entries) {
      if (e.layer >= 0) first_layered = std::min(first_layered, position.at(entry_name(e)));
    }
    constexpr int64_t kLayerBase = int64_t{1} << 40, kAfter = int64_t{1} << 60;
    for (auto& e : m.entries) {
      const auto p = static_cast<int64_t>(position.at(entry_name(e)));
      if (e.layer >= 0) {
        e.order = kLayerBase + int64_t{e.layer} * 1000000 + p;
      } else {
        e.order = static_cast<size_t>(p) < first_layered ? p : kAfter + p;
      }
    }
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
  if (!meta.stage_order.empty()) j["stage_order"] = meta.stage_order;
  std::vector<TraceEntry> entries = meta.entries;
  sort_entries(entries);
  json st = json::array();
  for (const auto& e : entries) {
    json o;
    o["stage"] = entry_name(e);
    o["layer"] = e.layer >= 0 ? json(e.layer) : json(nullptr);
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
