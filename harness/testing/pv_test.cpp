#include "harness/testing/pv_test.h"

#include <cctype>
#include <chrono>
#include <cmath>
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

double threshold(std::string_view name, double fallback) {
  std::string var = "PV_THRESHOLD_";
  for (char ch : name) {
    var += std::isalnum(static_cast<unsigned char>(ch))
               ? static_cast<char>(std::toupper(static_cast<unsigned char>(ch)))
               : '_';
  }
  double v = fallback;
  const char* from = "the test's default";
  if (const char* env = std::getenv(var.c_str()); env != nullptr && *env != '\0') {
    char* end = nullptr;
    const double x = std::strtod(env, &end);
    if (end == env || *end != '\0' || !std::isfinite(x)) {
      ADD_FAILURE() << var << "='" << env << "' is not a finite number";
    } else {
      v = x;
      from = "the contract";
    }
  }
  std::printf("pv threshold %s = %.9g (from %s)\n", std::string(name).c_str(), v, from);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  ::testing::Test::RecordProperty("threshold." + std::string(name), buf);
  return v;
}

std::string source_dir() {
  if (const char* env = std::getenv("PV_SOURCE_DIR"); env != nullptr && *env != '\0') return env;
  return PV_SOURCE_DIR;
}

}  // namespace pv::testing
