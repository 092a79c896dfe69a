// Comparing a reference tensor a with a candidate b (DESIGN.md "Comparing numbers").
// Every sum accumulates in double. Non-finite elements are counted and left out of the
// sums; a position that is NaN/Inf on one side only makes the pair "nonfinite_mismatch".
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/trace/trace_dir.h"

namespace pv::model {

struct DiffStats {
  size_t n = 0;
  double cosine = 1.0;   // 1 when both sides are all zero
  double max_abs = 0.0;  // max |a-b| over finite pairs
  size_t max_abs_index = 0;
  double rms = 0.0;      // sqrt(mean((a-b)^2))
  double nmse = 0.0;     // sum((a-b)^2) / sum(a^2); 0 if both 0, inf if only a is 0
  double sqnr_db = 0.0;  // 10 log10(sum(a^2) / sum((a-b)^2)); +inf when identical
  size_t nan_a = 0, inf_a = 0, nan_b = 0, inf_b = 0;
  bool nonfinite_mismatch = false;  // NaN/Inf on one side where the other is finite
  // Logits only ([rows, vocab]): fraction of rows whose argmax agrees, and mean |top-k(a)
  // ∩ top-k(b)| / k over rows.
  std::optional<double> argmax_agreement;
  std::optional<double> topk_overlap;
  int top_k = 0;
};

DiffStats compare_tensors(const float* a, const float* b, size_t n);
// Adds argmax agreement and top-k overlap for logits laid out [rows, vocab].
void add_logit_stats(DiffStats& s, const float* a, const float* b, size_t rows, size_t vocab,
                     int k);

struct StageDiff {
  Stage stage;
  int layer;
  std::vector<int64_t> shape;
  DiffStats stats;
  bool qk_normalised = false;  // one side's q/k rows were put in HF order before comparing
  std::string user = {};       // a user stage's name (stage is then meaningless)
};
// The stage's name / "L3 name" label, user stages included.
std::string stage_diff_name(const StageDiff& d);
std::string stage_diff_label(const StageDiff& d);

struct TraceDiff {
  TraceMeta a, b;
  std::vector<StageDiff> stages;  // computation order
  // Non-empty when one side's q/k rows were normalised: says which side and which stages.
  std::string qk_note;
};

// How diff_trace_dirs treats the q/k stages (is_qk_row_stage) of two traces whose
// trace.json "qk_rows" differ.
enum class QkRows {
  // Undo llama.cpp's per-head permutation on the "gguf-llama-permuted" side, so both are
  // compared in HF order; refuse (throw) when either side's order is unknown.
  Normalise,
  // Compare the rows as stored, whatever their order (shows what normalising fixes).
  AsIs,
};

// Compares every stage present in both traces: each an APRT directory or a safetensors
// trace file (model/trace/trace_store.h), in either combination. Stages are matched by
// name (aliases resolved) and layer, and listed in the reference (a) trace's order. Throws a clear
// error (both file paths and shapes) when a shared stage's shape differs, when the layer counts
// differ, when `require_same_stages` and one side has stages the other lacks, or (Normalise) when
// a shared q/k stage's row order is unknown on either side.
TraceDiff diff_trace_dirs(const std::string& dir_a, const std::string& dir_b, int top_k,
                          bool require_same_stages, QkRows qk = QkRows::Normalise);

// Inverse of llama.cpp's convert_hf_to_gguf permute() for llama q/k: within each of
// `n_heads` heads of `head_dim` columns starting at column `col0` of every one of `rows`
// rows of width `width`, the value at 2j+s moves to s*head_dim/2 + j (s in {0, 1}).
void unpermute_gguf_llama_qk(float* data, int64_t rows, int64_t width, int64_t col0, int n_heads,
                             int head_dim);

// Throws, naming both token lists, when the two traces ran different tokens: stage
// drift between different inputs says nothing about either engine.
void require_same_tokens(const TraceMeta& a, const TraceMeta& b, const std::string& dir_a,
                         const std::string& dir_b);
std::string tokens_str(const std::vector<int32_t>& tokens);
// Compares two APRT files (shape = [count]); refuses different layers or counts.
StageDiff diff_aprt_files(const std::string& file_a, const std::string& file_b);

std::string shape_str(const std::vector<int64_t>& shape);

}  // namespace pv::model
