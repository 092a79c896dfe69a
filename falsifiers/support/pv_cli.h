// Driving the real pv binary from a test: the tests of CLI behaviour run `pv ...` as a
// user would (a child process with its own environment and working directory) on a scratch
// tree (scratch_files.h), and read back what it wrote.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "harness/process.h"

namespace pv::testing {

// The build's bin directory (pv, pv_falsifiers and the other test binaries).
std::string bin_dir();

// Runs bin_dir()/pv with `args`; `env` adds to (or overrides) the inherited environment;
// `cwd` empty keeps the test's. Output tails up to 1 MiB are kept.
pv::harness::ProcessResult run_pv(const std::vector<std::string>& args,
                                  const std::map<std::string, std::string>& env = {},
                                  const std::string& cwd = "",
                                  std::chrono::seconds timeout = std::chrono::seconds(120));

// The whole file (binary); "" when it cannot be read.
std::string read_text(const std::filesystem::path& path);

}  // namespace pv::testing
