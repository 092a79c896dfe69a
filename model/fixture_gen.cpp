#include "model/fixture_gen.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "kernels/cpu/quant.h"
#include "model/gguf_writer.h"
#include "model/safetensors.h"

namespace pv::model {
namespace {

namespace fs = std::filesystem;
using kernels::GgmlType;

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// Uniform in [-scale, scale): 24 random bits give k/2^23 - 1 exactly in float, then
// one IEEE multiply — the same bits on every conforming platform.
std::vector<float> uniform(const std::string& tensor, uint64_t seed, size_t n, float scale,
                           float offset = 0.0f) {
  uint64_t state = seed ^ fnv1a(tensor);
  std::vector<float> v(n);
  for (auto& x : v) {
    uint32_t k = static_cast<uint32_t>(splitmix64(state) >> 40);                   // 24 bits
    float u = static_cast<float>(static_cast<int32_t>(k) - (1 << 23)) * 0x1p-23f;  // [-1, 1)
    x = offset + scale * u;
  }
  return v;
}

struct Tensor {
  std::string hf_name, gguf_name;
  std::vector<uint64_t> shape;  // HF order [out, in]
  std::vector<float> values;
  bool rope_permute = false;  // llama Q/K in GGUF
  int heads = 0;              // for the permutation
};

std::vector<Tensor> make_tensors(const FixtureSpec& s) {
  const int hd = s.hidden / s.n_heads;
  const uint64_t h = s.hidden, f = s.ffn, v = s.vocab;
  const uint64_t q = static_cast<uint64_t>(s.n_heads) * hd;
  const uint64_t kv = static_cast<uint64_t>(s.n_kv_heads) * hd;
  std::vector<Tensor> out;
  auto linear = [&](std::string hf, std::string gg, uint64_t rows, uint64_t cols) {
    // Unit-variance outputs for unit-variance inputs: uniform with std 1/sqrt(cols).
    float scale = std::sqrt(3.0f / static_cast<float>(cols));
    out.push_back({hf, gg, {rows, cols}, uniform(hf, s.seed, rows * cols, scale)});
  };
  auto vec = [&](std::string hf, std::string gg, uint64_t n, float scale, float offset) {
    out.push_back({hf, gg, {n}, uniform(hf, s.seed, n, scale, offset)});
  };
  out.push_back({"model.embed_tokens.weight",
                 "token_embd.weight",
                 {v, h},
                 uniform("model.embed_tokens.weight", s.seed, v * h, 1.0f)});
  for (int l = 0; l < s.n_layers; ++l) {
    const std::string p = fmt::format("model.layers.{}.", l);
    const std::string b = fmt::format("blk.{}.", l);
    // Norm weights away from 1 so a missing or misapplied norm weight shows.
    vec(p + "input_layernorm.weight", b + "attn_norm.weight", h, 0.4f, 1.0f);
    linear(p + "self_attn.q_proj.weight", b + "attn_q.weight", q, h);
    linear(p + "self_attn.k_proj.weight", b + "attn_k.weight", kv, h);
    linear(p + "self_attn.v_proj.weight", b + "attn_v.weight", kv, h);
    if (s.qkv_bias) {
      // Sizeable biases: a dropped bias or one added after RoPE changes the logits.
      vec(p + "self_attn.q_proj.bias", b + "attn_q.bias", q, 0.5f, 0.0f);
      vec(p + "self_attn.k_proj.bias", b + "attn_k.bias", kv, 0.5f, 0.0f);
      vec(p + "self_attn.v_proj.bias", b + "attn_v.bias", kv, 0.2f, 0.0f);
    }
    linear(p + "self_attn.o_proj.weight", b + "attn_output.weight", h, q);
    vec(p + "post_attention_layernorm.weight", b + "ffn_norm.weight", h, 0.4f, 1.0f);
    linear(p + "mlp.gate_proj.weight", b + "ffn_gate.weight", f, h);
    linear(p + "mlp.up_proj.weight", b + "ffn_up.weight", f, h);
    linear(p + "mlp.down_proj.weight", b + "ffn_down.weight", h, f);
  }
  vec("model.norm.weight", "output_norm.weight", h, 0.4f, 1.0f);
  if (!s.tied) linear("lm_head.weight", "output.weight", v, h);
  if (s.architecture == "llama") {
    for (auto& t : out) {
      bool is_q = t.gguf_name.find("attn_q.") != std::string::npos;
      bool is_k = t.gguf_name.find("attn_k.") != std::string::npos;
      if (is_q || is_k) {
        t.rope_permute = true;
        t.heads = is_q ? s.n_heads : s.n_kv_heads;
      }
    }
  }
  return out;
}

std::vector<uint8_t> as_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(float));
  if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

GgmlType pick_type(GgmlType want, uint64_t cols) {
  for (GgmlType t : {want, GgmlType::Q8_0, GgmlType::F32}) {
    if (cols % static_cast<uint64_t>(kernels::traits(t).block_values) == 0) return t;
  }
  return GgmlType::F32;
}

std::vector<uint8_t> encode(GgmlType type, const std::vector<float>& v, uint64_t rows,
                            uint64_t cols) {
  const size_t rb = kernels::row_bytes(type, static_cast<int64_t>(cols));
  std::vector<uint8_t> out(rb * rows);
  for (uint64_t r = 0; r < rows; ++r) {
    kernels::cpu::quantize_row(type, v.data() + r * cols, out.data() + r * rb,
                               static_cast<int64_t>(cols));
  }
  return out;
}

// general.file_type values as llama.cpp numbers them (informational).
uint32_t file_type_of(GgmlType t) {
  switch (t) {
    case GgmlType::F32:
      return 0;
    case GgmlType::F16:
      return 1;
    case GgmlType::Q4_0:
      return 2;
    case GgmlType::Q8_0:
      return 7;
    case GgmlType::Q4_K:
      return 14;  // MOSTLY_Q4_K_S (all 2-D weights Q4_K)
    case GgmlType::Q6_K:
      return 18;
    case GgmlType::BF16:
      return 32;
  }
  return 0;
}

std::string config_json(const FixtureSpec& s, const TokenizerData* tok) {
  nlohmann::ordered_json c;
  const bool qwen = s.architecture == "qwen2";
  c["architectures"] = {qwen ? "Qwen2ForCausalLM" : "LlamaForCausalLM"};
  c["model_type"] = s.architecture;
  c["hidden_size"] = s.hidden;
  c["intermediate_size"] = s.ffn;
  c["num_hidden_layers"] = s.n_layers;
  c["num_attention_heads"] = s.n_heads;
  c["num_key_value_heads"] = s.n_kv_heads;
  c["head_dim"] = s.hidden / s.n_heads;
  c["vocab_size"] = s.vocab;
  c["max_position_embeddings"] = s.context_length;
  c["rms_norm_eps"] = s.rms_eps;
  c["rope_theta"] = s.rope_theta;
  c["rope_scaling"] = nullptr;
  c["tie_word_embeddings"] = s.tied;
  c["hidden_act"] = "silu";
  if (!qwen) {
    c["attention_bias"] = s.qkv_bias;
    c["mlp_bias"] = false;
  } else {
    c["use_sliding_window"] = false;
    c["sliding_window"] = s.context_length;
    c["max_window_layers"] = s.n_layers;
  }
  c["attention_dropout"] = 0.0;
  c["initializer_range"] = 0.02;
  c["torch_dtype"] = "float32";
  c["use_cache"] = true;
  if (s.with_tokenizer) {
    c["bos_token_id"] = tok->bos;
    c["eos_token_id"] = tok->eos;
  }
  return c.dump(2) + "\n";
}

void write_text(const std::string& path, const std::string& text) {
  write_file_atomic(path, std::vector<uint8_t>(text.begin(), text.end()));
}

}  // namespace

