// A trace directory (DESIGN.md "Traces"): layer-<N>/<stage>.bin for per-layer stages,
// <stage>.bin for whole-model stages, and trace.json describing them. The same layout
// is written by `pv trace` (model/trace_sink) and by tools/hf_oracle.py.
//
// trace.json, schema "pv-trace-v1":
//   { "schema": "pv-trace-v1", "producer": "pv trace" | "hf_oracle.py ...",
//     "model": "<path or name>", "architecture": "qwen2" | "llama",
//     "backend": "cpu" | "cuda" | "hf-transformers", "dtype": "f32" | "f64" | ...,
//     "weight_type": "F32" | "Q4_K" | ... (optional; bisect's quantization noise prior),
//     "n_layers": N, "tokens": [ids], "greedy_tokens": [ids] (optional),
//     "stages": [ { "stage": "attn_norm", "layer": 0 | null, "file": "layer-0/attn_norm.bin",
//                   "shape": [T, hidden] }, ... ]   (computation order) }
// Files hold float32 whatever the producing dtype was.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/stages.h"

namespace pv::model {

inline constexpr const char* kTraceSchema = "pv-trace-v1";

struct TraceEntry {
  Stage stage = Stage::embedding;
  int layer = -1;    // -1 for whole-model stages
  std::string file;  // relative to the trace directory
  std::vector<int64_t> shape;
};

struct TraceMeta {
  std::string producer;
  std::string model;
  std::string architecture;
  std::string backend;
  std::string dtype = "f32";
  std::string weight_type;  // dominant stored type of the 2-D weights ("F32", "Q4_K", ...)
  int n_layers = 0;
  std::vector<int32_t> tokens;
  std::vector<int32_t> greedy_tokens;
  std::vector<TraceEntry> entries;  // kept in computation order
};

// "layer-<N>/<stage>.bin" or "<stage>.bin".
std::string stage_file(Stage stage, int layer);
// Computation-order key: embedding, then layer 0's stages, layer 1's, ..., final_norm, lm_head.
int64_t computation_order(Stage stage, int layer);
void sort_entries(std::vector<TraceEntry>& entries);
// "L3 attn_scores" / "lm_head".
std::string entry_label(Stage stage, int layer);

// Throws std::runtime_error naming the file (and the JSON key or byte position).
TraceMeta read_trace_meta(const std::string& dir);
void write_trace_meta(const std::string& dir, const TraceMeta& meta);

}  // namespace pv::model
