// The StageSink behind `pv trace`: each captured stage becomes an APRT file in a trace
// directory, and finish() writes trace.json listing them in computation order.
#pragma once

#include <string>

#include "model/stages.h"
#include "model/trace/trace_dir.h"

namespace pv::model {

class TraceDirSink : public StageSink {
 public:
  // Creates `dir` (and layer-<N>/ folders as needed). `meta` supplies everything but the
  // entries, which the sink records as stages arrive.
  TraceDirSink(std::string dir, TraceMeta meta);

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
