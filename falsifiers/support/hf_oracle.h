// The comparison the HF-oracle falsifiers share (qwen2-cpu-vs-hf-oracle-v1.yaml,
// families-cpu-vs-hf-oracle-v1.yaml): pv's CPU trace of a fixture against the trace HF
// transformers wrote for the same weights and tokens (tools/hf_oracle.py), stage by stage.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/trace/trace_compare.h"
#include "model/trace/trace_run.h"

namespace pv::testing {

// A CPU trace (one thread) of `model_path` (an HF directory or a GGUF) over `tokens` into
// `dir`, every stage of every layer, with a greedy continuation of `max_new` tokens; the
// trace's meta names the model `name`.
model::TraceRunResult cpu_trace(const std::string& model_path, const std::string& name,
                                const std::vector<int32_t>& tokens, int max_new,
                                const std::string& dir);

// The worst stage over every comparison folded in: what the oracle falsifiers record.
struct OracleWorst {
  double cosine_min = 1.0;
  double nmse_max = 0.0;
};

// Prints the diff table of `d` (the oracle's trace of `dtype` against pv's CPU trace `run`
// of fixture `name`) and expects: every stage without a non-finite mismatch, cosine >=
// cosine_floor, NMSE <= nmse_bound and, where it holds logits, full argmax agreement; the
// greedy continuation equal to the oracle's; and the bisection over the pair finding no
// divergence. Folds every stage into `worst`.
void expect_matches_oracle(const std::string& name, const std::string& dtype,
                           const model::TraceDiff& d, const model::TraceRunResult& run,
                           const std::vector<int32_t>& oracle_greedy, double cosine_floor,
                           double nmse_bound, OracleWorst& worst);

// Records cosine_min and nmse_max, and the bounds they were held to.
void record_oracle_metrics(const OracleWorst& worst, double cosine_floor, double nmse_bound);

}  // namespace pv::testing
