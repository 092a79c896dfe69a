// The runners beyond GoogleTest: ctest, pytest, cargo test and plain commands. For each, how
// a binding resolves to a program (never a shell), how its own listing proves the bound
// test exists before anything runs, and how its machine-readable report turns into a
// TestRun (harness/README.md, "Bound tests").
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "harness/contract.h"
#include "harness/gtest_listing.h"
#include "harness/gtest_result.h"
#include "harness/process.h"
#include "harness/repo_config.h"

namespace pv::harness {

// Where test programs live: --bin-dir first, then pv.yaml's bin_dirs; pv.yaml's runners.
struct RunWhere {
  std::vector<std::string> bin_dirs;
  RepoConfig config;
};

// A binding made concrete: the program and fixed arguments, working directory, env.
struct Invocation {
  std::vector<std::string> argv;  // argv[0] an absolute path, or a name to find in $PATH
  bool search_path = false;
  std::string cwd;  // "" -> inherit
  std::string dir;  // ctest build tree / cargo crate (absolute)
  std::map<std::string, std::string> env;
  std::string error;  // why the binding cannot be resolved ("" when it can)
};
// `root` is the contract's source root: relative paths in the binding are relative to it.
Invocation resolve_binding(const TestBinding& b, const std::string& root, const RunWhere& where);

// Lists what the binding's runner offers (cached per program, tree and arguments) and
// says whether the bound test is among it: "" when it is, else the problem, naming the
// listing command and the nearest listed name.
class BindingChecker {
 public:
  BindingChecker(ListingCache& gtest, const RunWhere& where) : gtest_(gtest), where_(where) {}
  std::string check(const TestBinding& b, const std::string& root);
  int listed() const { return listed_; }

 private:
  ListingCache& gtest_;
  const RunWhere& where_;
  std::mutex mu_;
  std::map<std::string, Listing> cache_;
  int listed_ = 0;
};

// The per-runner listings (argv built from the invocation; exposed for tests).
Listing list_pytest(const Invocation& inv);
Listing list_ctest(const Invocation& inv);
Listing list_cargo(const Invocation& inv);
std::set<std::string> parse_pytest_collect(std::string_view text);
std::set<std::string> parse_cargo_list(std::string_view text);
// pytest ids: the bound id is listed, or is a file/class/function whose items are listed.
bool pytest_id_listed(const std::set<std::string>& listed, const std::string& id);

// What a runner's report says about the test(s) one binding ran.
struct Outcome {
  int passed = 0, failed = 0, skipped = 0;
  std::string failure;      // first failure message
  std::string skip_reason;  // first skip reason
  double duration_ms = -1;  // from the report, when it says
  std::map<std::string, double> metrics;
  std::vector<std::string> executed;
  bool exit_code_explained = false;  // the runner already read the exit code as its verdict
  std::string report_problem;        // why the report could not be read
};

// The result file protocol (PV_RESULT_FILE): JSON {metrics: {name: number}, skip_reason,
// counterexample, failure, seed}. Absent is fine; present but unreadable is a failure.
struct ResultFile {
  bool present = false;
  std::string error;
  std::map<std::string, double> metrics;
  std::string skip_reason, counterexample, failure;
  std::optional<uint64_t> seed;
};
ResultFile read_result_file(const std::string& path);

// The common verdict: the process's fate, then the report, then the result file. A skip
// whose reason does not start with "fixture-absent: " is a failure, as for gtest.
TestRun settle_run(const TestBinding& b, const Outcome& o, const ProcessResult& proc,
                   const ResultFile& rf, uint64_t seed);

// Runs one non-gtest binding (`extra_env`: thresholds, seed; the result file is added).
TestRun run_foreign(const TestBinding& b, const Invocation& inv,
                    std::map<std::string, std::string> extra_env, uint64_t seed,
                    std::chrono::milliseconds timeout);

// Per-runner halves of run_foreign: the argv that runs the test writing its report to
// `report`, and how the report (and the process) become an Outcome.
std::vector<std::string> pytest_argv(const TestBinding& b, const Invocation& inv,
                                     const std::string& report);
Outcome pytest_outcome(const std::string& report_text, const ProcessResult& proc);
std::vector<std::string> ctest_argv(const TestBinding& b, const Invocation& inv,
                                    const std::string& report);
Outcome ctest_outcome(const std::string& report_text, const ProcessResult& proc);
std::vector<std::string> cargo_argv(const TestBinding& b, const Invocation& inv);
Outcome cargo_outcome(const std::string& id, const ProcessResult& proc);
Outcome command_outcome(const ProcessResult& proc);

}  // namespace pv::harness
