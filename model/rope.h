// RoPE frequency tables: inv_freq per rotated pair and the attention factor that scales
// cos/sin, from the rope base, head_dim and the scaling a config names (config.h). The
// forward computes the table once and hands the same numbers to every backend
// (Backend::rope_table), so the CPU and CUDA paths rotate by identical angles.
//
// Rounding convention. The unscaled base is HF transformers' float32 rotary embedding
// (the oracle traces come from it):
//   base_inv[i] = 1 / f32(theta^(f32(2i) / f32(d)))      pow in double, rounded once to f32,
//                                                          reciprocal in f32 (as torch does)
// Every scaling (linear, llama3, yarn, GGUF per-dimension factors) is then applied to
// base_inv in double and the result rounded once to f32. Transformers applies the same
// formulas in float32, so a scaled entry may differ from HF's by an ulp; the unscaled
// table is bit-identical to the one the CPU backend's rope(theta) builds.
#pragma once

#include <utility>
#include <vector>

#include "model/config.h"

namespace pv::model {

struct RopeTable {
  std::vector<float> inv_freq;  // head_dim / 2 entries
  float attention_factor = 1.0f;
};

// The unscaled base_inv above, in double (the exact value of each f32 entry).
std::vector<double> rope_base_inv_freq(int head_dim, float theta);

// Throws std::invalid_argument on parameters no table can be built from (the loaders
// refuse them earlier, naming the file and key).
RopeTable rope_table(int head_dim, float theta, const RopeScaling& scaling,
                     int max_position_embeddings);
inline RopeTable rope_table(const ModelConfig& c) {
  return rope_table(c.head_dim, c.rope_theta, c.rope_scaling, c.context_length);
}

// yarn's correction range [low, high] in pair indices: the beta_fast / beta_slow correction
// dimensions over original_context (max_position_embeddings when 0), floored / ceiled when
// truncating, clamped to [0, head_dim - 1]. Not widened when empty (rope_table does that).
std::pair<double, double> yarn_correction_range(int head_dim, float theta,
                                                const RopeScaling& scaling,
                                                int max_position_embeddings = 0);

// "none", "linear", "llama3", "yarn".
const char* rope_scaling_name(RopeScalingKind kind);

}  // namespace pv::model
