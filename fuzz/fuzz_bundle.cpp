// libFuzzer target: evidence bundles (parse_bundle). A bad bundle is a runtime_error naming
// the file; anything else is a finding.
#include <cstdint>
#include <stdexcept>
#include <string>

#include "harness/evidence.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    pv::harness::parse_bundle("fuzz.json", std::string(reinterpret_cast<const char*>(data), size));
  } catch (const std::runtime_error&) {
  }
  return 0;
}
