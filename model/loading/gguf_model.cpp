// GGUF -> LoadedModel: qwen2/llama metadata keys into ModelConfig, tokenizer.ggml.* into
// TokenizerData, and the blk.N.* tensor names into ModelWeights (REFERENCE.md names).
#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <map>

#include "model/formats/gguf.h"
#include "model/loading/arch.h"
#include "model/loading/config_keys.h"
#include "model/loading/loader.h"
#include "model/loading/loader_bind.h"
#include "model/rope.h"

namespace pv::model {
namespace {

class Meta {
 public:
  explicit Meta(const GgufFile& g) : g_(g) {}

  [[noreturn]] void fail(const GgufKV* kv, const std::string& key, const std::string& d) const {
    // A missing key is reported at the start of the metadata section (byte 24).
    throw FormatError(g_.path(), kv ? kv->offset : 24, key_subject(key), d);
  }

  const GgufKV* find(const std::string& key) const { return g_.find_kv(key); }

  std::string str(const std::string& key, bool required, std::string def = "") const {
    const GgufKV* kv = find(key);
    if (!kv) {
      if (required) fail(nullptr, key, "required metadata key is missing");
      return def;
    }
    if (kv->value.type != GgufType::STRING) {
      fail(kv, key, fmt::format("expected a string, found {}", gguf_type_name(kv->value.type)));
    }
    return kv->value.str;
  }

  // Any integer type holding a value in [lo, INT_MAX].
  int integer(const std::string& key, bool required, int def = 0, int64_t lo = 0) const {
    const GgufKV* kv = find(key);
    if (!kv) {
      if (required) fail(nullptr, key, "required metadata key is missing");
      return def;
    }
    const GgufValue& v = kv->value;
    if (!v.is_integer()) {
      fail(kv, key, fmt::format("expected an integer, found {}", gguf_type_name(v.type)));
    }
    bool is_signed = v.type == GgufType::I8 || v.type == GgufType::I16 || v.type == GgufType::I32 ||
                     v.type == GgufType::I64;
    if ((is_signed && (v.i < lo || v.i > INT_MAX)) ||
        (!is_signed && v.u > static_cast<uint64_t>(INT_MAX))) {
      fail(kv, key, fmt::format("value {} is out of range", v.summary()));
    }
    return is_signed ? static_cast<int>(v.i) : static_cast<int>(v.u);
  }

  float real(const std::string& key, bool required, float def) const {
    const GgufKV* kv = find(key);
    if (!kv) {
      if (required) fail(nullptr, key, "required metadata key is missing");
      return def;
    }
    if (kv->value.type != GgufType::F32 && kv->value.type != GgufType::F64) {
      fail(kv, key, fmt::format("expected f32, found {}", gguf_type_name(kv->value.type)));
    }
    return static_cast<float>(kv->value.f);
  }

  bool boolean(const std::string& key, bool def) const {
    const GgufKV* kv = find(key);
    if (!kv) return def;
    if (kv->value.type != GgufType::BOOL) {
      fail(kv, key, fmt::format("expected bool, found {}", gguf_type_name(kv->value.type)));
    }
    return kv->value.b;
  }

  const GgufValue* array(const std::string& key, GgufType elem) const {
    const GgufKV* kv = find(key);
    if (!kv) return nullptr;
    if (kv->value.type != GgufType::ARRAY || kv->value.elem_type != elem) {
      fail(kv, key, fmt::format("expected an array of {}", gguf_type_name(elem)));
    }
    return &kv->value;
  }

