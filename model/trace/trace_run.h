// One traced run: a prefill of `tokens` with a stage plan writing a trace directory,
// then a greedy continuation (recorded in trace.json as greedy_tokens). Shared by
// `pv trace` and the falsifiers, so the tests exercise exactly what the CLI does.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/forward.h"
#include "model/trace/trace_dir.h"

namespace pv::model {

struct TraceRunResult {
  TraceMeta meta;              // what trace.json holds
  std::vector<float> logits;   // [T, vocab] of the traced prefill
  uint64_t bytes_written = 0;  // APRT bytes
};

// Parses "all" or a comma list of stage names (layer_output accepted); throws naming the
// unknown name and the valid ones.
std::array<bool, kStageCount> parse_stage_list(const std::string& list);
// Parses "all" or a comma list of layers and ranges ("0,2-3"); throws when a layer is
// outside [0, n_layers).
StagePlan parse_plan(const std::string& stages, const std::string& layers, int n_layers);

// `meta` supplies model/backend/dtype/producer; tokens, n_layers, entries and greedy
// tokens are filled in. The forward is reset before and after.
TraceRunResult run_trace(Forward& forward, const std::vector<int32_t>& tokens,
                         const StagePlan& plan, const std::string& out_dir, TraceMeta meta,
                         int max_new);

}  // namespace pv::model
