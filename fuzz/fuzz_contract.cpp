// libFuzzer target: the contract loader on arbitrary text. It reports problems as
// diagnostics and must never throw, crash or run long.
#include <cstdint>
#include <exception>
#include <string>

#include "fuzz/fuzz_check.h"
#include "harness/contract.h"

PV_FUZZ_TARGET(contract) {
  pv::harness::Diagnostics diags;
  try {
    pv::harness::load_contract_text("fuzz.yaml",
                                    std::string(reinterpret_cast<const char*>(data), size), diags);
  } catch (const std::exception& e) {
    pv::fuzz::finding("load_contract_text threw instead of reporting a diagnostic", e.what());
  }
  return 0;
}
