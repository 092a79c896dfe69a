// libFuzzer target: the contract loader on arbitrary text. It reports problems as
// diagnostics and must never throw, crash or run long.
#include <cstdint>
#include <string>

#include "harness/contract.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  pv::harness::Diagnostics diags;
  pv::harness::load_contract_text("fuzz.yaml",
                                  std::string(reinterpret_cast<const char*>(data), size), diags);
  return 0;
}
