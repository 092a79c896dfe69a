// What the pv-harness falsifiers (pv_harness*_test.cpp) share to drive the real pv binary
// (pv_cli.h: run_pv, bin_dir, read_text) against the contracts under harness/testdata/ and
// to read the evidence it wrote.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "falsifiers/support/pv_cli.h"

namespace pv::testing::harness_cli {

// harness/testdata/<name> in the source tree.
std::string testdata(const std::string& name);
// The file as JSON; a discarded value when it is missing or not JSON.
nlohmann::json read_json(const std::string& path);
// The bundle a run with PV_MACHINE_ID=<machine> wrote for one falsifier.
nlohmann::json bundle(const std::string& evidence, const std::string& machine,
                      const std::string& contract, const std::string& falsifier);

}  // namespace pv::testing::harness_cli
