// contracts/qwen2-cpu-vs-hf-oracle-v1.yaml: every stage of the F32 fixtures, traced by
// the CPU forward, stays within stated thresholds of the trace HF transformers wrote for
// the same weights and tokens (tools/hf_oracle.py, committed under evidence/oracle/), and
// the greedy continuations are identical.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <limits>

#include "falsifiers/support/hf_oracle.h"
#include "falsifiers/support/temp_dir.h"
#include "harness/testing/pv_test.h"
#include "model/trace/trace_compare.h"

namespace {

namespace fs = std::filesystem;

// FALSIFY-ORACLE-002's thresholds (qwen2-cpu-vs-hf-oracle-v1.yaml), which pv validate
// hands the test; the same numbers apply when it runs outside pv validate.
constexpr double kCosineFloor = 1.0 - 1e-10;
constexpr double kNmseMax = 1e-10;

constexpr const char* kFixtures[] = {"qwen2-gqa4", "qwen2-gqa7-tied", "llama-gqa8"};

// Runs the CPU trace of a fixture's HF directory with the oracle's tokens and compares
// it stage by stage with the oracle trace of `dtype` ("f32" or "f64").
void check_against_oracle(const std::string& dtype) {
  const std::string root = pv::testing::source_dir();
  for (const char* name : kFixtures) {
    const std::string oracle = root + "/evidence/oracle/" + name + "/" + dtype;
    const std::string model_dir = root + "/model/fixtures/" + name + "/hf";
    if (!fs::exists(oracle + "/trace.json")) PV_SKIP_FIXTURE_ABSENT(std::string("oracle:") + name);
    if (!fs::exists(model_dir + "/config.json"))
      PV_SKIP_FIXTURE_ABSENT(std::string("model:") + name);
  }
  const double cosine_floor = pv::testing::threshold("cosine_min", kCosineFloor);
  const double nmse_bound = pv::testing::threshold("nmse_max", kNmseMax);
  pv::testing::OracleWorst worst;
  for (const char* name : kFixtures) {
    const std::string oracle = root + "/evidence/oracle/" + name + "/" + dtype;
    const std::string model_dir = root + "/model/fixtures/" + name + "/hf";
    const auto ometa = pv::model::read_trace_meta(oracle);
    pv::testing::TempDir tmp(std::string("oracle-") + name);
    const auto run = pv::testing::cpu_trace(
        model_dir, name, ometa.tokens, static_cast<int>(ometa.greedy_tokens.size()), tmp.path());
    const auto d = pv::model::diff_trace_dirs(oracle, tmp.path(), 5, true);
    ASSERT_EQ(d.stages.size(), size_t(3 + 17 * run.meta.n_layers)) << name;
    pv::testing::expect_matches_oracle(name, dtype, d, run, ometa.greedy_tokens, cosine_floor,
                                       nmse_bound, worst);
  }
  pv::testing::record_oracle_metrics(worst, cosine_floor, nmse_bound);
}

// The comparison itself on inputs with known answers (no model, no oracle).
TEST(Qwen2CpuVsHfOracle, Falsify001_MetricsKnownAnswers) {
  const std::vector<float> a = {1, 2, 3, 4}, twice = {2, 4, 6, 8}, b = {1, 2, 3, 5};
  auto s = pv::model::compare_tensors(a.data(), twice.data(), 4);
  EXPECT_NEAR(s.cosine, 1.0, 1e-15);  // cosine is scale-blind ...
  EXPECT_NEAR(s.nmse, 1.0, 1e-15);    // ... NMSE is not: sum(a^2)/sum(a^2)
  EXPECT_NEAR(s.sqnr_db, 0.0, 1e-12);
  s = pv::model::compare_tensors(a.data(), b.data(), 4);
  EXPECT_NEAR(s.nmse, 1.0 / 30.0, 1e-15);
  EXPECT_EQ(s.max_abs, 1.0);
  EXPECT_EQ(s.max_abs_index, 3u);
  EXPECT_NEAR(s.rms, 0.5, 1e-15);
  EXPECT_NEAR(s.cosine, 34.0 / std::sqrt(30.0 * 39.0), 1e-15);
  EXPECT_NEAR(s.sqnr_db, 10 * std::log10(30.0), 1e-12);
  const std::vector<float> nan = {1, std::numeric_limits<float>::quiet_NaN(), 3, 4};
  s = pv::model::compare_tensors(a.data(), nan.data(), 4);
  EXPECT_TRUE(s.nonfinite_mismatch);
  EXPECT_EQ(s.nan_b, 1u);
  // Logits: rows [2, 4]; row 0 argmax agrees, row 1 does not.
  const std::vector<float> la = {0, 5, 1, 2, 9, 0, 1, 2}, lb = {0, 6, 1, 2, 0, 9, 1, 2};
  s = pv::model::compare_tensors(la.data(), lb.data(), 8);
  pv::model::add_logit_stats(s, la.data(), lb.data(), 2, 4, 2);
  EXPECT_EQ(*s.argmax_agreement, 0.5);
  EXPECT_EQ(*s.topk_overlap, 0.75);  // row 0: {1,3} vs {1,3}; row 1: {0,3} vs {1,3}
}

TEST(Qwen2CpuVsHfOracle, Falsify002_FixturesVsHfFloat32) { check_against_oracle("f32"); }

TEST(Qwen2CpuVsHfOracle, Falsify002_FixturesVsHfFloat64) { check_against_oracle("f64"); }

}  // namespace
