// pv inspect PATH: the first thing to run on an unknown checkpoint — architecture,
// hyper-parameters, tensor table (name, type, shape, bytes, offset), totals per type
// and a tokenizer summary. A GGUF file holding tensors of types pv does not decode is still
// shown in full: every metadata entry and every tensor, those tensors marked
// "unsupported: IQ2_XXS (16)" (pv could not run that model).
// Exit status: 0 the file was read and shown (unsupported tensor types included, marked);
// 2 a malformed or unreadable file, an error naming the place (from main).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "kernels/quant/ggml_types.h"
#include "model/formats/gguf.h"
#include "model/formats/mapped_file.h"
#include "model/loading/loader.h"
#include "tools/command.h"

namespace {

std::string human_bytes(uint64_t b) {
  if (b >= (1ull << 30)) return fmt::format("{:.2f} GiB", b / double(1ull << 30));
  if (b >= (1ull << 20)) return fmt::format("{:.2f} MiB", b / double(1ull << 20));
  if (b >= (1ull << 10)) return fmt::format("{:.1f} KiB", b / double(1ull << 10));
  return fmt::format("{} B", b);
}

std::string token_text(const pv::model::TokenizerData& t, int id) {
  if (id < 0 || id >= static_cast<int>(t.tokens.size())) return "";
  return " '" + t.tokens[static_cast<size_t>(id)] + "'";
}

// A GGUF file with tensors of types pv does not decode: no model can be bound, so the file
// itself is shown -- all metadata, every tensor (the unsupported ones marked), totals.
int inspect_gguf_file(const pv::model::GgufFile& f, bool as_json) {
  std::map<std::string, std::pair<uint64_t, uint64_t>> per_type;
  uint64_t total = 0;
  size_t unsupported = 0;
  auto type_label = [](const pv::model::GgufTensorInfo& t) {
    return t.type_supported ? std::string(pv::kernels::type_name(t.type))
                            : "unsupported: " + pv::kernels::describe_type_id(t.type_id);
  };
  for (const auto& t : f.tensors) {
    const std::string key = t.type_supported
                                ? std::string(pv::kernels::type_name(t.type))
                                : std::string(pv::kernels::ggml_type_name(t.type_id).value_or("?"));
    per_type[key].first += 1;
    per_type[key].second += t.nbytes;
    total += t.nbytes;
    unsupported += t.type_supported ? 0 : 1;
  }
  if (as_json) {
    nlohmann::ordered_json j;
    j["path"] = f.path();
    j["format"] = "gguf";
    j["gguf_version"] = f.version;
    j["unsupported_tensors"] = unsupported;
    auto& mj = j["metadata"] = nlohmann::ordered_json::object();
    for (const auto& kv : f.kvs) mj[kv.key] = kv.value.summary();
    auto& tj = j["tensors"] = nlohmann::ordered_json::array();
    for (const auto& t : f.tensors) {
      tj.push_back(
          {{"name", t.name},
           {"type", t.type_supported
                        ? std::string(pv::kernels::type_name(t.type))
                        : std::string(pv::kernels::ggml_type_name(t.type_id).value_or("?"))},
           {"type_id", t.type_id},
           {"supported", t.type_supported},
           {"dims", t.dims},
           {"bytes", t.nbytes},
           {"offset", t.file_offset(f.data_start)}});
    }
    auto& pj = j["totals"] = nlohmann::ordered_json::object();
    for (const auto& [type, cb] : per_type)
      pj[type] = {{"tensors", cb.first}, {"bytes", cb.second}};
    j["total_bytes"] = total;
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  fmt::print("{}  (gguf v{}, {} tensors, {} of weights; {} of types pv does not decode)\n",
             f.path(), f.version, f.tensors.size(), human_bytes(total), unsupported);
  fmt::print("\nmetadata ({} entries)\n", f.kvs.size());
  for (const auto& kv : f.kvs) fmt::print("  {:<44} {}\n", kv.key, kv.value.summary());
  size_t w = 4, tw = 4;
  for (const auto& t : f.tensors) {
    w = std::max(w, t.name.size());
    tw = std::max(tw, type_label(t).size());
  }
  fmt::print("\n  {:<{}}  {:<{}}  {:<14}  {:>10}  {:>10}\n", "name", w, "type", tw, "dims", "bytes",
             "offset");
  for (const auto& t : f.tensors) {
    fmt::print("  {:<{}}  {:<{}}  {:<14}  {:>10}  {:>10}\n", t.name, w, type_label(t), tw,
               fmt::format("[{}]", fmt::join(t.dims, ", ")), t.nbytes, t.file_offset(f.data_start));
  }
  fmt::print("\ntotals per type\n");
  for (const auto& [type, cb] : per_type) {
    fmt::print("  {:<8}  {:>4} tensors  {:>12} bytes  ({})\n", type, cb.first, cb.second,
               human_bytes(cb.second));
  }
  fmt::print(
      "\npv cannot run this model: {} tensor(s) are stored in types it does not decode "
      "(marked above)\n",
      unsupported);
  return 0;
}

int run_inspect(const std::string& path, bool as_json, bool show_metadata) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec) &&
      pv::model::looks_like_gguf(*pv::model::MappedFile::open(path))) {
    pv::model::GgufReadOptions opts;
    opts.keep_unsupported_types = true;
    const pv::model::GgufFile f = pv::model::read_gguf(path, opts);
    for (const auto& t : f.tensors) {
      if (!t.type_supported) return inspect_gguf_file(f, as_json);
    }
  }
  pv::model::LoadedModel m = pv::model::load_model(path);
  const auto& c = m.config;
  std::map<std::string, std::pair<uint64_t, uint64_t>> per_type;  // type -> count, bytes
  uint64_t total = 0;
  for (const auto& t : m.tensors) {
    per_type[t.type].first += 1;
    per_type[t.type].second += t.nbytes;
    total += t.nbytes;
  }
  const char* rope =
      c.rope_style == pv::kernels::RopeStyle::HalfSplit ? "half-split" : "interleaved";
  if (as_json) {
    nlohmann::ordered_json j;
    j["path"] = m.source_path;
    j["format"] = m.format;
    j["config"] = {{"architecture", c.architecture},
                   {"n_layers", c.n_layers},
                   {"hidden", c.hidden},
                   {"ffn", c.ffn},
                   {"n_heads", c.n_heads},
                   {"n_kv_heads", c.n_kv_heads},
                   {"head_dim", c.head_dim},
                   {"vocab", c.vocab},
                   {"context_length", c.context_length},
                   {"rms_eps", c.rms_eps},
                   {"rope_theta", c.rope_theta},
                   {"rope_style", rope},
                   {"tied_embeddings", c.tied_embeddings},
                   {"qkv_bias", c.qkv_bias},
                   {"qk_norm", c.qk_norm},
                   {"bos_token", c.bos_token},
                   {"eos_token", c.eos_token}};
    auto& tj = j["tensors"] = nlohmann::ordered_json::array();
    for (const auto& t : m.tensors) {
      tj.push_back({{"name", t.name},
                    {"type", t.type},
                    {"shape", t.shape},
                    {"bytes", t.nbytes},
                    {"offset", t.offset},
                    {"file", t.file}});
    }
    auto& pj = j["totals"] = nlohmann::ordered_json::object();
    for (const auto& [type, cb] : per_type)
      pj[type] = {{"tensors", cb.first}, {"bytes", cb.second}};
    j["total_bytes"] = total;
    const auto& tk = m.tokenizer;
    j["tokenizer"] = tk.present ? nlohmann::ordered_json{{"model", tk.model},
                                                         {"pre", tk.pre},
                                                         {"tokens", tk.tokens.size()},
                                                         {"merges", tk.merges.size()},
                                                         {"bos", tk.bos},
                                                         {"eos", tk.eos},
                                                         {"add_bos", tk.add_bos}}
                                : nlohmann::ordered_json(nullptr);
    auto& mj = j["metadata"] = nlohmann::ordered_json::object();
    for (const auto& [k, v] : m.metadata) mj[k] = v;
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  fmt::print("{}  ({}, {} tensors, {} of weights)\n", m.source_path, m.format, m.tensors.size(),
             human_bytes(total));
  fmt::print("architecture  {}\n", c.architecture);
  fmt::print(
      "layers {}  hidden {}  ffn {}  heads {}  kv_heads {} ({}:1 GQA)  head_dim {}  vocab {}"
      "  context {}\n",
      c.n_layers, c.hidden, c.ffn, c.n_heads, c.n_kv_heads,
      c.n_kv_heads > 0 ? c.n_heads / c.n_kv_heads : 0, c.head_dim, c.vocab, c.context_length);
  fmt::print("rms_eps {:g}  rope_theta {:g}  rope {}  lm_head {}  qkv_bias {}  qk_norm {}\n",
             c.rms_eps, c.rope_theta, rope,
             c.tied_embeddings ? "tied to token embedding" : "separate", c.qkv_bias ? "yes" : "no",
             c.qk_norm ? "yes (per-head RMSNorm of q and k before RoPE)" : "no");
  if (show_metadata) {
    fmt::print("\nmetadata ({} entries)\n", m.metadata.size());
    for (const auto& [k, v] : m.metadata) fmt::print("  {:<44} {}\n", k, v);
  }
  size_t w = 4;
  for (const auto& t : m.tensors) w = std::max(w, t.name.size());
  fmt::print("\n  {:<{}}  {:<5}  {:<14}  {:>10}  {:>10}\n", "name", w, "type", "shape", "bytes",
             "offset");
  for (const auto& t : m.tensors) {
    fmt::print("  {:<{}}  {:<5}  {:<14}  {:>10}  {:>10}\n", t.name, w, t.type,
               fmt::format("[{}]", fmt::join(t.shape, ", ")), t.nbytes, t.offset);
  }
  fmt::print("\ntotals per type\n");
  for (const auto& [type, cb] : per_type) {
    fmt::print("  {:<5}  {:>4} tensors  {:>12} bytes  ({})\n", type, cb.first, cb.second,
               human_bytes(cb.second));
  }
  const auto& tk = m.tokenizer;
  if (tk.present) {
    fmt::print(
        "\ntokenizer  model {}  pre {}  {} tokens  {} merges  bos {}{}  eos {}{}  "
        "add_bos {}\n",
        tk.model, tk.pre.empty() ? "-" : tk.pre, tk.tokens.size(), tk.merges.size(), tk.bos,
        token_text(tk, tk.bos), tk.eos, token_text(tk, tk.eos), tk.add_bos ? "yes" : "no");
  } else {
    fmt::print("\ntokenizer  none in this file (give token ids directly)\n");
  }
  return 0;
}

std::function<int()> setup_inspect(CLI::App& sub) {
  auto path = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  auto meta = std::make_shared<bool>(false);
  sub.add_option("PATH", *path, "A .gguf file or an HF model directory")->required();
  sub.add_flag("--json", *json, "Machine-readable output");
  sub.add_flag("--metadata", *meta, "Also list every metadata key/value");
  return [path, json, meta]() { return run_inspect(*path, *json, *meta); };
}

PV_COMMAND("inspect", "Show a checkpoint's architecture, tensors, types and tokenizer",
           setup_inspect);

}  // namespace
