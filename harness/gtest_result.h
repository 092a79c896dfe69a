// One execution of one bound test (a binding may run several times: runs: N), and how
// GoogleTest's JSON report and the process's fate turn into it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "harness/process.h"

namespace pv::harness {

enum class TestResult { kPassed, kFailed, kSkipped };
std::string_view test_result_name(TestResult r);

struct TestRun {
  std::string binary;
  std::string name;  // the bound test (or pattern) as the contract names it
  TestResult result = TestResult::kFailed;
  std::string skip_reason;     // "fixture-absent: <name>" when skipped
  std::string failure;         // plain summary of why it failed (first failure message)
  std::string counterexample;  // the refuting input (rapidcheck's shrunk value, or recorded)
  std::string reproduce;       // rapidcheck's RC_PARAMS="reproduce=..." when it printed one
  uint64_t seed = 0;           // the seed the harness gave it (or the one the test recorded)
  double duration_ms = 0;
  std::map<std::string, double> metrics;
  std::map<std::string, std::string> env;  // "env.<key>" properties (e.g. cuda_runtime)
  int exit_code = 0;
  int term_signal = 0;
  bool timed_out = false;
  std::string output_tail;            // stdout+stderr tail, kept when it failed
  std::string credited_from;          // set when a committed bundle earned it (see grader)
  std::vector<std::string> executed;  // full gtest names the run covered
};

// Turns the gtest JSON report (may be empty/partial when the process died) plus the
// process's fate into a TestRun. A skip whose reason is not "fixture-absent: <name>" is
// a failure: an unexplained skip is not allowed.
// A report that cannot be read (report_error), is nested too deep or holds a value of the
// wrong type fails the run with a message naming the place; it never throws.
TestRun interpret_gtest_run(const std::string& binary, const std::string& name,
                            const std::string& json_text, const ProcessResult& proc, uint64_t seed,
                            const std::string& report_error = {});

// The gtest JSON report at `path`, at most kMaxGtestReportBytes; "" when there is none (the
// process died first). A report that cannot be read sets *error (naming the file).
std::string read_gtest_report(const std::string& path, std::string* error);

// From a rapidcheck failure message: "Falsifiable after ...\n\n<type>:\n<value>".
std::string extract_rapidcheck_counterexample(const std::string& failure);
// From output: the reproduce=... token rapidcheck prints at exit.
std::string extract_rapidcheck_reproduce(const std::string& output);

}  // namespace pv::harness
