// pv gen-model: writes the deterministic fixture checkpoints (model/fixtures/fixture_gen.h), or a
// custom-shaped random-weight model (e.g. Qwen2.5-0.5B-shaped, for decode benchmarks).
#include <fmt/format.h>

#include <filesystem>
#include <iostream>
#include <map>

#include "model/fixtures/fixture_gen.h"
#include "tools/command.h"

namespace {

using pv::kernels::GgmlType;

GgmlType parse_type(const std::string& s) {
  static const std::map<std::string, GgmlType> m = {
      {"f32", GgmlType::F32},   {"f16", GgmlType::F16},   {"bf16", GgmlType::BF16},
      {"q8_0", GgmlType::Q8_0}, {"q4_0", GgmlType::Q4_0}, {"q4_k", GgmlType::Q4_K},
      {"q6_k", GgmlType::Q6_K}};
  auto it = m.find(s);
  if (it == m.end()) throw CLI::ValidationError("--types", "unknown type '" + s + "'");
  return it->second;
}

std::function<int()> setup_gen_model(CLI::App& sub) {
  struct Opts {
    std::string out, only, tokenizer, custom;
    pv::model::FixtureSpec spec;
    std::vector<std::string> types;
    bool no_hf = false;
  };
  auto o = std::make_shared<Opts>();
  o->tokenizer = std::string(PV_SOURCE_DIR) + "/model/fixtures/tokenizer/vocab.json";
  sub.add_option("--out", o->out, "Output directory")->required();
  sub.add_option("--only", o->only, "Generate only the named default fixture");
  sub.add_option("--tokenizer", o->tokenizer, "Tokenizer vocab.json to embed");
  sub.add_option("--custom", o->custom,
                 "Generate one custom model with this name from the shape options");
  sub.add_option("--arch", o->spec.architecture, "qwen2, qwen3 or llama (custom)");
  sub.add_option("--layers", o->spec.n_layers, "Layers (custom)");
  sub.add_option("--hidden", o->spec.hidden, "Hidden size (custom)");
  sub.add_option("--ffn", o->spec.ffn, "FFN size (custom)");
  sub.add_option("--heads", o->spec.n_heads, "Attention heads (custom)");
  sub.add_option("--kv-heads", o->spec.n_kv_heads, "KV heads (custom)");
  sub.add_option("--head-dim", o->spec.head_dim,
                 "Head dimension, may differ from hidden / heads (custom; default hidden / heads)");
  sub.add_option("--vocab", o->spec.vocab, "Vocabulary size (custom)");
  sub.add_flag("--tied", o->spec.tied, "Tie lm_head to the embedding (custom)");
  sub.add_option("--seed", o->spec.seed, "Weight seed (custom)");
  sub.add_option("--types", o->types, "GGUF types: f32 q8_0 q4_k q6_k ... (custom)");
  sub.add_flag("--no-hf", o->no_hf, "Skip the HF directory (custom)");
  return [o]() {
    std::vector<pv::model::FixtureSpec> specs;
    if (!o->custom.empty()) {
      pv::model::FixtureSpec s = o->spec;
      s.name = o->custom;
      s.qkv_bias = s.architecture == "qwen2";
      s.write_hf = !o->no_hf;
      s.gguf_types.clear();
      for (const auto& t : o->types) s.gguf_types.push_back(parse_type(t));
      if (o->types.empty()) s.gguf_types = {GgmlType::F32};
      specs.push_back(s);
    } else {
      for (const auto& s : pv::model::default_fixtures()) {
        if (o->only.empty() || s.name == o->only) specs.push_back(s);
      }
      if (specs.empty()) {
        std::cerr << "pv gen-model: no default fixture named '" << o->only << "'\n";
        return 2;
      }
    }
    pv::model::TokenizerData tok;
    bool need_tok = false;
    for (const auto& s : specs) need_tok |= s.with_tokenizer;
    if (need_tok) tok = pv::model::read_tokenizer_vocab(o->tokenizer);
    for (const auto& s : specs) {
      for (const auto& f : pv::model::generate_fixture(s, o->out, &tok)) {
        auto bytes = std::filesystem::file_size(std::filesystem::path(o->out) / f);
        fmt::print("{:>10}  {}\n", bytes, f);
      }
    }
    return 0;
  };
}

PV_COMMAND("gen-model", "Write the deterministic fixture checkpoints (or a custom shape)",
           setup_gen_model);

}  // namespace
