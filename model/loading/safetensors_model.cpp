// HF model directory -> LoadedModel: config.json into ModelConfig, model.safetensors (or
// the shards named by model.safetensors.index.json) into ModelWeights.
#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <span>
#include <sstream>

#include "model/formats/safetensors.h"
#include "model/loading/arch.h"
#include "model/loading/config_keys.h"
#include "model/loading/loader.h"
#include "model/loading/loader_bind.h"

namespace pv::model {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct JsonDoc {
  std::string path;
  std::string text;
  json root;

  uint64_t key_offset(const std::string& key) const {
    size_t at = text.find("\"" + key + "\"");
    return at == std::string::npos ? 0 : at;
  }
  [[noreturn]] void fail(const std::string& key, const std::string& detail) const {
    uint64_t at = key_offset(key);
    throw FormatError(path, at, key.empty() ? "" : key_subject(key),
                      fmt::format("{} (at {})", detail, text_position(path, text, at)));
  }
};

JsonDoc read_json(const std::string& path) {
  JsonDoc d;
  d.path = path;
  // Regular files only, bounded: a FIFO or /dev/zero named config.json must not hang pv.
  d.text = read_small_file(path, kMaxJsonFileBytes);
  if (auto deep = json_too_deep(d.text)) {
    throw FormatError(path, *deep, "",
                      fmt::format("JSON nested deeper than 256 levels at {}",
                                  text_position(path, d.text, *deep)));
  }
  try {
    d.root = json::parse(d.text);
  } catch (const json::parse_error& e) {
    uint64_t at = e.byte > 0 ? e.byte - 1 : 0;
    throw FormatError(
        path, at, "",
        fmt::format("invalid JSON at {}: {}", text_position(path, d.text, at), e.what()));
  } catch (const json::exception& e) {
    uint64_t at = quoted_position(d.text, e.what());
    throw FormatError(
        path, at, "",
        fmt::format("unusable JSON value at {}: {}", text_position(path, d.text, at), e.what()));
  }
  if (!d.root.is_object()) throw FormatError(path, 0, "", "top level is not a JSON object");
  return d;
}

// Where a key of an object nested under `parent` sits in the text (the parent's
// position when the key is not found after it).
uint64_t nested_offset(const JsonDoc& d, const std::string& parent, const std::string& key) {
  size_t p = d.text.find("\"" + parent + "\"");
  if (p == std::string::npos) return 0;
  size_t k = d.text.find("\"" + key + "\"", p);
  return k == std::string::npos ? p : k;
}

// One JSON object (the top level, or rope_scaling / rope_parameters) with the file it came
// from: every getter names the key as "parent.key" in errors.
struct Obj {
  const JsonDoc& d;
  const json& o;
  std::string parent;  // "" at the top level