 private:
  const GgufFile& g_;
};

TokenizerData read_tokenizer(const GgufFile& g, const Meta& m) {
  TokenizerData t;
  const GgufValue* tokens = m.array("tokenizer.ggml.tokens", GgufType::STRING);
  t.model = m.str("tokenizer.ggml.model", false);
  if (!tokens) return t;
  t.present = true;
  t.pre = m.str("tokenizer.ggml.pre", false);
  t.tokens.reserve(tokens->items.size());
  for (const auto& s : tokens->items) t.tokens.push_back(s.str);
  if (const GgufValue* types = m.array("tokenizer.ggml.token_type", GgufType::I32)) {
    if (types->items.size() != t.tokens.size()) {
      m.fail(g.find_kv("tokenizer.ggml.token_type"), "tokenizer.ggml.token_type",
             fmt::format("{} token types for {} tokens", types->items.size(), t.tokens.size()));
    }
    for (const auto& v : types->items) t.token_types.push_back(static_cast<int32_t>(v.i));
  }
  if (const GgufValue* merges = m.array("tokenizer.ggml.merges", GgufType::STRING)) {
    for (const auto& s : merges->items) t.merges.push_back(s.str);
  }
  const int n = static_cast<int>(t.tokens.size());
  t.bos = m.integer("tokenizer.ggml.bos_token_id", false, -1);
  t.eos = m.integer("tokenizer.ggml.eos_token_id", false, -1);
  for (auto [key, id] : {std::pair{"tokenizer.ggml.bos_token_id", t.bos},
                         std::pair{"tokenizer.ggml.eos_token_id", t.eos}}) {
    if (id >= n) {
      m.fail(g.find_kv(key), key, fmt::format("token id {} is outside the {} tokens", id, n));
    }
  }
  t.add_bos = m.boolean("tokenizer.ggml.add_bos_token", false);
  return t;
}

// <arch>.rope.scaling.* and the rope_freqs.weight tensor (llama.cpp's llama3 form).
//
// YaRN as llama.cpp computes it for qwen2 / llama / qwen3 (llama-model.cpp load_hparams,
// llama-context.cpp, ggml rope_yarn): type "yarn", freq_scale = 1 / factor, the correction
// range from n_ctx_orig_yarn = rope.scaling.original_context_length with beta_fast 32 and
// beta_slow 1 (ggml_rope_yarn_corr_dims: floor / ceil, clamped to [0, n_dims - 1]), and
// ext_factor 1. The magnitude: llama-context sets yarn_attn_factor = get_mscale(factor)
// and cancels it by 1 / (1 + 0.1 ln factor) (so ~1), then multiplies by
// rope.scaling.attn_factor (hparams.rope_attn_factor, default 1); the ggml kernel
// multiplies by 1 + 0.1 ln(1 / freq_scale) again whenever ext_factor != 0. cos and sin are
// therefore scaled by attn_factor * (0.1 ln factor + 1): transformers' yarn attention
// factor when attn_factor is 1. The inv_freq blend is transformers' (the same linear ramp),
// so an HF config and the GGUF the converter writes from it give the same table.
//
// For these architectures llama.cpp reads neither yarn_ext_factor, yarn_attn_factor,
// yarn_beta_fast, yarn_beta_slow nor yarn_log_multiplier (only some others, e.g. grok and
// deepseek2, do), while convert_hf_to_gguf.py writes them from the HF config and
// transformers uses beta_fast / beta_slow / attention_factor. A value other than the one
// llama.cpp runs with is therefore refused: the two programs disagree on the model.
void read_yarn(const Meta& m, const std::string& a, const GgufKV* factor_kv, double af,
               ModelConfig* c) {
  RopeScaling& s = c->rope_scaling;
  s.kind = RopeScalingKind::Yarn;
  if (!factor_kv) m.fail(nullptr, a + "rope.scaling.factor", "yarn scaling needs a factor");
  const float f = m.real(factor_kv->key, true, 0.0f);
  if (!(f >= 1.0f) || !std::isfinite(f)) {
    m.fail(factor_kv, factor_kv->key, fmt::format("factor {} must be >= 1", f));
  }
  s.factor = f;
  // llama.cpp falls back to context_length; the converter always writes the key, and an HF
  // config without original_max_position_embeddings means different things to different
  // transformers releases, so a file without it is not guessed at.
  const std::string orig_key = a + "rope.scaling.original_context_length";
  s.original_context = m.integer(orig_key, true, 0, 1);
  if (s.original_context < 1) {
    m.fail(m.find(orig_key), orig_key, fmt::format("{} must be >= 1", s.original_context));
  }
  s.beta_fast = 32.0;
  s.beta_slow = 1.0;
  s.truncate = true;
  // ggml's ramp divides by max(0.001, high - low), transformers' by high - low (+0.001 when
  // equal): they differ only when the clamped range is inverted (a tiny or astronomically
  // large original context), which is refused.
  const auto [low, high] = yarn_correction_range(c->head_dim, c->rope_theta, s);
  if (low > high) {
    m.fail(m.find(orig_key), orig_key,
           fmt::format("yarn's correction range [{}, {}] is inverted for head_dim {} and rope "
                       "base {}: llama.cpp and transformers ramp differently there",
                       low, high, c->head_dim, c->rope_theta));
  }
  const double mscale = f > 1.0f ? 0.1 * std::log(static_cast<double>(f)) + 1.0 : 1.0;
  s.attention_factor = af * mscale;
  struct Fixed {
    const char* key;
    double value;
    const char* why;
  };
  for (const Fixed& k :
       {Fixed{"rope.scaling.yarn_ext_factor", 1.0, "llama.cpp runs yarn with ext_factor 1"},
        Fixed{"rope.scaling.yarn_beta_fast", 32.0,
              "llama.cpp uses beta_fast 32 for this architecture, transformers this value"},
        Fixed{"rope.scaling.yarn_beta_slow", 1.0,
              "llama.cpp uses beta_slow 1 for this architecture, transformers this value"},
        Fixed{"rope.scaling.yarn_log_multiplier", 0.0,
              "llama.cpp ignores it for this architecture; transformers' mscale_all_dim form "
              "would change the attention factor"}}) {
    const GgufKV* kv = m.find(a + k.key);
    if (!kv) continue;
    const float v = m.real(kv->key, true, 0.0f);
    if (static_cast<double>(v) != k.value) {
      m.fail(kv, kv->key, fmt::format("{} is not supported ({} only): {}", v, k.value, k.why));
    }
  }
  if (const GgufKV* kv = m.find(a + "rope.scaling.yarn_attn_factor")) {
    // transformers' attention_factor: llama.cpp overwrites it with 0.1 ln(factor) + 1 for
    // this architecture, so only that value (to f32 precision) means the same model.
    const double v = m.real(kv->key, true, 0.0f);
    if (!(std::fabs(v - mscale) <= 1e-6 * mscale)) {
      m.fail(kv, kv->key,
             fmt::format("{} is not supported: llama.cpp scales cos/sin by 0.1 ln(factor) + 1 "
                         "= {} for this architecture, transformers by this value",
                         v, mscale));
    }
  }
}

void read_rope_scaling(const GgufFile& g, const Meta& m, const std::string& a, ModelConfig* c) {
  RopeScaling& s = c->rope_scaling;
  const GgufKV* type_kv = m.find(a + "rope.scaling.type");
  const GgufKV* factor_kv = m.find(a + "rope.scaling.factor");
  if (!factor_kv) factor_kv = m.find(a + "rope.scale_linear");
  // llama.cpp: a factor without a type is linear scaling.
  const std::string type = type_kv ? m.str(type_kv->key, true) : (factor_kv ? "linear" : "none");
  const GgufKV* af_kv = m.find(a + "rope.scaling.attn_factor");
  const double af = af_kv ? m.real(af_kv->key, true, 0.0f) : 1.0;
  if (af_kv && (!(af > 0.0) || !std::isfinite(af))) {
    m.fail(af_kv, af_kv->key, fmt::format("attention factor {} must be a positive number", af));
  }
  if (type != "yarn") {
    for (const char* k : {"rope.scaling.yarn_ext_factor", "rope.scaling.yarn_attn_factor",
                          "rope.scaling.yarn_beta_fast", "rope.scaling.yarn_beta_slow",
                          "rope.scaling.yarn_log_multiplier"}) {
      if (const GgufKV* kv = m.find(a + k)) {
        m.fail(kv, kv->key, fmt::format("has no meaning for rope.scaling.type '{}'", type));
      }
    }
    if (af_kv && af != 1.0) {
      m.fail(af_kv, af_kv->key,
             fmt::format("an attention factor other than 1 is supported only with yarn (type '{}')",
                         type));
    }
  }
  if (type == "linear") {
    if (!factor_kv) m.fail(nullptr, a + "rope.scaling.factor", "linear scaling needs a factor");
    const float f = m.real(factor_kv->key, true, 0.0f);
    if (!(f >= 1.0f) || !std::isfinite(f)) {
      m.fail(factor_kv, factor_kv->key, fmt::format("factor {} must be >= 1", f));
    }
    // llama.cpp stores 0 (or 1) for "no scaling"; 1 divides by one.
    s.kind = f == 1.0f ? RopeScalingKind::None : RopeScalingKind::Linear;
    s.factor = f;
  } else if (type == "yarn") {
    read_yarn(m, a, factor_kv, af, c);
  } else if (type != "none") {
    m.fail(type_kv, type_kv->key,
           fmt::format("RoPE scaling '{}' is not supported in GGUF (none, linear, yarn)", type));
  } else if (factor_kv) {
    const float f = m.real(factor_kv->key, true, 0.0f);
    if (f != 0.0f && f != 1.0f) {
      m.fail(factor_kv, factor_kv->key, fmt::format("factor {} with rope.scaling.type 'none'", f));
    }
  }
  if (const GgufTensorInfo* rf = g.find_tensor("rope_freqs.weight")) {
    const uint64_t half = static_cast<uint64_t>(c->head_dim / 2);
    if (rf->type != kernels::GgmlType::F32 || rf->dims.size() != 1 || rf->dims[0] != half ||
        rf->nbytes != half * sizeof(float)) {
      throw FormatError(g.path(), rf->info_offset, tensor_subject(rf->name),
                        fmt::format("expected F32 [{}] (head_dim / 2 frequency factors)", half));
    }
    s.freq_factors.resize(half);
    std::memcpy(s.freq_factors.data(), rf->data, half * sizeof(float));
    for (uint64_t i = 0; i < half; ++i) {
      if (!(s.freq_factors[i] > 0.0f) || !std::isfinite(s.freq_factors[i])) {
        throw FormatError(
            g.path(), rf->info_offset, tensor_subject(rf->name),
            fmt::format("factor {} = {} is not a positive finite number", i, s.freq_factors[i]));
      }
    }
  }
}

}  // namespace

LoadedModel load_gguf_model(std::shared_ptr<const MappedFile> file) {
  GgufFile g = read_gguf(file);
  Meta m(g);
  LoadedModel out;
  out.source_path = file->path();
  out.format = "gguf";
  out.mappings.push_back(file);

  ModelConfig& c = out.config;
  c.architecture = m.str("general.architecture", true);
  if (!find_architecture(c.architecture)) {
    m.fail(g.find_kv("general.architecture"), "general.architecture",
           fmt::format("architecture '{}' is not supported ({})", c.architecture,
                       architecture_list()));
  }
  // Every key must be in the table (config_keys.h): an unread key might change the math.
  for (const GgufKV& kv : g.kvs) {
    const ConfigKey* k = find_config_key(gguf_metadata_keys(), kv.key, c.architecture);
    if (!k) {
      m.fail(&kv, kv.key,
             "unknown metadata key: pv does not know what it does to the model, so it refuses "
             "to guess (README.md, Supported config dialects)");
    }
    if (k->rule == KeyRule::kRefused)
      m.fail(&kv, kv.key, fmt::format("not supported: {}", k->note));
  }
  const std::string a = c.architecture + ".";
  c.n_layers = m.integer(a + "block_count", true);
  c.hidden = m.integer(a + "embedding_length", true);
  c.ffn = m.integer(a + "feed_forward_length", true);
  c.context_length = m.integer(a + "context_length", true);
  c.n_heads = m.integer(a + "attention.head_count", true);
  c.n_kv_heads = m.integer(a + "attention.head_count_kv", false, c.n_heads);
  c.rms_eps = m.real(a + "attention.layer_norm_rms_epsilon", true, 0.0f);
  if (!(c.rms_eps > 0.0f && c.rms_eps < 1.0f)) {
    m.fail(m.find(a + "attention.layer_norm_rms_epsilon"), a + "attention.layer_norm_rms_epsilon",
           fmt::format("{} is outside (0, 1)", c.rms_eps));
  }
  // Absent: 10000, llama.cpp's value for a file without the key.
  c.rope_theta = m.real(a + "rope.freq_base", false, 10000.0f);
  if (!(c.rope_theta > 1.0f) || !std::isfinite(c.rope_theta)) {
    m.fail(m.find(a + "rope.freq_base"), a + "rope.freq_base",
           fmt::format("rope base {} must be a finite number > 1", c.rope_theta));
  }
  if (c.n_heads > 0 && c.hidden % c.n_heads != 0 && !m.find(a + "attention.key_length")) {
    m.fail(m.find(a + "attention.head_count"), a + "attention.head_count",
           fmt::format("hidden {} is not a multiple of head_count {}", c.hidden, c.n_heads));
  }
  c.head_dim =
      m.integer(a + "attention.key_length", false, c.n_heads > 0 ? c.hidden / c.n_heads : 0);
  if (const GgufKV* vl = m.find(a + "attention.value_length")) {
    if (m.integer(vl->key, true) != c.head_dim) {
      m.fail(vl, vl->key, "value_length differs from key_length (not supported)");
    }
  }
  if (const GgufKV* rd = m.find(a + "rope.dimension_count")) {
    if (m.integer(rd->key, true) != c.head_dim) {
      m.fail(rd, rd->key,
             fmt::format("partial RoPE ({} of head_dim {}) is not supported",
                         m.integer(rd->key, true), c.head_dim));
    }
  }
  read_rope_scaling(g, m, a, &c);
  if (const GgufKV* sw = m.find(a + "attention.sliding_window")) {
    const int w = m.integer(sw->key, true);
    if (w < c.context_length) {
      m.fail(sw, sw->key,
             fmt::format("a {}-token sliding window changes attention within context_length {}; "
                         "sliding-window attention is not supported",
                         w, c.context_length));
    }
  }
  // The llama.cpp converter permutes llama's Q/K rows to the interleaved pairing.
  c.rope_style =
      c.architecture == "llama" ? kernels::RopeStyle::Interleaved : kernels::RopeStyle::HalfSplit;

  const GgufTensorInfo* embd = g.find_tensor("token_embd.weight");
  if (!embd) {
    throw FormatError(g.path(), g.tensor_infos_offset, tensor_subject("token_embd.weight"),
                      "required tensor is missing");
  }
  if (embd->dims.size() != 2 || embd->dims[1] > static_cast<uint64_t>(INT_MAX)) {
    throw FormatError(g.path(), embd->info_offset, tensor_subject(embd->name),
                      "embedding must be 2-D [hidden, vocab] in GGUF order");
  }
  c.vocab = static_cast<int>(embd->dims[1]);
  if (const GgufKV* vs = m.find(a + "vocab_size")) {
    if (m.integer(vs->key, true) != c.vocab) {
      m.fail(vs, vs->key,
             fmt::format("{} differs from the {} rows of token_embd.weight",
                         m.integer(vs->key, true), c.vocab));
    }
  }
  c.tied_embeddings = g.find_tensor("output.weight") == nullptr;
  // qwen2 always has Q/K/V biases; llama has them only when the file carries them.
  c.qkv_bias = c.architecture == "qwen2" || g.find_tensor("blk.0.attn_q.bias") != nullptr;
  c.qk_norm = c.architecture == "qwen3";
  check_config(c, g.path(), 24);
  check_forward_support(c, g.path(), g.find_kv("general.architecture")->offset);

  out.tokenizer = read_tokenizer(g, m);
  c.bos_token = out.tokenizer.bos;
  c.eos_token = out.tokenizer.eos;
  if (c.eos_token >= 0) c.eos_tokens = {c.eos_token};
  // llama.cpp ends generation at every end-of-generation id the file names, not only eos:
  // Llama 3 instruct files name <|eot_id|> and <|eom_id|> here (eos is <|end_of_text|>).
  for (const char* key : {"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"}) {
    const int id = m.integer(key, false, -1);
    if (id < 0) continue;
    if (id >= c.vocab) {
      m.fail(g.find_kv(key), key, fmt::format("token id {} is outside vocab {}", id, c.vocab));
    }
    if (std::find(c.eos_tokens.begin(), c.eos_tokens.end(), id) == c.eos_tokens.end()) {
      c.eos_tokens.push_back(id);
    }
  }
  check_config(c, g.path(), 24);  // the token ids against the vocabulary

  // Tensors in pv orientation: GGUF dims {in, out} -> shape [out, in], rows = out.
  std::map<std::string, SourceTensor> by_name;
  for (const auto& ti : g.tensors) {
    SourceTensor s;
    s.shape.assign(ti.dims.rbegin(), ti.dims.rend());
    s.file = g.path();
    s.record_offset = ti.info_offset;
    s.view.name = ti.name;
    s.view.type = ti.type;
    s.view.cols = static_cast<int64_t>(ti.dims[0]);
    s.view.rows = static_cast<int64_t>(ti.numel() / ti.dims[0]);
    s.view.data = ti.data;
    s.view.nbytes = ti.nbytes;
    out.tensors.push_back({ti.name, std::string(kernels::type_name(ti.type)), s.shape, ti.nbytes,
                           ti.file_offset(g.data_start), g.path()});
    by_name.emplace(ti.name, std::move(s));
  }
  TensorSource src;
  src.find = [&](const std::string& n) -> const SourceTensor* {
    auto it = by_name.find(n);
    return it == by_name.end() ? nullptr : &it->second;
  };
  src.name_of = gguf_tensor_name;
  src.missing_file = g.path();
  src.missing_offset = g.tensor_infos_offset;
  out.weights = bind_weights(c, src);

  for (const auto& kv : g.kvs) out.metadata.emplace_back(kv.key, kv.value.summary());
  return out;
}

}  // namespace pv::model
