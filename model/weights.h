// The tensors of a loaded model, as views into the file's bytes (stored types kept).
#pragma once

#include <vector>

#include "kernels/tensor.h"
#include "model/config.h"

namespace pv::model {

// Absent optional tensors (biases, q_norm/k_norm) have data == nullptr.
struct LayerWeights {
  kernels::TensorView attn_norm;
  kernels::TensorView wq, bq, wk, bk, wv, bv, wo;
  kernels::TensorView q_norm, k_norm;  // [head_dim] each, when config.qk_norm
  kernels::TensorView ffn_norm;
  kernels::TensorView w_gate, w_up, w_down;
};

struct ModelWeights {
  kernels::TensorView tok_embd;     // [vocab, hidden]
  kernels::TensorView output_norm;  // [hidden]
  kernels::TensorView output;       // [vocab, hidden]; == tok_embd when tied
  std::vector<LayerWeights> layers;
};

}  // namespace pv::model