  std::string name(const std::string& key) const {
    return parent.empty() ? key : parent + "." + key;
  }
  [[noreturn]] void fail(const std::string& key, const std::string& detail) const {
    if (parent.empty()) d.fail(key, detail);
    uint64_t at = nested_offset(d, parent, key);
    throw FormatError(d.path, at, key_subject(name(key)),
                      fmt::format("{} (at {})", detail, text_position(d.path, d.text, at)));
  }
  const json* get(const std::string& key) const {
    auto it = o.find(key);
    return it == o.end() || it->is_null() ? nullptr : &*it;
  }
  int64_t integer(const std::string& key, int64_t lo, int64_t hi) const {
    const json* v = get(key);
    if (!v) fail(key, "required key is missing");
    if (!v->is_number_integer()) fail(key, fmt::format("expected an integer, found {}", v->dump()));
    const int64_t x =
        v->is_number_unsigned() && v->get<uint64_t>() > INT64_MAX ? INT64_MAX : v->get<int64_t>();
    if (x < lo || x > hi) fail(key, fmt::format("{} is outside [{}, {}]", v->dump(), lo, hi));
    return x;
  }
  double real(const std::string& key) const {
    const json* v = get(key);
    if (!v) fail(key, "required key is missing");
    if (!v->is_number()) fail(key, fmt::format("expected a number, found {}", v->dump()));
    const double x = v->get<double>();
    if (!std::isfinite(x)) fail(key, fmt::format("{} is not finite", v->dump()));
    return x;
  }
  // A number in the open interval (lo, hi).
  double real_in(const std::string& key, double lo, double hi) const {
    const double x = real(key);
    if (!(x > lo && x < hi)) fail(key, fmt::format("{} is outside ({}, {})", x, lo, hi));
    return x;
  }
  bool boolean(const std::string& key, bool absent) const {
    const json* v = get(key);
    if (!v) return absent;
    if (!v->is_boolean()) fail(key, fmt::format("expected true/false, found {}", v->dump()));
    return v->get<bool>();
  }
  std::string string(const std::string& key) const {
    const json* v = get(key);
    if (!v) fail(key, "required key is missing");
    if (!v->is_string()) fail(key, fmt::format("expected a string, found {}", v->dump()));
    return v->get<std::string>();
  }
  // Every key must be in `table`; refused keys are refused when present and not null.
  void check_keys(std::span<const ConfigKey> table) const {
    for (auto it = o.begin(); it != o.end(); ++it) {
      const ConfigKey* k = find_config_key(table, it.key());
      if (!k) {
        fail(it.key(),
             "unknown config key: pv does not know what it does to the model, so it "
             "refuses to guess (README.md, Supported config dialects)");
      }
      if (k->rule == KeyRule::kRefused && !it->is_null()) {
        fail(it.key(), fmt::format("not supported: {}", k->note));
      }
    }
  }
};

// Token ids: an integer or a list of integers, each in [0, vocab).
std::vector<int> token_ids(const Obj& o, const std::string& key, int vocab) {
  const json* v = o.get(key);
  if (!v) return {};
  std::vector<int> ids;
  auto one = [&](const json& e) {
    if (!e.is_number_integer())
      o.fail(key, fmt::format("expected a token id, found {}", v->dump()));
    const int64_t id = e.get<int64_t>();
    if (id < 0 || id >= vocab) {
      o.fail(key, fmt::format("token id {} is outside the vocabulary of {}", e.dump(), vocab));
    }
    ids.push_back(static_cast<int>(id));
  };
  if (v->is_array()) {
    if (v->empty()) o.fail(key, "empty list of token ids");
    for (const json& e : *v) one(e);
  } else {
    one(*v);
  }
  return ids;
}

constexpr int64_t kMaxSize = int64_t{1} << 24;  // far above any published width or vocab

// rope_scaling (4.x) or rope_parameters (5.x): the kind and its factors.
RopeScaling parse_rope(const Obj& r, const ModelConfig& c) {
  r.check_keys(hf_rope_keys());
  RopeScaling s;
  std::string kind;
  if (r.get("rope_type")) kind = r.string("rope_type");
  if (r.get("type")) {
    const std::string old = r.string("type");
    if (!kind.empty() && kind != old) {
      r.fail("type", fmt::format("'{}' contradicts rope_type '{}'", old, kind));
    }
    kind = old;
  }
  if (kind.empty()) r.fail("rope_type", "required key is missing");
  if (r.get("partial_rotary_factor") && r.real("partial_rotary_factor") != 1.0) {
    r.fail("partial_rotary_factor", "partial rotary embedding is not supported (1.0 only)");
  }
  auto factor = [&] {
    const double f = r.real("factor");
    if (!(f >= 1.0)) r.fail("factor", fmt::format("{} must be >= 1", f));
    return f;
  };
  if (kind == "default") {
    for (const char* k :
         {"factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings",
          "beta_fast", "beta_slow", "mscale", "mscale_all_dim", "attention_factor", "truncate"}) {
      if (r.get(k)) r.fail(k, "has no meaning for rope_type 'default'");
    }
  } else if (kind == "linear") {
    s.kind = RopeScalingKind::Linear;
    s.factor = factor();
    for (const char* k :
         {"low_freq_factor", "high_freq_factor", "original_max_position_embeddings", "beta_fast",
          "beta_slow", "mscale", "mscale_all_dim", "attention_factor", "truncate"}) {
      if (r.get(k)) r.fail(k, "has no meaning for rope_type 'linear'");
    }
  } else if (kind == "llama3") {
    s.kind = RopeScalingKind::Llama3;
    s.factor = factor();
    s.low_freq_factor = r.real_in("low_freq_factor", 0.0, 1e6);
    s.high_freq_factor = r.real_in("high_freq_factor", s.low_freq_factor, 1e6);
    s.original_context =
        static_cast<int>(r.integer("original_max_position_embeddings", 1, kMaxSize));
    for (const char* k :
         {"beta_fast", "beta_slow", "mscale", "mscale_all_dim", "attention_factor", "truncate"}) {
      if (r.get(k)) r.fail(k, "has no meaning for rope_type 'llama3'");
    }
  } else if (kind == "yarn") {
    s.kind = RopeScalingKind::Yarn;
    s.factor = factor();
    if (r.get("original_max_position_embeddings")) {
      // transformers 4.4x interpolates by `factor`; later releases replace `factor` by
      // max_position_embeddings / original_max_position_embeddings when the key is there.
      // Only when the two agree is the model the same under both.
      s.original_context =
          static_cast<int>(r.integer("original_max_position_embeddings", 1, kMaxSize));
      const double ratio = static_cast<double>(c.context_length) / s.original_context;
      if (ratio != s.factor) {
        r.fail("original_max_position_embeddings",
               fmt::format("max_position_embeddings {} / {} = {} differs from factor {}: "
                           "transformers versions disagree on which one yarn uses",
                           c.context_length, s.original_context, ratio, s.factor));
      }
    }
    if (r.get("beta_fast")) s.beta_fast = r.real_in("beta_fast", 0.0, 1e6);
    if (r.get("beta_slow")) s.beta_slow = r.real_in("beta_slow", 0.0, 1e6);
    if (r.get("mscale")) s.mscale = r.real_in("mscale", 0.0, 1e6);
    if (r.get("mscale_all_dim")) s.mscale_all_dim = r.real_in("mscale_all_dim", 0.0, 1e6);
    if (r.get("attention_factor")) s.attention_factor = r.real_in("attention_factor", 0.0, 1e6);
    s.truncate = r.boolean("truncate", true);
    for (const char* k : {"low_freq_factor", "high_freq_factor"}) {
      if (r.get(k)) r.fail(k, "has no meaning for rope_type 'yarn'");
    }
  } else {
    r.fail(r.get("rope_type") ? "rope_type" : "type",
           fmt::format("RoPE scaling '{}' is not supported (default, linear, llama3, yarn)", kind));
  }
  return s;
}

ModelConfig parse_config(const JsonDoc& d) {
  const Obj top{d, d.root, ""};
  top.check_keys(hf_config_keys());
  ModelConfig c;
  const std::string mt = top.string("model_type");
  // Mistral is llama's math plus a sliding window (refused below where it applies).
  c.architecture = mt == "mistral" ? "llama" : mt;
  if (!find_architecture(c.architecture)) {
    top.fail("model_type", fmt::format("model_type '{}' is not supported ({}, mistral)", mt,
                                       architecture_list()));
  }
  const bool qwen = mt == "qwen2" || mt == "qwen3";
  c.n_layers = static_cast<int>(top.integer("num_hidden_layers", 1, 4096));
  c.hidden = static_cast<int>(top.integer("hidden_size", 1, kMaxSize));
  c.ffn = static_cast<int>(top.integer("intermediate_size", 1, kMaxSize));
  c.n_heads = static_cast<int>(top.integer("num_attention_heads", 1, 4096));
  c.n_kv_heads = top.get("num_key_value_heads")
                     ? static_cast<int>(top.integer("num_key_value_heads", 1, 4096))
                     : c.n_heads;
  if (c.n_heads % c.n_kv_heads != 0) {
    top.fail("num_key_value_heads", fmt::format("num_attention_heads {} is not a multiple of {}",
                                                c.n_heads, c.n_kv_heads));
  }
  c.vocab = static_cast<int>(top.integer("vocab_size", 1, kMaxSize));
  c.context_length = static_cast<int>(top.integer("max_position_embeddings", 1, kMaxSize));
  if (top.get("head_dim")) {
    c.head_dim = static_cast<int>(top.integer("head_dim", 2, kernels::kMaxRopeHeadDim));
  } else {
    if (c.hidden % c.n_heads != 0) {
      top.fail("num_attention_heads",
               fmt::format("hidden_size {} is not a multiple of {} (and no head_dim)", c.hidden,
                           c.n_heads));
    }
    c.head_dim = c.hidden / c.n_heads;
  }
  if (c.head_dim % 2 != 0 || c.head_dim > kernels::kMaxRopeHeadDim) {
    top.fail(top.get("head_dim") ? "head_dim" : "hidden_size",
             fmt::format("head_dim {} must be even and at most {}", c.head_dim,
                         kernels::kMaxRopeHeadDim));
  }
  c.rms_eps = static_cast<float>(top.real_in("rms_norm_eps", 0.0, 1.0));

  // The rope base and scaling: 4.x writes rope_theta + rope_scaling, 5.x rope_parameters.
  const json* params = top.get("rope_parameters");
  const json* scaling = top.get("rope_scaling");
  if (params && !params->is_object()) top.fail("rope_parameters", "expected an object");
  if (scaling && !scaling->is_object()) top.fail("rope_scaling", "expected an object");
  // Their keys first: an unknown one (a per-layer-type table, say) is named before
  // anything is read from the object.
  if (params) Obj{d, *params, "rope_parameters"}.check_keys(hf_rope_keys());
  if (scaling) Obj{d, *scaling, "rope_scaling"}.check_keys(hf_rope_keys());
  if (params && scaling) {
    top.fail("rope_scaling", "both rope_scaling (4.x) and rope_parameters (5.x) are present");
  }
  std::optional<double> theta;
  const Obj* theta_from = &top;
  if (top.get("rope_theta")) theta = top.real("rope_theta");
  const Obj p{d, params ? *params : d.root, "rope_parameters"};
  if (params && p.get("rope_theta")) {
    const double t = p.real("rope_theta");
    if (theta && *theta != t) {
      p.fail("rope_theta", fmt::format("{} contradicts the top-level rope_theta {}", t, *theta));
    }
    theta = t;
    theta_from = &p;
  }
  if (!theta) {
    top.fail("rope_theta", "no rope base: neither rope_theta nor rope_parameters.rope_theta");
  }
  if (!(*theta > 1.0) || *theta > 1e12) {
    theta_from->fail("rope_theta", fmt::format("rope base {} is outside (1, 1e12]", *theta));
  }
  c.rope_theta = static_cast<float>(*theta);
  if (params) c.rope_scaling = parse_rope(p, c);
  if (scaling) c.rope_scaling = parse_rope(Obj{d, *scaling, "rope_scaling"}, c);
  if (top.get("partial_rotary_factor") && top.real("partial_rotary_factor") != 1.0) {
    top.fail("partial_rotary_factor", "partial rotary embedding is not supported (1.0 only)");
  }
  c.rope_style = kernels::RopeStyle::HalfSplit;  // HF checkpoints are not permuted

  if (top.get("hidden_act") && top.string("hidden_act") != "silu") {
    top.fail("hidden_act",
             fmt::format("activation '{}' is not supported (silu)", top.string("hidden_act")));
  }
  if (top.boolean("attention_bias", false)) {
    top.fail("attention_bias", "true adds q/k/v and o_proj biases; pv has no o_proj bias");
  }
  if (top.boolean("mlp_bias", false)) top.fail("mlp_bias", "MLP biases are not supported");
  if (top.boolean("use_mrope", false)) top.fail("use_mrope", "multimodal RoPE is not supported");
  // qwen2's attention always has q/k/v biases (HF hard-codes them); the others have none.
  c.qkv_bias = mt == "qwen2";
  c.qk_norm = mt == "qwen3";  // Qwen3Attention always has q_norm / k_norm
  c.tied_embeddings = top.boolean("tie_word_embeddings", false);

  // Sliding window. The window W applies to a layer when: llama/mistral — every layer, when
  // sliding_window is set; qwen2/qwen3 — only with use_sliding_window true, to the layers
  // layer_types marks sliding_attention or else those >= max_window_layers. A window changes
  // the math only once a query is more than W positions past a key, which cannot happen
  // within max_position_embeddings when W >= it: accepted then, refused otherwise.
  std::optional<int64_t> window;
  if (top.get("sliding_window")) window = top.integer("sliding_window", 1, INT64_MAX);
  const bool use_window = qwen ? top.boolean("use_sliding_window", false) : true;
  int64_t max_window_layers = c.n_layers;
  if (top.get("max_window_layers")) {
    max_window_layers = top.integer("max_window_layers", 0, INT64_MAX);
  }
  int windowed_layers = 0;
  if (const json* lt = top.get("layer_types")) {
    if (!lt->is_array() || lt->size() != static_cast<size_t>(c.n_layers)) {
      top.fail("layer_types", fmt::format("expected a list of {} layer types", c.n_layers));
    }
    for (const json& t : *lt) {
      if (t == "sliding_attention") {
        ++windowed_layers;
      } else if (t != "full_attention") {
        top.fail("layer_types", fmt::format("layer type {} is not supported", t.dump()));
      }
    }
  } else {
    windowed_layers =
        qwen ? static_cast<int>(std::max<int64_t>(0, c.n_layers - max_window_layers)) : c.n_layers;
  }
  if (window && use_window && windowed_layers > 0 && *window < c.context_length) {
    top.fail("sliding_window",
             fmt::format("a {}-token sliding window on {} of {} layers changes attention within "
                         "max_position_embeddings {}; sliding-window attention is not supported",
                         *window, windowed_layers, c.n_layers, c.context_length));
  }

  const std::vector<int> bos = token_ids(top, "bos_token_id", c.vocab);
  c.bos_token = bos.empty() ? -1 : bos.front();
  c.eos_tokens = token_ids(top, "eos_token_id", c.vocab);
  c.eos_token = c.eos_tokens.empty() ? -1 : c.eos_tokens.front();
  return c;
}

// The shard files of the directory: model.safetensors, or those the index names.
std::vector<std::string> shard_files(const std::string& dir,
                                     std::map<std::string, std::string>* map,
                                     std::string* index_path) {
  fs::path single = fs::path(dir) / "model.safetensors";
  fs::path index = fs::path(dir) / "model.safetensors.index.json";
  if (fs::exists(index)) {
    *index_path = index.string();
    JsonDoc d = read_json(index.string());
    auto wm = d.root.find("weight_map");
    if (wm == d.root.end() || !wm->is_object()) d.fail("weight_map", "missing or not an object");
    std::set<std::string> files;
    for (auto it = wm->begin(); it != wm->end(); ++it) {
      if (!it->is_string()) d.fail(it.key(), "shard file name is not a string");
      std::string f = it->get<std::string>();
      // Shards live in the directory itself: no paths, no way out of it.
      if (f.empty() || f.find('/') != std::string::npos || f == "." || f == "..") {
        d.fail(it.key(), fmt::format("shard file name '{}' is not a plain file name", f));
      }
      (*map)[it.key()] = f;
      files.insert(f);
    }
    std::vector<std::string> out;
    for (const auto& f : files) out.push_back((fs::path(dir) / f).string());
    return out;
  }
  if (fs::exists(single)) return {single.string()};
  throw FormatError(dir, FormatError::kNoOffset, "",
                    "no model.safetensors or model.safetensors.index.json in the directory");
}

}  // namespace

