// Runs bound tests: one process per (test, run), the binary executed directly with
// --gtest_filter and --gtest_output=json (other runners: harness/runners.h), PV_SEED /
// RC_PARAMS set, a per-test timeout, and --jobs N processes at once. A falsifier's thresholds reach
// its tests as PV_THRESHOLD_<NAME>=<bound> (NAME: the key upper-cased, other characters '_') and
// PV_THRESHOLDS={"<key>": {"metric": "<m>", "max"|"min": <bound>}, ...}.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "harness/contract.h"
#include "harness/gtest_result.h"
#include "harness/runners.h"

namespace pv::harness {

struct RunJob {
  std::string binary;   // gtest: plain file name inside a bin dir; else the runner's name
  std::string test;     // gtest filter (a full name or a pattern), or the runner's test id
  TestBinding binding;  // the binding as the contract states it (runner, args, env, cwd)
  std::string root;     // the contract's source root (relative binding paths)
  uint64_t seed = 0;
  std::map<std::string, std::string> env;  // added to the test's environment (thresholds)
};

struct RunnerOptions {
  std::string bin_dir;
  RunWhere where;  // bin dirs (bin_dir first) and pv.yaml's runners
  int jobs = 1;
  std::chrono::milliseconds timeout{std::chrono::minutes(10)};
  // Called (serialized) after each job finishes: (done, total, the job).
  std::function<void(size_t, size_t, const RunJob&)> progress;
  // Filled (by run_tests, serialized) with the message of every EnvironmentError a job hit
  // (pv's temp dir full or unwritable): those runs say nothing about their tests.
  std::vector<std::string>* environment_errors = nullptr;
};

// The environment that hands `thresholds` to a test (see above).
std::map<std::string, std::string> threshold_env(const std::vector<Threshold>& thresholds);
std::string threshold_env_name(std::string_view key);

// Throws EnvironmentError when pv's own temp dir fails the run (temp_files.h).
TestRun run_one(const RunJob& job, const RunnerOptions& opts);
// Results in the order of `jobs`. An exception in a job (EnvironmentError, bad_alloc, ...)
// never leaves a worker thread: it fails that job's run with a message naming the binding.
std::vector<TestRun> run_tests(const std::vector<RunJob>& jobs, const RunnerOptions& opts);

}  // namespace pv::harness
