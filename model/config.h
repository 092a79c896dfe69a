// Hyper-parameters of a Qwen2/Llama-family decoder, from GGUF metadata or config.json.
#pragma once

#include <string>

#include "kernels/backend.h"

namespace pv::model {

struct ModelConfig {
  std::string architecture;  // "qwen2" or "llama"
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
  kernels::RopeStyle rope_style = kernels::RopeStyle::HalfSplit;
  bool tied_embeddings = false;
  bool qkv_bias = false;
  int bos_token = -1;
  int eos_token = -1;
};

}  // namespace pv::model