ModelConfig parse_hf_config_file(const std::string& path) {
  JsonDoc d = read_json(path);
  ModelConfig c = parse_config(d);
  check_config(c, d.path, 0);
  return c;
}

LoadedModel load_hf_model(const std::string& dir) {
  LoadedModel out;
  out.source_path = dir;
  out.format = "safetensors";
  JsonDoc cfg = read_json((fs::path(dir) / "config.json").string());
  out.config = parse_config(cfg);
  ModelConfig& c = out.config;
  check_config(c, cfg.path, 0);
  check_forward_support(c, cfg.path, cfg.key_offset("model_type"));

  std::map<std::string, std::string> weight_map;
  std::string index_path;
  std::vector<std::string> files = shard_files(dir, &weight_map, &index_path);

  std::map<std::string, SourceTensor> by_name;
  struct Rejected {
    std::string file, dtype;
    uint64_t offset;
  };
  std::map<std::string, Rejected> rejected;  // tensors whose dtype is no weight type
  for (const auto& path : files) {
    SafetensorsFile st = read_safetensors(path);
    out.mappings.push_back(st.file);
    for (const auto& t : st.tensors) {
      if (by_name.count(t.name) || rejected.count(t.name)) {
        throw FormatError(path, t.header_offset, tensor_subject(t.name),
                          "tensor appears in more than one shard");
      }
      if (!weight_map.empty()) {
        auto it = weight_map.find(t.name);
        if (it == weight_map.end() || (fs::path(dir) / it->second).string() != path) {
          throw FormatError(path, t.header_offset, tensor_subject(t.name),
                            "tensor is not in this shard according to " + index_path);
        }
      }
      out.tensors.push_back({t.name, t.dtype, t.shape, t.nbytes(), t.file_offset, path});
      auto type = safetensors_weight_type(t.dtype);
      if (!type) {
        rejected[t.name] = {path, t.dtype, t.header_offset};
        continue;
      }
      SourceTensor s;
      s.shape = t.shape;
      s.file = path;
      s.record_offset = t.header_offset;
      s.view.name = t.name;
      s.view.type = *type;
      // Row-major, outermost first: the last dimension is the row length.
      uint64_t numel = 1;
      for (uint64_t d : t.shape) numel *= d;
      s.view.cols = t.shape.empty() ? 1 : static_cast<int64_t>(t.shape.back());
      s.view.rows = s.view.cols == 0 ? 0 : static_cast<int64_t>(numel / t.shape.back());
      s.view.data = t.data;
      s.view.nbytes = t.nbytes();
      by_name.emplace(t.name, std::move(s));
    }
  }
  for (const auto& [name, file] : weight_map) {
    if (!by_name.count(name) && !rejected.count(name)) {
      throw FormatError(index_path, FormatError::kNoOffset, tensor_subject(name),
                        "listed in the index but absent from shard " + file);
    }
  }
  // Tied when the config says so, or when the checkpoint simply has no lm_head.
  if (!by_name.count("lm_head.weight") && !rejected.count("lm_head.weight")) {
    c.tied_embeddings = true;
  }
  TensorSource src;
  src.find = [&](const std::string& n) -> const SourceTensor* {
    if (auto r = rejected.find(n); r != rejected.end()) {
      throw FormatError(r->second.file, r->second.offset, tensor_subject(n),
                        fmt::format("dtype {} is not a weight type pv can use (F32, F16, BF16)",
                                    r->second.dtype));
    }
    auto it = by_name.find(n);
    return it == by_name.end() ? nullptr : &it->second;
  };
  src.name_of = hf_tensor_name;
  src.missing_file = files.size() == 1 ? files.front() : index_path;
  src.missing_offset = 8;  // the header of the safetensors file
  out.weights = bind_weights(c, src);

  for (auto it = cfg.root.begin(); it != cfg.root.end(); ++it) {
    out.metadata.emplace_back(it.key(), it->dump());
  }
  return out;
}

}  // namespace pv::model