std::string type_tag(GgmlType type) {
  std::string s(kernels::type_name(type));
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::vector<float> permute_rope_rows(const std::vector<float>& w, int n_heads, int head_dim,
                                     int64_t cols) {
  std::vector<float> out(w.size());
  const int half = head_dim / 2;
  for (int h = 0; h < n_heads; ++h) {
    for (int j = 0; j < 2; ++j) {
      for (int i = 0; i < half; ++i) {
        const int64_t src = static_cast<int64_t>(h) * head_dim + j * half + i;
        const int64_t dst = static_cast<int64_t>(h) * head_dim + 2 * i + j;
        std::memcpy(out.data() + dst * cols, w.data() + src * cols,
                    static_cast<size_t>(cols) * sizeof(float));
      }
    }
  }
  return out;
}

std::vector<FixtureSpec> default_fixtures() {
  std::vector<FixtureSpec> v;
  {
    // Qwen2.5-0.5B's 14:2 heads (7:1), tied, with the byte-level BPE tokenizer.
    FixtureSpec s;
    s.name = "qwen2-gqa7-tied";
    s.hidden = 224;  // 14 heads x 16
    s.n_heads = 14;
    s.n_kv_heads = 2;
    s.ffn = 320;
    s.vocab = 1447;  // = the tokenizer fixture's token count
    s.tied = true;
    s.rope_theta = 1000000.0f;
    s.seed = 0x7A11ull;
    s.with_tokenizer = true;
    s.gguf_types = {GgmlType::F32, GgmlType::Q8_0};
    v.push_back(s);
  }
  {
    // 4:1, untied; every row a multiple of 256 so all block types apply.
    FixtureSpec s;
    s.name = "qwen2-gqa4";
    s.hidden = 256;  // 8 heads x 32
    s.n_heads = 8;
    s.n_kv_heads = 2;
    s.ffn = 256;
    s.vocab = 512;
    s.tied = false;
    s.rope_theta = 1000000.0f;
    s.seed = 0x4A11ull;
    s.gguf_types = {GgmlType::F32, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q6_K};
    v.push_back(s);
  }
  {
    // TinyLlama's 8:1 heads, llama naming, no bias, untied; GGUF Q/K rows permuted.
    FixtureSpec s;
    s.name = "llama-gqa8";
    s.architecture = "llama";
    s.hidden = 128;  // 8 heads x 16
    s.n_heads = 8;
    s.n_kv_heads = 1;
    s.ffn = 384;
    s.vocab = 512;
    s.tied = false;
    s.qkv_bias = false;
    s.rms_eps = 1e-5f;
    s.rope_theta = 10000.0f;
    s.seed = 0x11A3Aull;
    s.gguf_types = {GgmlType::F32, GgmlType::Q8_0};
    v.push_back(s);
  }
  return v;
}

TokenizerData read_tokenizer_vocab(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw FormatError(path, FormatError::kNoOffset, "", "cannot open");
  std::ostringstream ss;
  ss << f.rdbuf();
  const std::string text = ss.str();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    uint64_t at = e.byte > 0 ? e.byte - 1 : 0;
    throw FormatError(path, at, "", "invalid JSON at " + text_position(path, text, at));
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(path, quoted_position(text, e.what()), "", e.what());
  }
  TokenizerData t;
  try {
    t.present = true;
    t.model = j.at("model").get<std::string>();
    t.pre = j.at("pre").get<std::string>();
    t.tokens = j.at("tokens").get<std::vector<std::string>>();
    t.token_types = j.at("token_types").get<std::vector<int32_t>>();
    t.merges = j.at("merges").get<std::vector<std::string>>();
    t.bos = j.at("bos_id").get<int>();
    t.eos = j.at("eos_id").get<int>();
    t.add_bos = j.at("add_bos").get<bool>();
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(path, FormatError::kNoOffset, "", std::string("bad vocab file: ") + e.what());
  }
  return t;
}

