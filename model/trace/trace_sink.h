// The StageSink behind `pv trace`: each captured stage becomes an APRT file in a trace
// directory, and finish() writes trace.json listing them in computation order.
#pragma once

#include <string>

#include "model/config.h"
#include "model/stages.h"
#include "model/trace/trace_dir.h"

namespace pv::model {

// The row order of the q/k stages a forward over `config` captures. The forward applies
// RoPE in the weights' own pairing, so the pairing says the order: Interleaved pairs
// (2i, 2i+1) exist only because llama.cpp's converter permuted a llama checkpoint's q/k
// rows (model/loading/loader.h); HalfSplit pairs (i, i + D/2) are the checkpoint order.
std::string qk_rows_of(const ModelConfig& config);

class TraceDirSink : public StageSink {
 public:
  // Creates `dir` (and layer-<N>/ folders as needed). `meta` supplies everything but the
  // entries, which the sink records as stages arrive, and the q/k row layout and head
  // geometry, which come from `config` (qk_rows_of).
  TraceDirSink(std::string dir, TraceMeta meta, const ModelConfig& config);

  void on_stage(Stage stage, int layer, const float* data,
                const std::vector<int64_t>& shape) override;
  // Writes trace.json; call after the forward pass (and after setting greedy tokens).
  void finish();

  TraceMeta& meta() { return meta_; }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  TraceMeta meta_;
};

}  // namespace pv::model
