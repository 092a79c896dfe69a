#include "falsifiers/support/hf_oracle.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>

#include "harness/testing/pv_test.h"
#include "kernels/cpu/cpu_backend.h"
#include "model/forward.h"
#include "model/loading/loader.h"
#include "model/trace/bisect.h"
#include "model/trace/trace_report.h"

namespace pv::testing {

model::TraceRunResult cpu_trace(const std::string& model_path, const std::string& name,
                                const std::vector<int32_t>& tokens, int max_new,
                                const std::string& dir) {
  auto lm = model::load_model(model_path);
  kernels::CpuBackend cpu(1);
  model::Forward f(lm.config, lm.weights, cpu, 64);
  model::TraceMeta meta;
  meta.producer = "pv_falsifiers";
  meta.model = name;
  meta.weight_type = "F32";
  const auto plan = model::parse_plan("all", "all", lm.config.n_layers);
  return model::run_trace(f, tokens, plan, dir, meta, max_new);
}

void expect_matches_oracle(const std::string& name, const std::string& dtype,
                           const model::TraceDiff& d, const model::TraceRunResult& run,
                           const std::vector<int32_t>& oracle_greedy, double cosine_floor,
                           double nmse_bound, OracleWorst& worst) {
  std::cout << name << " CPU f32 vs HF " << dtype << ":\n" << model::diff_table(d);
  for (const auto& s : d.stages) {
    const std::string where = name + " " + model::entry_label(s.stage, s.layer);
    worst.cosine_min = std::min(worst.cosine_min, s.stats.cosine);
    worst.nmse_max = std::max(worst.nmse_max, s.stats.nmse);
    EXPECT_FALSE(s.stats.nonfinite_mismatch) << where;
    EXPECT_GE(s.stats.cosine, cosine_floor) << where;
    EXPECT_LE(s.stats.nmse, nmse_bound) << where;
    if (s.stats.argmax_agreement) {
      EXPECT_EQ(*s.stats.argmax_agreement, 1.0) << where;
    }
  }
  EXPECT_EQ(run.meta.greedy_tokens, oracle_greedy) << name << ": greedy tokens differ";
  // The bisection over the same pair must agree: nothing diverges.
  const auto b = model::bisect(d, model::BisectCriterion{});
  EXPECT_FALSE(b.first.has_value()) << name << ": bisect flagged " << b.reason;
}

void record_oracle_metrics(const OracleWorst& worst, double cosine_floor, double nmse_bound) {
  record_metric("cosine_min", worst.cosine_min);
  record_metric("nmse_max", worst.nmse_max);
  record_metric("threshold_cosine_floor", cosine_floor);
  record_metric("threshold_nmse_max", nmse_bound);
}

}  // namespace pv::testing
