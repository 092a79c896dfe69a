// Hyper-parameters of a Qwen2/Qwen3/Llama-family decoder, from GGUF metadata or config.json.
#pragma once

#include <string>
#include <vector>

#include "kernels/backend.h"

namespace pv::model {

// RoPE frequency scaling, as transformers' modeling_rope_utils.py defines the kinds pv
// implements (model/rope.h computes the tables). Anything else is refused at load.
enum class RopeScalingKind { None, Linear, Llama3, Yarn };

struct RopeScaling {
  RopeScalingKind kind = RopeScalingKind::None;
  double factor = 1.0;            // linear, llama3, yarn
  double low_freq_factor = 0.0;   // llama3
  double high_freq_factor = 0.0;  // llama3
  int original_context = 0;       // llama3, yarn (yarn: max_position_embeddings if absent)
  double beta_fast = 32.0;        // yarn
  double beta_slow = 1.0;         // yarn
  bool truncate = true;           // yarn: floor/ceil the correction range
  double attention_factor = 0.0;  // yarn; 0 = derived from factor / mscale
  double mscale = 0.0;            // yarn (0 = absent)
  double mscale_all_dim = 0.0;    // yarn (0 = absent)
  // GGUF rope_freqs.weight (llama.cpp's llama3 form): inv_freq[i] = base_inv_freq[i] / f[i].
  // Applies on top of `kind` (GGUF files carry kind None with these factors).
  std::vector<float> freq_factors;
};

struct ModelConfig {
  std::string architecture;  // an entry of the architecture table (model/loading/arch.h)
  int n_layers = 0;
  int hidden = 0;
  int ffn = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;  // hidden / n_heads unless the file says otherwise
  int vocab = 0;
  int context_length = 0;
  float rms_eps = 1e-6f;
  float rope_theta = 10000.0f;
  RopeScaling rope_scaling;
  kernels::RopeStyle rope_style = kernels::RopeStyle::HalfSplit;
  bool tied_embeddings = false;
  bool qkv_bias = false;
  // Qwen3: RMSNorm over each head's head_dim values of q and of k (weights q_norm and
  // k_norm, [head_dim], eps rms_eps), after the projections and before RoPE.
  bool qk_norm = false;
  int bos_token = -1;
  int eos_token = -1;           // the first of eos_tokens (-1: none)
  std::vector<int> eos_tokens;  // every id the file names as end of sequence
};

}  // namespace pv::model
