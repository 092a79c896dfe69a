// Deliberately misbehaving GoogleTest binary: the subject of the harness's own
// falsifiers (contracts/pv-harness-v1.yaml). It is NOT part of pv_falsifiers, so the
// project's contracts never bind it; only the contracts under harness/testdata/ do.
// Each test always behaves the same way, so the harness's verdict on it is predictable.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "harness/testing/pv_test.h"

TEST(Fixture, Passes) {
  pv::testing::record_metric("cosine_min", 0.99999);
  EXPECT_EQ(2 + 2, 4);
}

TEST(Fixture, PassesToo) { pv::testing::record_metric("nmse_max", 1.5e-9); }

// Records the bound its falsifier's contract hands it (PV_THRESHOLD_ECHO_MAX), or 1.0
// when none arrives; bound by a falsifier with echo_max below 1, it passes only when the
// contract's number reached the test.
TEST(Fixture, RecordsItsThreshold) {
  pv::testing::record_metric("echo_max", pv::testing::threshold("echo_max", 1.0));
}

TEST(Fixture, Fails) {
  pv::testing::record_counterexample("h=5 maps to kv=1, expected kv=0");
  EXPECT_EQ(5 % 4, 5 / 8) << "kv head of h=5 with H=8, H_kv=2";
}

// A property that is false for x >= 10: rapidcheck shrinks the counterexample to 10.
RC_GTEST_PROP(Fixture, PropertyFails, (unsigned int x)) { RC_ASSERT(x % 1000u < 10u); }

// The same false property through rc::check inside a TEST: rapidcheck prints the
// counterexample to stderr and the gtest message only says the check returned false.
TEST(Fixture, RcCheckFails) {
  EXPECT_TRUE(rc::check("x % 1000 < 10", [](unsigned int x) { RC_ASSERT(x % 1000u < 10u); }));
}

TEST(Fixture, SkipsFixtureAbsent) { PV_SKIP_FIXTURE_ABSENT("cuda-device"); }

TEST(Fixture, SkipsWithoutReason) { GTEST_SKIP() << "no reason given"; }

TEST(Fixture, Crashes) {
  std::fflush(stdout);
  std::raise(SIGSEGV);
}

TEST(Fixture, Aborts) { std::abort(); }

TEST(Fixture, Sleeps) {
  // Tells a watching test which process to look for once pv is interrupted.
  if (const char* f = std::getenv("PV_FIXTURE_PID_FILE"); f != nullptr) {
    std::ofstream(f) << getpid() << "\n";
  }
  std::this_thread::sleep_for(std::chrono::seconds(60));
}

TEST(Fixture, RecordsSeed) {
  const uint64_t s = pv::testing::seed();
  pv::testing::record_metric("seed_low_bits", static_cast<double>(s & 0xFFFF));
}

// Parameterized and typed tests: the binding check must understand their listed names.
class FixtureParam : public ::testing::TestWithParam<int> {};
TEST_P(FixtureParam, Even) { EXPECT_EQ(GetParam() % 2, 0); }
INSTANTIATE_TEST_SUITE_P(Evens, FixtureParam, ::testing::Values(0, 2, 4));

template <typename T>
class FixtureTyped : public ::testing::Test {};
using FixtureTypes = ::testing::Types<int, double>;
TYPED_TEST_SUITE(FixtureTyped, FixtureTypes);
TYPED_TEST(FixtureTyped, ZeroIsZero) { EXPECT_EQ(TypeParam(0), TypeParam()); }
