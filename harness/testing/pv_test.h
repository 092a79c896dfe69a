// The small helper falsifier tests use to reach the evidence bundle. Everything goes
// through GoogleTest's RecordProperty, which --gtest_output=json carries to the
// harness (harness/ parses it; it never links this file):
//   metric.<name>   -> tests[].metrics.<name>       (cosine_min, nmse_max, max_abs, ...)
//   seed            -> tests[].seed                 (every random test records its seed)
//   skip_reason     -> tests[].skip_reason          ("fixture-absent: <name>")
//   counterexample  -> tests[].counterexample
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace pv::testing {

void record_metric(std::string_view name, double value);
void record_counterexample(std::string_view text);

// The seed for this test's randomness: $PV_SEED when set (the harness sets it, and a
// failure is replayed with it), else a fresh one. Printed and recorded either way.
uint64_t seed();

// A bound the contract states for this test's falsifier (its `thresholds:` entry named
// `name`, e.g. "nmse_max"), which pv validate passes as $PV_THRESHOLD_<NAME>; `fallback`
// when the test runs outside pv validate. Printed and recorded (threshold.<name>) either
// way, so the log says which limit the test applied. A value that is not a number fails
// the test and gives `fallback`.
double threshold(std::string_view name, double fallback);

// Root of the source tree (fixtures, contracts): $PV_SOURCE_DIR or the build-time path.
std::string source_dir();

}  // namespace pv::testing

// Skip a test because a fixture is absent; the harness caps the level that needed it.
// Never use a bare GTEST_SKIP(): a skip without a fixture name is graded as a failure.
#define PV_SKIP_FIXTURE_ABSENT(fixture_name)                                           \
  do {                                                                                 \
    ::testing::Test::RecordProperty("skip_reason",                                     \
                                    std::string("fixture-absent: ") + (fixture_name)); \
    GTEST_SKIP() << "fixture-absent: " << (fixture_name);                              \
  } while (0)
