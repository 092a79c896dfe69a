// libFuzzer target: gtest JSON reports (interpret_gtest_run), which must never throw: they
// are read on the runner's worker threads.
#include <cstdint>
#include <string>

#include "harness/gtest_result.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  pv::harness::ProcessResult proc;
  proc.started = true;
  proc.stdout_text.assign(reinterpret_cast<const char*>(data), size);
  pv::harness::interpret_gtest_run("bin", "Suite.Test",
                                   std::string(reinterpret_cast<const char*>(data), size), proc, 1);
  return 0;
}
