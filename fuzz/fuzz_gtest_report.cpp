// libFuzzer target: gtest JSON reports (interpret_gtest_run), which must never throw: they
// are read on the runner's worker threads, where an escaping exception ends pv.
#include <cstdint>
#include <exception>
#include <string>

#include "fuzz/fuzz_check.h"
#include "harness/gtest_result.h"

PV_FUZZ_TARGET(gtest_report) {
  pv::harness::ProcessResult proc;
  proc.started = true;
  proc.stdout_text.assign(reinterpret_cast<const char*>(data), size);
  try {
    pv::harness::interpret_gtest_run(
        "bin", "Suite.Test", std::string(reinterpret_cast<const char*>(data), size), proc, 1);
  } catch (const std::exception& e) {
    pv::fuzz::finding("interpret_gtest_run threw", e.what());
  }
  return 0;
}
