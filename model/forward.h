// The Qwen2/Llama decoder forward pass, written once against kernels::Backend so the CPU
// and CUDA paths run the same sequence of ops and the same stage plan.
//
//   x = embed(tokens)
//   for each layer:
//     n = rmsnorm(x) ; q,k,v = n·Wqᵀ,n·Wkᵀ,n·Wvᵀ (+ bias)
//     (qwen3) q,k = per-head rmsnorm over head_dim (q_norm, k_norm)
//     rope(q), rope(k) -> KV cache
//     x += Wo · attention(q, K[0..pos], V[0..pos])
//     n = rmsnorm(x) ; x += Wdown · (silu(n·Wgateᵀ) * n·Wupᵀ)
//   logits = lm_head(rmsnorm(x))
//
// eval() processes T tokens at the current position: a prefill when the cache is empty,
// incremental decoding after. A StagePlan + StageSink capture any of the stages of
// model/stages.h; without a plan the forward does no extra work (no downloads, no
// score matrix).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/backend.h"
#include "model/config.h"
#include "model/kv_cache.h"
#include "model/rope.h"
#include "model/stages.h"
#include "model/weights.h"

namespace pv::model {

// Which lm_head rows eval() computes and writes: every token's, or only the last
// token's (generation needs only that one; it saves (T-1) vocab-sized matvecs).
enum class LogitRows { All, Last };

// Layer index passed to StageSink::on_stage for whole-model stages (embedding,
// final_norm, lm_head): kWholeModelLayer as an int.
inline constexpr int kSinkWholeModel = -1;

class Forward {
 public:
  // Weights are prepared on the backend here (CPU: used in place; CUDA: uploaded). The
  // weights' bytes must outlive this object. max_seq bounds the KV cache; 0 picks
  // min(config.context_length, 4096) (4096 when the context length is unknown).
  // Throws std::invalid_argument naming the tensor when a weight's shape disagrees
  // with the config.
  Forward(const ModelConfig& config, const ModelWeights& weights, kernels::Backend& backend,
          int max_seq = 0);
  ~Forward();
  Forward(const Forward&) = delete;
  Forward& operator=(const Forward&) = delete;

  // Runs T tokens (host ids) at positions position() .. position()+T-1 and advances the
  // position. logits_host (may be null) receives [T, vocab] for LogitRows::All or
  // [vocab] for LogitRows::Last.
  void eval(const int32_t* tokens, int T, float* logits_host, const StagePlan* plan = nullptr,
            StageSink* sink = nullptr, LogitRows rows = LogitRows::All);

  void reset() { cache_.reset(); }
  int position() const { return cache_.position(); }
  int max_seq() const { return cache_.max_seq(); }
  const ModelConfig& config() const { return config_; }
  kernels::Backend& backend() { return backend_; }

 private:
  struct LayerW {
    const kernels::Weight *attn_norm, *wq, *wk, *wv, *wo, *bq, *bk, *bv;
    const kernels::Weight *q_norm, *k_norm;  // null unless config.qk_norm
    const kernels::Weight *ffn_norm, *w_gate, *w_up, *w_down;
  };
  // Activation buffers in backend memory, sized for `capacity` tokens.
  struct Scratch {
    int capacity = 0;
    float *x = nullptr, *n = nullptr, *q = nullptr, *attn = nullptr, *o = nullptr;
    float *gate = nullptr, *up = nullptr, *logits = nullptr;
  };

  void ensure_scratch(int T);
  void free_scratch();
  void attention_block(int layer, int T, int pos0, const StagePlan* plan, StageSink* sink);
  void ffn_block(int layer, int T, const StagePlan* plan, StageSink* sink);

  bool wants(const StagePlan* plan, StageSink* sink, Stage s, int layer) const {
    return plan != nullptr && sink != nullptr && plan->wants(s, layer);
  }
  // Downloads `count` floats from backend memory and hands them to the sink.
  void emit(StageSink* sink, Stage s, int layer, const float* src, size_t count,
            std::vector<int64_t> shape);
  // qkv_matmul / qkv_bias: the per-token q|k|v concatenation.
  void emit_qkv(StageSink* sink, Stage s, int layer, int T, const float* k_rows,
                const float* v_rows);

  ModelConfig config_;
  RopeTable rope_;  // computed once from config_; every backend rotates by it
  kernels::Backend& backend_;
  const kernels::Weight* tok_embd_;
  const kernels::Weight* output_norm_;
  const kernels::Weight* output_;
  std::vector<LayerW> layers_;
  KvCache cache_;
  Scratch s_;
  std::vector<float> host_;  // staging for captured stages
};

}  // namespace pv::model
