// libFuzzer target: evidence bundles (parse_bundle). A bad bundle is a runtime_error naming
// the file (fuzz_check.h); anything else is a finding.
#include <cstdint>
#include <string>

#include "fuzz/fuzz_check.h"
#include "harness/evidence.h"

PV_FUZZ_TARGET(bundle) {
  try {
    pv::harness::parse_bundle("fuzz.json", std::string(reinterpret_cast<const char*>(data), size));
  } catch (...) {
    pv::fuzz::expect_refusal("fuzz.json");
  }
  return 0;
}
