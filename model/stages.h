// The 22 forward-pass stages a trace can capture, in computation order (DESIGN.md),
// a plan saying which ones to capture, and the sink that receives them. A stage a family
// does not compute (q_norm / k_norm outside qwen3) is never emitted: absent, not zero.
// With no plan the forward does no extra work; with one it computes only what is asked
// (attn_scores / attn_softmax need the full score matrix only when requested).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <set>
#include <string_view>
#include <vector>

namespace pv::model {

enum class Stage : int {
  embedding,
  attn_norm,
  qkv_matmul,
  qkv_bias,
  q_norm,  // qwen3: per-head RMSNorm of q, before RoPE
  k_norm,  // qwen3: per-head RMSNorm of k, before RoPE
  q_post_rope,
  k_post_rope,
  attn_scores,
  attn_softmax,
  attention,
  attn_out,
  post_attn_residual,
  ffn_norm,
  ffn_gate,
  ffn_up,
  ffn_silu,
  ffn_swigl,
  ffn_out,
  post_ffn_residual,
  final_norm,
  lm_head,
};
inline constexpr int kStageCount = 22;
inline constexpr uint32_t kWholeModelLayer = 0xFFFFFFFFu;

std::string_view stage_name(Stage s);
std::optional<Stage> stage_from_name(std::string_view name);  // accepts "layer_output"
bool is_per_layer(Stage s);  // false for embedding, final_norm, lm_head
// Whether a model of this config computes the stage (q_norm / k_norm: config.qk_norm).
bool family_has_stage(Stage s, bool qk_norm);

// Which stages and layers to capture. Empty plan = capture nothing.
struct StagePlan {
  std::array<bool, kStageCount> stages{};
  bool all_layers = true;
  std::set<int> layers;

  bool wants(Stage s, int layer) const;  // layer ignored for whole-model stages
  bool wants_any() const;
};

// Receives a captured stage in host memory. shape is row-major, tokens outermost
// ([T, features]; [heads, q_tokens, kv_tokens] for attn_scores/attn_softmax).
class StageSink {
 public:
  virtual ~StageSink() = default;
  virtual void on_stage(Stage stage, int layer, const float* data,
                        const std::vector<int64_t>& shape) = 0;
};

}  // namespace pv::model
