#include "model/loading/loader_bind.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <iterator>
#include <stdexcept>
#include <string_view>

#include "model/formats/finite_scan.h"
#include "model/formats/mapped_file.h"
#include "model/loading/arch.h"
#include "model/rope.h"

namespace pv::model {
namespace {

// Both formats' names of every role, in TensorRole order; per-layer names get the
// format's layer prefix.
struct RoleNames {
  TensorRole role;
  bool per_layer;
  std::string_view gguf, hf;
};
constexpr RoleNames kRoleNames[] = {
    {TensorRole::kEmbedding, false, "token_embd.weight", "model.embed_tokens.weight"},
    {TensorRole::kOutputNorm, false, "output_norm.weight", "model.norm.weight"},
    {TensorRole::kOutput, false, "output.weight", "lm_head.weight"},
    {TensorRole::kAttnNorm, true, "attn_norm.weight", "input_layernorm.weight"},
    {TensorRole::kWq, true, "attn_q.weight", "self_attn.q_proj.weight"},
    {TensorRole::kBq, true, "attn_q.bias", "self_attn.q_proj.bias"},
    {TensorRole::kWk, true, "attn_k.weight", "self_attn.k_proj.weight"},
    {TensorRole::kBk, true, "attn_k.bias", "self_attn.k_proj.bias"},
    {TensorRole::kWv, true, "attn_v.weight", "self_attn.v_proj.weight"},
    {TensorRole::kBv, true, "attn_v.bias", "self_attn.v_proj.bias"},
    {TensorRole::kWo, true, "attn_output.weight", "self_attn.o_proj.weight"},
    {TensorRole::kFfnNorm, true, "ffn_norm.weight", "post_attention_layernorm.weight"},
    {TensorRole::kGate, true, "ffn_gate.weight", "mlp.gate_proj.weight"},
    {TensorRole::kUp, true, "ffn_up.weight", "mlp.up_proj.weight"},
    {TensorRole::kDown, true, "ffn_down.weight", "mlp.down_proj.weight"},
    {TensorRole::kQNorm, true, "attn_q_norm.weight", "self_attn.q_norm.weight"},
    {TensorRole::kKNorm, true, "attn_k_norm.weight", "self_attn.k_norm.weight"},
};

constexpr bool in_role_order() {
  for (size_t i = 0; i < std::size(kRoleNames); ++i) {
    if (static_cast<size_t>(kRoleNames[i].role) != i) return false;
  }
  return std::size(kRoleNames) == static_cast<size_t>(TensorRole::kKNorm) + 1;
}
static_assert(in_role_order(), "kRoleNames lists every TensorRole, in order");

const RoleNames& role_names(TensorRole role) { return kRoleNames[static_cast<size_t>(role)]; }

struct Expect {
  std::vector<uint64_t> shape;
  std::string why;  // how the config implies the shape
};

Expect expected_shape(const ModelConfig& c, TensorRole role) {
  const uint64_t h = c.hidden, f = c.ffn, v = c.vocab;
  const uint64_t q = static_cast<uint64_t>(c.n_heads) * c.head_dim;
  const uint64_t kv = static_cast<uint64_t>(c.n_kv_heads) * c.head_dim;
  const std::string hs = fmt::format("hidden {}", h);
  const std::string qs = fmt::format("n_heads {} x head_dim {}", c.n_heads, c.head_dim);
  const std::string kvs = fmt::format("n_kv_heads {} x head_dim {}", c.n_kv_heads, c.head_dim);
  const std::string fs = fmt::format("ffn {}", f);
  const std::string vs = fmt::format("vocab {}", v);
  switch (role) {
    case TensorRole::kEmbedding:
    case TensorRole::kOutput:
      return {{v, h}, vs + ", " + hs};
    case TensorRole::kOutputNorm:
    case TensorRole::kAttnNorm:
    case TensorRole::kFfnNorm:
      return {{h}, hs};
    case TensorRole::kWq:
      return {{q, h}, qs + ", " + hs};
    case TensorRole::kBq:
      return {{q}, qs};
    case TensorRole::kWk:
    case TensorRole::kWv:
      return {{kv, h}, kvs + ", " + hs};
    case TensorRole::kBk:
    case TensorRole::kBv:
      return {{kv}, kvs};
    case TensorRole::kWo:
      return {{h, q}, hs + ", " + qs};
    case TensorRole::kGate:
    case TensorRole::kUp:
      return {{f, h}, fs + ", " + hs};
    case TensorRole::kDown:
      return {{h, f}, hs + ", " + fs};
    case TensorRole::kQNorm:
    case TensorRole::kKNorm:
      return {{static_cast<uint64_t>(c.head_dim)}, fmt::format("head_dim {}", c.head_dim)};
  }
  return {};
}

kernels::TensorView bind(const ModelConfig& c, const TensorSource& src, TensorRole role,
                         int layer) {
  std::string name = src.name_of(role, layer);
  Expect want = expected_shape(c, role);
  const SourceTensor* t = src.find(name);
  if (t == nullptr) {
    throw FormatError(src.missing_file, src.missing_offset, tensor_subject(name),
                      fmt::format("required tensor is missing (expected shape [{}]: {})",
                                  fmt::join(want.shape, ", "), want.why));
  }
  if (t->shape != want.shape) {
    throw FormatError(
        t->file, t->record_offset, tensor_subject(name),
        fmt::format("shape [{}] does not match the config: expected [{}] ({})",
                    fmt::join(t->shape, ", "), fmt::join(want.shape, ", "), want.why));
  }
  kernels::TensorView v = t->view;
  v.name = name;
  // Norms and biases are used elementwise in f32 by every backend.
  const bool vector_role = want.shape.size() == 1;
  if (vector_role && v.type != kernels::GgmlType::F32 && v.type != kernels::GgmlType::F16 &&
      v.type != kernels::GgmlType::BF16) {
    throw FormatError(t->file, t->record_offset, tensor_subject(name),
                      fmt::format("a norm/bias vector stored as {} is not supported (F32, F16 "
                                  "or BF16 expected)",
                                  kernels::type_name(v.type)));
  }
  if (auto bad = first_non_finite(v.type, static_cast<const uint8_t*>(v.data), v.nbytes)) {
    throw FormatError(
        t->file, t->record_offset, tensor_subject(name),
        fmt::format(
            "holds a NaN or infinite {} at byte {} of its {} data: every "
            "logit would be NaN",
            vector_role || kernels::traits(v.type).block_values == 1 ? "value" : "block scale",
            *bad, kernels::type_name(v.type)));
  }
  return v;
}

}  // namespace

std::string gguf_tensor_name(TensorRole role, int layer) {
  const RoleNames& r = role_names(role);
  return r.per_layer ? fmt::format("blk.{}.{}", layer, r.gguf) : std::string(r.gguf);
}

std::string hf_tensor_name(TensorRole role, int layer) {
  const RoleNames& r = role_names(role);
  return r.per_layer ? fmt::format("model.layers.{}.{}", layer, r.hf) : std::string(r.hf);
}

std::vector<uint64_t> role_shape(const ModelConfig& c, TensorRole role) {
  return expected_shape(c, role).shape;
}

void check_config(const ModelConfig& c, const std::string& where, uint64_t offset) {
  auto fail = [&](const std::string& detail) {
    throw FormatError(where, offset, "", "invalid model config: " + detail);
  };
  if (!find_architecture(c.architecture)) {
    fail(fmt::format("architecture '{}' is not supported ({})", c.architecture,
                     architecture_list()));
  }
  // Far above any published model; a larger value is a corrupt or hostile file.
  constexpr int kMaxSize = 1 << 24, kMaxCount = 4096;
  auto size = [&](const char* what, int v, int hi) {
    if (v <= 0 || v > hi) fail(fmt::format("{} {} must be in [1, {}]", what, v, hi));
  };
  size("n_layers", c.n_layers, kMaxCount);
  size("hidden", c.hidden, kMaxSize);
  size("ffn", c.ffn, kMaxSize);
  size("vocab", c.vocab, kMaxSize);
  size("n_heads", c.n_heads, kMaxCount);
  size("n_kv_heads", c.n_kv_heads, kMaxCount);
  if (c.context_length < 0 || c.context_length > kMaxSize) {
    fail(fmt::format("context_length {} must be in [0, {}]", c.context_length, kMaxSize));
  }
  if (c.n_heads % c.n_kv_heads != 0) {
    fail(fmt::format("n_heads {} is not a multiple of n_kv_heads {}", c.n_heads, c.n_kv_heads));
  }
  if (c.head_dim <= 0 || c.head_dim % 2 != 0 || c.head_dim > kernels::kMaxRopeHeadDim) {
    fail(fmt::format("head_dim {} must be positive, even (RoPE pairs) and at most {}", c.head_dim,
                     kernels::kMaxRopeHeadDim));
  }
  if (!(c.rms_eps > 0.0f && c.rms_eps < 1.0f)) {
    fail(fmt::format("rms_eps {} must be in (0, 1)", c.rms_eps));
  }
  if (!(c.rope_theta > 1.0f) || !std::isfinite(c.rope_theta)) {
    fail(fmt::format("rope_theta {} must be a finite number > 1", c.rope_theta));
  }
  for (int id : c.eos_tokens) {
    if (id < 0 || id >= c.vocab) fail(fmt::format("eos id {} is outside vocab {}", id, c.vocab));
  }
  for (int id : {c.bos_token, c.eos_token}) {
    if (id < -1 || id >= c.vocab) fail(fmt::format("token id {} is outside vocab {}", id, c.vocab));
  }
  try {
    (void)rope_table(c);
  } catch (const std::invalid_argument& e) {
    fail(e.what());
  }
}

void check_forward_support(const ModelConfig& c, const std::string& where, uint64_t offset) {
  const ArchInfo* a = find_architecture(c.architecture);
  if (a && a->forward_supported) return;
  throw FormatError(where, offset, key_subject("architecture"),
                    fmt::format("{} architecture not supported yet: the forward lacks {}",
                                c.architecture, a ? a->missing : "it"));
}

ModelWeights bind_weights(const ModelConfig& c, const TensorSource& src) {
  ModelWeights w;
  w.tok_embd = bind(c, src, TensorRole::kEmbedding, -1);
  w.output_norm = bind(c, src, TensorRole::kOutputNorm, -1);
  w.output = c.tied_embeddings ? w.tok_embd : bind(c, src, TensorRole::kOutput, -1);
  // Grown layer by layer, never sized up front by the (untrusted) layer count: a file
  // claiming 2^31 layers fails at the first missing tensor, not in an allocation.
  for (int l = 0; l < c.n_layers; ++l) {
    LayerWeights& L = w.layers.emplace_back();
    L.attn_norm = bind(c, src, TensorRole::kAttnNorm, l);
    L.wq = bind(c, src, TensorRole::kWq, l);
    L.wk = bind(c, src, TensorRole::kWk, l);
    L.wv = bind(c, src, TensorRole::kWv, l);
    if (c.qkv_bias) {
      L.bq = bind(c, src, TensorRole::kBq, l);
      L.bk = bind(c, src, TensorRole::kBk, l);
      L.bv = bind(c, src, TensorRole::kBv, l);
    }
    if (c.qk_norm) {
      L.q_norm = bind(c, src, TensorRole::kQNorm, l);
      L.k_norm = bind(c, src, TensorRole::kKNorm, l);
    }
    L.wo = bind(c, src, TensorRole::kWo, l);
    L.ffn_norm = bind(c, src, TensorRole::kFfnNorm, l);
    L.w_gate = bind(c, src, TensorRole::kGate, l);
    L.w_up = bind(c, src, TensorRole::kUp, l);
    L.w_down = bind(c, src, TensorRole::kDown, l);
  }
  // q/k norm weights in a family without them would be dropped without a word.
  if (!c.qk_norm) {
    for (TensorRole role : {TensorRole::kQNorm, TensorRole::kKNorm}) {
      const std::string name = src.name_of(role, 0);
      if (const SourceTensor* extra = src.find(name)) {
        throw FormatError(extra->file, extra->record_offset, tensor_subject(name),
                          fmt::format("per-head q/k norm weights, which architecture '{}' does "
                                      "not apply (qwen3 does)",
                                      c.architecture));
      }
    }
  }
  // A layer past the configured count would be dropped without a word.
  for (TensorRole role : {TensorRole::kAttnNorm, TensorRole::kWq, TensorRole::kWk, TensorRole::kWv,
                          TensorRole::kWo, TensorRole::kFfnNorm, TensorRole::kGate, TensorRole::kUp,
                          TensorRole::kDown, TensorRole::kQNorm, TensorRole::kKNorm}) {
    const std::string name = src.name_of(role, c.n_layers);
    if (const SourceTensor* extra = src.find(name)) {
      throw FormatError(extra->file, extra->record_offset, tensor_subject(name),
                        fmt::format("belongs to layer {}, but the config has {} layers "
                                    "(block_count / num_hidden_layers): the file holds more "
                                    "layers than it declares",
                                    c.n_layers, c.n_layers));
    }
  }
  return w;
}

}  // namespace pv::model
