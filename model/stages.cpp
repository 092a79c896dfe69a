#include "model/stages.h"

#include <array>

namespace pv::model {
namespace {

constexpr std::array<std::string_view, kStageCount> kNames = {
    "embedding",  "attn_norm",   "qkv_matmul",         "qkv_bias",    "q_norm",
    "k_norm",     "q_post_rope", "k_post_rope",        "attn_scores", "attn_softmax",
    "attention",  "attn_out",    "post_attn_residual", "ffn_norm",    "ffn_gate",
    "ffn_up",     "ffn_silu",    "ffn_swigl",          "ffn_out",     "post_ffn_residual",
    "final_norm", "lm_head",
};

}  // namespace

std::string_view stage_name(Stage s) { return kNames[static_cast<int>(s)]; }

std::optional<Stage> stage_from_name(std::string_view name) {
  if (name == "layer_output") return Stage::post_ffn_residual;
  for (int i = 0; i < kStageCount; ++i) {
    if (kNames[i] == name) return static_cast<Stage>(i);
  }
  return std::nullopt;
}

bool is_per_layer(Stage s) {
  return s != Stage::embedding && s != Stage::final_norm && s != Stage::lm_head;
}

bool family_has_stage(Stage s, bool qk_norm) {
  if (s == Stage::q_norm || s == Stage::k_norm) return qk_norm;
  return true;
}

bool StagePlan::wants(Stage s, int layer) const {
  if (!stages[static_cast<int>(s)]) return false;
  if (!is_per_layer(s) || all_layers) return true;
  return layers.count(layer) != 0;
}

bool StagePlan::wants_any() const {
  for (bool b : stages) {
    if (b) return true;
  }
  return false;
}

}  // namespace pv::model
