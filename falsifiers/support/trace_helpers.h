// Test-only helpers for the trace falsifiers: their in-memory model, a self-deleting temp
// directory (support/temp_dir.h) and a one-call "trace this model on this backend into DIR".
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "falsifiers/support/temp_dir.h"
#include "kernels/backend.h"
#include "kernels/quant/ggml_types.h"
#include "model/config.h"
#include "model/fixtures/synthetic_model.h"
#include "model/trace/trace_run.h"
#include "model/weights.h"

namespace pv::testing {

// The model builder's tiny Qwen2 (hidden 256, 8 query / 2 KV heads of 32, ffn 768, vocab
// 64, 2 layers, q/k/v bias, untied) with its matrices and lm_head stored as `type` and the
// embedding F32 (as a lookup it adds no matmul noise of its own). One seed gives the same
// values for every type, so an F32 and a Q4_K model differ only by quantization.
std::unique_ptr<model::SyntheticModel> trace_model(uint64_t seed, kernels::GgmlType type);

// Traces every stage of every layer for `tokens` into `dir` and generates `max_new`
// greedy tokens.
model::TraceRunResult trace_all(const model::ModelConfig& config, const model::ModelWeights& w,
                                kernels::Backend& backend, const std::vector<int32_t>& tokens,
                                const std::string& dir, int max_new = 4,
                                const std::string& dtype = "f32");

// Runs build/bin/pv with argv (no shell); returns the exit code, stdout in *out.
int run_pv(const std::vector<std::string>& args, std::string* out);

}  // namespace pv::testing
