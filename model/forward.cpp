#include "model/forward.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>

#include "mutants/mutant.h"

namespace pv::model {
namespace {

using kernels::TensorView;

void check_shape(const TensorView& t, const char* what, int layer, int64_t rows, int64_t cols) {
  if (t.data != nullptr && t.rows == rows && t.cols == cols) return;
  std::string where = layer >= 0 ? "layer " + std::to_string(layer) + " " : "";
  std::string name = t.name.empty() ? std::string(what) : t.name + " (" + what + ")";
  if (t.data == nullptr) throw std::invalid_argument("forward: missing tensor " + where + name);
  throw std::invalid_argument("forward: tensor " + where + name + " is [" + std::to_string(t.rows) +
                              ", " + std::to_string(t.cols) + "], the config needs [" +
                              std::to_string(rows) + ", " + std::to_string(cols) + "]");
}

// A bias is optional; when present it is a 1-D vector of the projection's output size.
void check_bias(const TensorView& t, const char* what, int layer, int64_t n) {
  if (t.data == nullptr) return;
  if (t.numel() != n) {
    throw std::invalid_argument("forward: bias layer " + std::to_string(layer) + " " + t.name +
                                " (" + what + ") has " + std::to_string(t.numel()) +
                                " values, the config needs " + std::to_string(n));
  }
}

int pick_max_seq(const ModelConfig& c, int requested) {
  if (requested > 0) return requested;
  return c.context_length > 0 ? std::min(c.context_length, 4096) : 4096;
}

void validate(const ModelConfig& c, const ModelWeights& w) {
  if (c.n_layers <= 0 || c.hidden <= 0 || c.n_heads <= 0 || c.n_kv_heads <= 0 || c.head_dim <= 0 ||
      c.ffn <= 0 || c.vocab <= 0 || c.n_heads % c.n_kv_heads != 0) {
    throw std::invalid_argument(
        "forward: config needs positive sizes and n_kv_heads dividing n_heads (layers " +
        std::to_string(c.n_layers) + ", hidden " + std::to_string(c.hidden) + ", heads " +
        std::to_string(c.n_heads) + "/" + std::to_string(c.n_kv_heads) + ")");
  }
  if (static_cast<int>(w.layers.size()) != c.n_layers) {
    throw std::invalid_argument("forward: " + std::to_string(w.layers.size()) +
                                " layers of weights, the config says " +
                                std::to_string(c.n_layers));
  }
  const int64_t q_dim = int64_t{c.n_heads} * c.head_dim;
  const int64_t kv_dim = int64_t{c.n_kv_heads} * c.head_dim;
  check_shape(w.tok_embd, "token embedding", -1, c.vocab, c.hidden);
  check_shape(w.output_norm, "output norm", -1, 1, c.hidden);
  check_shape(w.output, "lm_head", -1, c.vocab, c.hidden);
  for (int l = 0; l < c.n_layers; ++l) {
    const LayerWeights& L = w.layers[l];
    check_shape(L.attn_norm, "attn_norm", l, 1, c.hidden);
    check_shape(L.wq, "q_proj", l, q_dim, c.hidden);
    check_shape(L.wk, "k_proj", l, kv_dim, c.hidden);
    check_shape(L.wv, "v_proj", l, kv_dim, c.hidden);
    check_shape(L.wo, "o_proj", l, c.hidden, q_dim);
    check_bias(L.bq, "q bias", l, q_dim);
    check_bias(L.bk, "k bias", l, kv_dim);
    check_bias(L.bv, "v bias", l, kv_dim);
    if (c.qk_norm) {
      check_shape(L.q_norm, "q_norm", l, 1, c.head_dim);
      check_shape(L.k_norm, "k_norm", l, 1, c.head_dim);
    } else if (L.q_norm.data != nullptr || L.k_norm.data != nullptr) {
      throw std::invalid_argument("forward: layer " + std::to_string(l) +
                                  " has q_norm/k_norm weights but the config has no qk_norm");
    }
    check_shape(L.ffn_norm, "ffn_norm", l, 1, c.hidden);
    check_shape(L.w_gate, "gate_proj", l, c.ffn, c.hidden);
    check_shape(L.w_up, "up_proj", l, c.ffn, c.hidden);
    check_shape(L.w_down, "down_proj", l, c.hidden, c.ffn);
  }
}

}  // namespace

Forward::Forward(const ModelConfig& config, const ModelWeights& weights, kernels::Backend& backend,
                 int max_seq)
    : config_((validate(config, weights), config)),
      rope_(rope_table(config_)),
      backend_(backend),
      cache_(backend, config.n_layers, pick_max_seq(config, max_seq),
             config.n_kv_heads * config.head_dim) {
  auto prep = [&](const TensorView& t) -> const kernels::Weight* {
    return t.data == nullptr ? nullptr : &backend_.prepare_weight(t);
  };
  tok_embd_ = prep(weights.tok_embd);
  output_norm_ = prep(weights.output_norm);
  output_ = prep(weights.output);
  for (const LayerWeights& L : weights.layers) {
    layers_.push_back({prep(L.attn_norm), prep(L.wq), prep(L.wk), prep(L.wv), prep(L.wo),
                       prep(L.bq), prep(L.bk), prep(L.bv), prep(L.q_norm), prep(L.k_norm),
                       prep(L.ffn_norm), prep(L.w_gate), prep(L.w_up), prep(L.w_down)});
  }
}

Forward::~Forward() { free_scratch(); }

void Forward::free_scratch() {
  for (float* p : {s_.x, s_.n, s_.q, s_.attn, s_.o, s_.gate, s_.up, s_.logits}) {
    if (p != nullptr) backend_.free(p);
  }
  s_ = Scratch{};
}

void Forward::ensure_scratch(int T) {
  if (T <= s_.capacity) return;
  free_scratch();
  const size_t t = static_cast<size_t>(T);
  const size_t q_dim = static_cast<size_t>(config_.n_heads) * config_.head_dim;
  s_.x = backend_.alloc(t * config_.hidden);
  s_.n = backend_.alloc(t * config_.hidden);
  s_.q = backend_.alloc(t * q_dim);
  s_.attn = backend_.alloc(t * q_dim);
  s_.o = backend_.alloc(t * config_.hidden);
  s_.gate = backend_.alloc(t * config_.ffn);
  s_.up = backend_.alloc(t * config_.ffn);
  s_.logits = backend_.alloc(t * config_.vocab);
  s_.capacity = T;
}

void Forward::emit(StageSink* sink, Stage s, int layer, const float* src, size_t count,
                   std::vector<int64_t> shape) {
  host_.resize(count);
  backend_.download(host_.data(), src, count);
  if (mutant::planted(mutant::Bug::CaptureNotAdditive) && count > 1)
    backend_.upload(const_cast<float*>(src), host_.data() + 1, count - 1);
  sink->on_stage(s, layer, host_.data(), shape);
}

void Forward::emit_qkv(StageSink* sink, Stage s, int layer, int T, const float* k_rows,
                       const float* v_rows) {
  const size_t q_dim = static_cast<size_t>(config_.n_heads) * config_.head_dim;
  const size_t kv_dim = static_cast<size_t>(config_.n_kv_heads) * config_.head_dim;
  const size_t row = q_dim + 2 * kv_dim;
  std::vector<float> q(T * q_dim), k(T * kv_dim), v(T * kv_dim);
  backend_.download(q.data(), s_.q, q.size());
  backend_.download(k.data(), k_rows, k.size());
  backend_.download(v.data(), v_rows, v.size());
  host_.resize(T * row);
  for (int t = 0; t < T; ++t) {
    float* dst = host_.data() + t * row;
    std::copy_n(q.data() + t * q_dim, q_dim, dst);
    std::copy_n(k.data() + t * kv_dim, kv_dim, dst + q_dim);
    std::copy_n(v.data() + t * kv_dim, kv_dim, dst + q_dim + kv_dim);
  }
  sink->on_stage(s, layer, host_.data(), {T, static_cast<int64_t>(row)});
}

void Forward::attention_block(int l, int T, int pos0, const StagePlan* plan, StageSink* sink) {
  const LayerW& w = layers_[l];
  const ModelConfig& c = config_;
  const int q_dim = c.n_heads * c.head_dim, kv_dim = c.n_kv_heads * c.head_dim;
  // The new K/V rows are computed straight into the cache.
  const int row = pos0 - (mutant::planted(mutant::Bug::KvCacheRowDecode) && T == 1 && pos0 > 0);
  float* k = cache_.k_row(l, row);
  float* v = cache_.v_row(l, row);

  backend_.rmsnorm(s_.x, *w.attn_norm, T, c.hidden, c.rms_eps, s_.n);
  if (wants(plan, sink, Stage::attn_norm, l)) {
    emit(sink, Stage::attn_norm, l, s_.n, size_t(T) * c.hidden, {T, c.hidden});
  }

  backend_.matmul(*w.wq, s_.n, T, s_.q);
  backend_.matmul(*w.wk, s_.n, T, k);
  backend_.matmul(*w.wv, s_.n, T, v);
  if (wants(plan, sink, Stage::qkv_matmul, l)) emit_qkv(sink, Stage::qkv_matmul, l, T, k, v);
  if (w.bq) backend_.add_bias(s_.q, *w.bq, T);
  if (w.bk) backend_.add_bias(k, *w.bk, T);
  if (w.bv) backend_.add_bias(v, *w.bv, T);
  if (wants(plan, sink, Stage::qkv_bias, l)) emit_qkv(sink, Stage::qkv_bias, l, T, k, v);
  // Qwen3: each head's head_dim values normalised on their own ([T * heads] rows), as
  // transformers applies q_norm / k_norm to the [.., heads, head_dim] view, before RoPE.
  if (w.q_norm) {
    backend_.rmsnorm(s_.q, *w.q_norm, T * c.n_heads, c.head_dim, c.rms_eps, s_.q);
    if (wants(plan, sink, Stage::q_norm, l)) {
      emit(sink, Stage::q_norm, l, s_.q, size_t(T) * q_dim, {T, q_dim});
    }
  }
  if (w.k_norm && !mutant::planted(mutant::Bug::KNormDropped)) {
    backend_.rmsnorm(k, *w.k_norm, T * c.n_kv_heads, c.head_dim, c.rms_eps, k);
    if (wants(plan, sink, Stage::k_norm, l)) {
      emit(sink, Stage::k_norm, l, k, size_t(T) * kv_dim, {T, kv_dim});
    }
  }

  backend_.rope_table(s_.q, T, c.n_heads, c.head_dim, pos0, rope_.inv_freq.data(),
                      rope_.attention_factor, c.rope_style);
  backend_.rope_table(k, T, c.n_kv_heads, c.head_dim, pos0, rope_.inv_freq.data(),
                      rope_.attention_factor, c.rope_style);
  if (wants(plan, sink, Stage::q_post_rope, l)) {
    emit(sink, Stage::q_post_rope, l, s_.q, size_t(T) * q_dim, {T, q_dim});
  }
  if (wants(plan, sink, Stage::k_post_rope, l)) {
    emit(sink, Stage::k_post_rope, l, k, size_t(T) * kv_dim, {T, kv_dim});
  }

  // The [heads, T, pos0+T] score / probability matrices exist only when asked for.
  const bool want_scores = wants(plan, sink, Stage::attn_scores, l);
  const bool want_probs = wants(plan, sink, Stage::attn_softmax, l);
  const int n_ctx = pos0 + T;
  const size_t sp_count = size_t(c.n_heads) * T * n_ctx;
  float* scores = want_scores ? backend_.alloc(sp_count) : nullptr;
  float* probs = want_probs ? backend_.alloc(sp_count) : nullptr;
  const kernels::AttentionShape shape{c.n_heads, c.n_kv_heads, c.head_dim};
  backend_.attention(s_.q, cache_.k(l), cache_.v(l), shape, T, pos0, s_.attn, scores, probs);
  if (scores) {
    emit(sink, Stage::attn_scores, l, scores, sp_count, {c.n_heads, T, n_ctx});
    backend_.free(scores);
  }
  if (probs) {
    emit(sink, Stage::attn_softmax, l, probs, sp_count, {c.n_heads, T, n_ctx});
    backend_.free(probs);
  }
  if (wants(plan, sink, Stage::attention, l)) {
    emit(sink, Stage::attention, l, s_.attn, size_t(T) * q_dim, {T, q_dim});
  }

  backend_.matmul(*w.wo, s_.attn, T, s_.o);
  if (wants(plan, sink, Stage::attn_out, l)) {
    emit(sink, Stage::attn_out, l, s_.o, size_t(T) * c.hidden, {T, c.hidden});
  }
  backend_.add(s_.x, s_.o, size_t(T) * c.hidden);
  if (wants(plan, sink, Stage::post_attn_residual, l)) {
    emit(sink, Stage::post_attn_residual, l, s_.x, size_t(T) * c.hidden, {T, c.hidden});
  }
}

void Forward::ffn_block(int l, int T, const StagePlan* plan, StageSink* sink) {
  const LayerW& w = layers_[l];
  const ModelConfig& c = config_;
  const size_t n_ffn = size_t(T) * c.ffn;

  backend_.rmsnorm(s_.x, *w.ffn_norm, T, c.hidden, c.rms_eps, s_.n);
  if (wants(plan, sink, Stage::ffn_norm, l)) {
    emit(sink, Stage::ffn_norm, l, s_.n, size_t(T) * c.hidden, {T, c.hidden});
  }
  backend_.matmul(*w.w_gate, s_.n, T, s_.gate);
  if (wants(plan, sink, Stage::ffn_gate, l))
    emit(sink, Stage::ffn_gate, l, s_.gate, n_ffn, {T, c.ffn});
  backend_.matmul(*w.w_up, s_.n, T, s_.up);
  if (wants(plan, sink, Stage::ffn_up, l)) emit(sink, Stage::ffn_up, l, s_.up, n_ffn, {T, c.ffn});
  if (mutant::planted(mutant::Bug::SwigluSwapped)) std::swap(s_.gate, s_.up);
  backend_.silu(s_.gate, n_ffn, s_.gate);
  if (wants(plan, sink, Stage::ffn_silu, l))
    emit(sink, Stage::ffn_silu, l, s_.gate, n_ffn, {T, c.ffn});
  backend_.mul(s_.gate, s_.up, n_ffn, s_.gate);
  if (wants(plan, sink, Stage::ffn_swigl, l))
    emit(sink, Stage::ffn_swigl, l, s_.gate, n_ffn, {T, c.ffn});
  backend_.matmul(*w.w_down, s_.gate, T, s_.o);
  if (mutant::planted(mutant::Bug::SwigluSwapped)) std::swap(s_.gate, s_.up);
  if (wants(plan, sink, Stage::ffn_out, l)) {
    emit(sink, Stage::ffn_out, l, s_.o, size_t(T) * c.hidden, {T, c.hidden});
  }
  backend_.add(s_.x, s_.o, size_t(T) * c.hidden);
  if (wants(plan, sink, Stage::post_ffn_residual, l)) {
    emit(sink, Stage::post_ffn_residual, l, s_.x, size_t(T) * c.hidden, {T, c.hidden});
  }
}

void Forward::eval(const int32_t* tokens, int T, float* logits_host, const StagePlan* plan,
                   StageSink* sink, LogitRows rows) {
  cache_.reserve_for(T);
  const ModelConfig& c = config_;
  for (int t = 0; t < T; ++t) {
    if (tokens[t] < 0 || tokens[t] >= c.vocab) {
      throw std::out_of_range("forward: token id " + std::to_string(tokens[t]) + " at index " +
                              std::to_string(t) + " is outside the vocabulary of " +
                              std::to_string(c.vocab));
    }
  }
  ensure_scratch(T);
  const int pos0 = cache_.position();

  backend_.embed(*tok_embd_, tokens, T, s_.x);
  if (wants(plan, sink, Stage::embedding, kSinkWholeModel)) {
    emit(sink, Stage::embedding, kSinkWholeModel, s_.x, size_t(T) * c.hidden, {T, c.hidden});
  }
  for (int l = 0; l < c.n_layers; ++l) {
    attention_block(l, T, pos0, plan, sink);
    ffn_block(l, T, plan, sink);
  }
  cache_.advance(T);

  backend_.rmsnorm(s_.x, *output_norm_, T, c.hidden, c.rms_eps, s_.n);
  if (wants(plan, sink, Stage::final_norm, kSinkWholeModel)) {
    emit(sink, Stage::final_norm, kSinkWholeModel, s_.n, size_t(T) * c.hidden, {T, c.hidden});
  }
  // lm_head over every row when all logits or the lm_head stage are wanted, else only the
  // last row.
  const bool want_lm = wants(plan, sink, Stage::lm_head, kSinkWholeModel);
  const bool all_rows = rows == LogitRows::All || want_lm;
  const size_t vocab = static_cast<size_t>(c.vocab);
  if (all_rows) {
    backend_.matmul(*output_, s_.n, T, s_.logits);
  } else {
    backend_.matmul(*output_, s_.n + size_t(T - 1) * c.hidden, 1, s_.logits + (T - 1) * vocab);
  }
  if (want_lm) emit(sink, Stage::lm_head, kSinkWholeModel, s_.logits, T * vocab, {T, c.vocab});
  if (logits_host != nullptr) {
    if (rows == LogitRows::All) {
      backend_.download(logits_host, s_.logits, T * vocab);
    } else {
      backend_.download(logits_host, s_.logits + (T - 1) * vocab, vocab);
    }
  }
  backend_.synchronize();
}

}  // namespace pv::model
