// What the pv-harness falsifiers (pv_harness*_test.cpp) share to drive the real pv binary
// against the contracts under harness/testdata/ and to read the evidence it wrote.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "harness/process.h"

namespace pv::testing::harness_cli {

// The build's bin/ (pv, pv_harness_fixture_tests).
std::string bin_dir();
// harness/testdata/<name> in the source tree.
std::string testdata(const std::string& name);
// The whole file, or "" when it cannot be read.
std::string slurp(const std::string& path);
// The file as JSON; a discarded value when it is missing or not JSON.
nlohmann::json read_json(const std::string& path);
// Runs bin/pv with `args` (no shell) and `env` added; two minutes at most, 1 MiB of output.
harness::ProcessResult run_pv(std::vector<std::string> args,
                              std::map<std::string, std::string> env = {});
// The bundle a run with PV_MACHINE_ID=<machine> wrote for one falsifier.
nlohmann::json bundle(const std::string& evidence, const std::string& machine,
                      const std::string& contract, const std::string& falsifier);

}  // namespace pv::testing::harness_cli
