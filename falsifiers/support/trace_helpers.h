// Test-only helpers for the trace falsifiers: a self-deleting temp directory and a
// one-call "trace this model on this backend into DIR".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "model/config.h"
#include "model/trace/trace_run.h"
#include "model/weights.h"

namespace pv::testing {

class TempDir {
 public:
  explicit TempDir(const std::string& tag);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Traces every stage of every layer for `tokens` into `dir` and generates `max_new`
// greedy tokens.
model::TraceRunResult trace_all(const model::ModelConfig& config, const model::ModelWeights& w,
                                kernels::Backend& backend, const std::vector<int32_t>& tokens,
                                const std::string& dir, int max_new = 4,
                                const std::string& dtype = "f32");

// Runs build/bin/pv with argv (no shell); returns the exit code, stdout in *out.
int run_pv(const std::vector<std::string>& args, std::string* out);

}  // namespace pv::testing