namespace {

void check_spec(const FixtureSpec& s, const TokenizerData* tok) {
  if (s.n_heads <= 0 || s.hidden % s.n_heads != 0 || s.n_kv_heads <= 0 ||
      s.n_heads % s.n_kv_heads != 0) {
    throw std::invalid_argument("fixture " + s.name + ": inconsistent head counts");
  }
  if (s.with_tokenizer && (tok == nullptr || static_cast<int>(tok->tokens.size()) > s.vocab)) {
    throw std::invalid_argument("fixture " + s.name +
                                ": needs a tokenizer of at most vocab tokens");
  }
}

}  // namespace

std::string fixture_config_json(const FixtureSpec& s, const TokenizerData* tok) {
  check_spec(s, tok);
  return config_json(s, tok);
}

SafetensorsWriter fixture_safetensors(const FixtureSpec& s) {
  SafetensorsWriter st;
  st.add_metadata("format", "pt");
  for (const auto& t : make_tensors(s))
    st.add_tensor(t.hf_name, "F32", t.shape, as_bytes(t.values));
  return st;
}

GgufWriter fixture_gguf(const FixtureSpec& s, GgmlType type, const TokenizerData* tok) {
  check_spec(s, tok);
  const int hd = s.hidden / s.n_heads;
  GgufWriter w(32, /*force_alignment_key=*/true);
  const std::string a = s.architecture + ".";
  w.add("general.architecture", GgufValue::make_string(s.architecture));
  w.add("general.name", GgufValue::make_string(s.name));
  w.add("general.file_type", GgufValue::make_u32(file_type_of(type)));
  w.add(a + "context_length", GgufValue::make_u32(static_cast<uint32_t>(s.context_length)));
  w.add(a + "embedding_length", GgufValue::make_u32(static_cast<uint32_t>(s.hidden)));
  w.add(a + "feed_forward_length", GgufValue::make_u32(static_cast<uint32_t>(s.ffn)));
  w.add(a + "block_count", GgufValue::make_u32(static_cast<uint32_t>(s.n_layers)));
  w.add(a + "attention.head_count", GgufValue::make_u32(static_cast<uint32_t>(s.n_heads)));
  w.add(a + "attention.head_count_kv", GgufValue::make_u32(static_cast<uint32_t>(s.n_kv_heads)));
  w.add(a + "attention.layer_norm_rms_epsilon", GgufValue::make_f32(s.rms_eps));
  w.add(a + "rope.freq_base", GgufValue::make_f32(s.rope_theta));
  w.add(a + "rope.dimension_count", GgufValue::make_u32(static_cast<uint32_t>(hd)));
  if (s.with_tokenizer) {
    w.add("tokenizer.ggml.model", GgufValue::make_string(tok->model));
    w.add("tokenizer.ggml.pre", GgufValue::make_string(tok->pre));
    w.add("tokenizer.ggml.tokens", GgufValue::make_string_array(tok->tokens));
    w.add("tokenizer.ggml.token_type", GgufValue::make_i32_array(tok->token_types));
    w.add("tokenizer.ggml.merges", GgufValue::make_string_array(tok->merges));
    w.add("tokenizer.ggml.bos_token_id", GgufValue::make_u32(static_cast<uint32_t>(tok->bos)));
    w.add("tokenizer.ggml.eos_token_id", GgufValue::make_u32(static_cast<uint32_t>(tok->eos)));
    w.add("tokenizer.ggml.add_bos_token", GgufValue::make_bool(tok->add_bos));
  }
  for (const auto& t : make_tensors(s)) {
    std::vector<uint64_t> dims(t.shape.rbegin(), t.shape.rend());  // GGUF: fastest first
    const uint64_t cols = t.shape.back();
    const uint64_t rows = t.shape.size() == 1 ? 1 : t.shape[0];
    std::vector<float> v = t.values;
    if (t.rope_permute)
      v = permute_rope_rows(v, t.heads, hd, static_cast<int64_t>(rows == 1 ? 1 : cols));
    if (t.shape.size() == 1) {
      w.add_tensor(t.gguf_name, dims, GgmlType::F32, as_bytes(v));
    } else {
      const GgmlType tt = pick_type(type, cols);
      w.add_tensor(t.gguf_name, dims, tt, encode(tt, v, rows, cols));
    }
  }
  return w;
}

std::vector<std::string> generate_fixture(const FixtureSpec& s, const std::string& out_dir,
                                          const TokenizerData* tok) {
  check_spec(s, tok);
  std::vector<std::string> written;
  const fs::path root = fs::path(out_dir) / s.name;
  fs::create_directories(root);
  if (s.write_hf) {
    fs::create_directories(root / "hf");
    write_text((root / "hf" / "config.json").string(), config_json(s, tok));
    fixture_safetensors(s).write((root / "hf" / "model.safetensors").string());
    written.push_back(s.name + "/hf/config.json");
    written.push_back(s.name + "/hf/model.safetensors");
  }
  for (GgmlType type : s.gguf_types) {
    const std::string file = s.name + "-" + type_tag(type) + ".gguf";
    fixture_gguf(s, type, tok).write((root / file).string());
    written.push_back(s.name + "/" + file);
  }
  return written;
}

}  // namespace pv::model
