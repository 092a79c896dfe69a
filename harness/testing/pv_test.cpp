#include "harness/testing/pv_test.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

namespace pv::testing {

void record_metric(std::string_view name, double value) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", value);
  ::testing::Test::RecordProperty("metric." + std::string(name), buf);
}

void record_counterexample(std::string_view text) {
  ::testing::Test::RecordProperty("counterexample", std::string(text));
}

uint64_t seed() {
  uint64_t s = 0;
  if (const char* env = std::getenv("PV_SEED"); env != nullptr && *env != '\0') {
    s = std::strtoull(env, nullptr, 10);
  } else {
    std::random_device rd;
    s = (static_cast<uint64_t>(rd()) << 32) ^ rd() ^
        static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    s &= 0xFFFFFFFFFFFFull;  // keep it short enough to type back in
  }
  std::printf("pv seed: %llu (replay with PV_SEED=%llu)\n", static_cast<unsigned long long>(s),
              static_cast<unsigned long long>(s));
  ::testing::Test::RecordProperty("seed", std::to_string(s));
  return s;
}

std::string source_dir() {
  if (const char* env = std::getenv("PV_SOURCE_DIR"); env != nullptr && *env != '\0') return env;
  return PV_SOURCE_DIR;
}

}  // namespace pv::testing
