// HF model directory -> LoadedModel: config.json into ModelConfig, model.safetensors (or
// the shards named by model.safetensors.index.json) into ModelWeights.
#include <fmt/format.h>

#include <climits>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "model/formats/safetensors.h"
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

int get_int(const JsonDoc& d, const std::string& key, bool required, int def) {
  auto it = d.root.find(key);
  if (it == d.root.end() || it->is_null()) {
    if (required) d.fail(key, "required key is missing");
    return def;
  }
  if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > INT_MAX) {
    d.fail(key, fmt::format("expected a non-negative integer, found {}", it->dump()));
  }
  return static_cast<int>(it->get<int64_t>());
}

float get_float(const JsonDoc& d, const std::string& key, float def) {
  auto it = d.root.find(key);
  if (it == d.root.end() || it->is_null()) return def;
  if (!it->is_number()) d.fail(key, fmt::format("expected a number, found {}", it->dump()));
  return it->get<float>();
}

bool get_bool(const JsonDoc& d, const std::string& key, bool def) {
  auto it = d.root.find(key);
  if (it == d.root.end() || it->is_null()) return def;
  if (!it->is_boolean()) d.fail(key, fmt::format("expected true/false, found {}", it->dump()));
  return it->get<bool>();
}

// bos/eos may be an integer or a list of integers (the first one is used).
int get_token_id(const JsonDoc& d, const std::string& key) {
  auto it = d.root.find(key);
  if (it == d.root.end() || it->is_null()) return -1;
  const json& v = it->is_array() && !it->empty() ? (*it)[0] : *it;
  if (!v.is_number_integer()) d.fail(key, fmt::format("expected a token id, found {}", it->dump()));
  if (v.get<int64_t>() < -1 || v.get<int64_t>() > INT_MAX) {
    d.fail(key, fmt::format("token id {} is out of range", v.dump()));
  }
  return static_cast<int>(v.get<int64_t>());
}

ModelConfig parse_config(const JsonDoc& d) {
  ModelConfig c;
  std::string mt;
  if (auto it = d.root.find("model_type"); it != d.root.end() && it->is_string()) {
    mt = it->get<std::string>();
  }
  if (mt.empty()) d.fail("model_type", "required key is missing");
  if (mt != "qwen2" && mt != "llama") {
    d.fail("model_type", fmt::format("model_type '{}' is not supported (qwen2, llama)", mt));
  }
  if (auto it = d.root.find("rope_scaling"); it != d.root.end() && !it->is_null()) {
    d.fail("rope_scaling", "RoPE scaling is not supported");
  }
  c.architecture = mt;
  c.n_layers = get_int(d, "num_hidden_layers", true, 0);
  c.hidden = get_int(d, "hidden_size", true, 0);
  c.ffn = get_int(d, "intermediate_size", true, 0);
  c.n_heads = get_int(d, "num_attention_heads", true, 0);
  c.n_kv_heads = get_int(d, "num_key_value_heads", false, c.n_heads);
  c.vocab = get_int(d, "vocab_size", true, 0);
  c.context_length = get_int(d, "max_position_embeddings", false, 0);
  if (c.n_heads > 0 && !d.root.contains("head_dim") && c.hidden % c.n_heads != 0) {
    d.fail("num_attention_heads",
           fmt::format("hidden_size {} is not a multiple of {}", c.hidden, c.n_heads));
  }
  c.head_dim = get_int(d, "head_dim", false, c.n_heads > 0 ? c.hidden / c.n_heads : 0);
  c.rms_eps = get_float(d, "rms_norm_eps", 1e-6f);
  c.rope_theta = get_float(d, "rope_theta", 10000.0f);
  c.rope_style = kernels::RopeStyle::HalfSplit;  // HF checkpoints are not permuted
  c.tied_embeddings = get_bool(d, "tie_word_embeddings", false);
  c.qkv_bias = mt == "qwen2" ? true : get_bool(d, "attention_bias", false);
  c.bos_token = get_token_id(d, "bos_token_id");
  c.eos_token = get_token_id(d, "eos_token_id");
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

LoadedModel load_hf_model(const std::string& dir) {
  LoadedModel out;
  out.source_path = dir;
  out.format = "safetensors";
  JsonDoc cfg = read_json((fs::path(dir) / "config.json").string());
  out.config = parse_config(cfg);
  ModelConfig& c = out.config;
  check_config(c, cfg.path, 0);

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
