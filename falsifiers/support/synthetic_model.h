// A deterministic, in-memory Qwen2-shaped model with random weights (test-only): lets the
// trace falsifiers run the real forward at the algorithm level without any file, in F32
// and with its matrices quantized to a block type (Q8_0 / Q4_K / Q6_K).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/quant/ggml_types.h"
#include "model/config.h"
#include "model/weights.h"

namespace pv::testing {

struct SyntheticModel {
  model::ModelConfig config;
  model::ModelWeights weights;
  std::vector<std::shared_ptr<std::vector<uint8_t>>> storage;  // owns every tensor's bytes
};

// hidden 256, 8 query heads / 2 KV heads (4:1), head_dim 32, ffn 512, vocab 384,
// 2 layers, q/k/v bias, untied lm_head. Matrices (the embedding excepted) stored as
// `matrix_type`; norms and biases stay F32. The same seed gives the same F32 values for
// every matrix_type, so an F32 and a Q4_K copy are the same model up to quantization.
SyntheticModel make_synthetic_qwen2(uint64_t seed, kernels::GgmlType matrix_type);

}  // namespace pv::testing
