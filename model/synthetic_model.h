// In-memory models with deterministic random weights, for kernel/forward tests that need
// no file and for the decode benchmark (which needs a model the size of a real one).
// Not a fixture generator: nothing here is written to disk.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/ggml_types.h"
#include "model/config.h"
#include "model/weights.h"

namespace pv::model {

struct SyntheticTypes {
  kernels::GgmlType matrix = kernels::GgmlType::F32;  // q/k/v/o, gate/up/down
  kernels::GgmlType embedding = kernels::GgmlType::F32;
  kernels::GgmlType output = kernels::GgmlType::F32;  // ignored when tied
  // Used for a matrix whose row length is not a multiple of `matrix`'s block size (as
  // llama.cpp falls back for K-quants on 896-wide Qwen2.5-0.5B rows).
  kernels::GgmlType fallback = kernels::GgmlType::Q4_0;
};

struct SyntheticModel {
  ModelConfig config;
  ModelWeights weights;
  std::vector<std::vector<uint8_t>> storage;  // the tensors' bytes
  uint64_t weight_bytes = 0;                  // all tensors
  uint64_t bytes_per_token = 0;  // weight bytes one decode step reads (all but tok_embd rows)
};

// How the values are made:
//   Quantized: Gaussian values (matrices N(0, 1/cols), norms 1 + N(0, 0.1^2), biases
//              N(0, 0.1^2)) rounded to the stored type through quantize_row; realistic,
//              for correctness tests (slow for large models).
//   RandomBlocks: uniformly random block bytes with a fixed, small f16 scale; valid blocks
//              of the right size at memcpy speed, for benchmarks where only bytes matter.
enum class SyntheticFill { Quantized, RandomBlocks };

std::unique_ptr<SyntheticModel> make_synthetic_model(const ModelConfig& config, uint64_t seed,
                                                     const SyntheticTypes& types = {},
                                                     SyntheticFill fill = SyntheticFill::Quantized);

// A small Qwen2-shaped config (biases on, untied) for tests: GQA ratio n_heads/n_kv_heads.
ModelConfig tiny_qwen2_config(int n_heads = 4, int n_kv_heads = 2, int head_dim = 8,
                              int n_layers = 2);

}  // namespace pv::model
