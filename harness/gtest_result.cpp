#include "harness/gtest_result.h"

#include <fmt/format.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "harness/input_limits.h"

namespace pv::harness {
namespace {

constexpr std::string_view kFixturePrefix = "fixture-absent: ";

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && (s[i] == '\n' || s[i] == ' ')) ++i;
  return s.substr(i);
}

std::string prop_string(const nlohmann::json& t, const char* key) {
  if (!t.contains(key)) return {};
  const auto& v = t[key];
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

}  // namespace

std::string_view test_result_name(TestResult r) {
  switch (r) {
    case TestResult::kPassed:
      return "passed";
    case TestResult::kSkipped:
      return "skipped";
    case TestResult::kFailed:
      break;
  }
  return "failed";
}

std::string extract_rapidcheck_counterexample(const std::string& failure) {
  const auto at = failure.find("Falsifiable after");
  if (at == std::string::npos) return {};
  // "Falsifiable after N tests and M shrinks\n\n<type>:\n<value>\n\n<file>:<line>:..."
  auto first_blank = failure.find("\n\n", at);
  if (first_blank == std::string::npos) return trim(failure.substr(at));
  auto second_blank = failure.find("\n\n", first_blank + 2);
  return trim(failure.substr(
      at, second_blank == std::string::npos ? std::string::npos : second_blank - at));
}

std::string extract_rapidcheck_reproduce(const std::string& output) {
  const auto at = output.rfind("reproduce=");
  if (at == std::string::npos) return {};
  size_t end = at + 10;
  while (end < output.size() && (std::isalnum(static_cast<unsigned char>(output[end])) ||
                                 output[end] == '_' || output[end] == '-' || output[end] == '=')) {
    ++end;
  }
  return "RC_PARAMS=\"" + output.substr(at, end - at) + "\"";
}

TestRun interpret_gtest_run(const std::string& binary, const std::string& name,
                            const std::string& json_text, const ProcessResult& proc, uint64_t seed,
                            const std::string& report_error) {
  TestRun r;
  r.binary = binary;
  r.name = name;
  r.seed = seed;
  r.duration_ms = proc.duration_ms;
  r.exit_code = proc.exit_code;
  r.term_signal = proc.term_signal;
  r.timed_out = proc.timed_out;
  const std::string output = proc.stdout_text + proc.stderr_text;

  int passed = 0, failed = 0, skipped = 0;
  bool have_duration = false;
  bool cx_is_raw = false;  // the counterexample is only the failure message
  double duration_ms = 0;
  nlohmann::json doc;
  // A report that is unreadable, too deep or of the wrong shape is an error of this test
  // (named with the JSON pointer of the bad value), never an exception: this runs on the
  // runner's worker threads, where an escaping exception ends pv in std::terminate.
  std::string report_problem = report_error;
  std::string where;
  if (report_problem.empty() && !json_text.empty()) {
    if (auto deep = json_nesting_error(json_text)) {
      report_problem = *deep;
    } else {
      doc = nlohmann::json::parse(json_text, nullptr, false);
    }
  }
  try {
    if (!report_problem.empty() || doc.is_discarded() || !doc.is_object() ||
        !doc.contains("testsuites")) {
      // Nothing to read: the process's fate below decides.
    } else if (!doc["testsuites"].is_array()) {
      where = "/testsuites";
      throw std::runtime_error("is not an array");
    } else {
      size_t suite_index = 0;
      for (const auto& suite : doc["testsuites"]) {
        where = fmt::format("/testsuites/{}", suite_index++);
        if (!suite.is_object()) throw std::runtime_error("is not an object");
        if (suite.contains("testsuite") && !suite["testsuite"].is_array()) {
          where += "/testsuite";
          throw std::runtime_error("is not an array");
        }
        const std::string suite_where = where;
        size_t test_index = 0;
        for (const auto& t : suite.value("testsuite", nlohmann::json::array())) {
          where = fmt::format("{}/testsuite/{}", suite_where, test_index++);
          if (!t.is_object()) throw std::runtime_error("is not an object");
          const std::string full = suite.value("name", "") + "." + t.value("name", "");
          if (t.value("status", "RUN") != "RUN") continue;
          r.executed.push_back(full);
          const std::string time = t.value("time", "");
          if (!time.empty()) {
            duration_ms += std::strtod(time.c_str(), nullptr) * 1000.0;
            have_duration = true;
          }
          for (auto it = t.begin(); it != t.end(); ++it) {
            const std::string& key = it.key();
            if (key.rfind("metric.", 0) == 0) {
              const std::string v = prop_string(t, key.c_str());
              char* end = nullptr;
              const double x = std::strtod(v.c_str(), &end);
              if (end != v.c_str()) r.metrics[key.substr(7)] = x;
            } else if (key.rfind("env.", 0) == 0) {
              r.env[key.substr(4)] = prop_string(t, key.c_str());
            }
          }
          if (t.contains("seed")) {
            r.seed = std::strtoull(prop_string(t, "seed").c_str(), nullptr, 10);
          }
          const std::string recorded_cx = prop_string(t, "counterexample");
          const bool has_failures = t.contains("failures") && !t["failures"].empty();
          if (has_failures) {
            ++failed;
            if (r.failure.empty()) {
              const std::string msg = t["failures"][0].value("failure", "");
              r.failure = fmt::format("{}: {}", full, trim(msg));
              std::string cx = extract_rapidcheck_counterexample(msg);
              if (cx.empty()) cx = recorded_cx;
              if (cx.empty()) {
                cx = trim(msg);
                cx_is_raw = true;
              }
              r.counterexample = cx;
            }
          } else if (t.value("result", "") == "SKIPPED") {
            const std::string reason = prop_string(t, "skip_reason");
            if (reason.rfind(kFixturePrefix, 0) == 0 && reason.size() > kFixturePrefix.size()) {
              ++skipped;
              if (r.skip_reason.empty()) r.skip_reason = reason;
            } else {
              ++failed;
              if (r.failure.empty()) {
                r.failure = fmt::format(
                    "{}: skipped without a 'fixture-absent: <name>' reason (use "
                    "PV_SKIP_FIXTURE_ABSENT); an unexplained skip counts as a failure",
                    full);
                r.counterexample = "unexplained skip";
              }
            }
          } else {
            ++passed;
          }
        }
      }
    }
  } catch (const std::exception& e) {
    report_problem = where + ": " + e.what();
  }
  if (!report_problem.empty()) {
    // What was read before the bad value proves nothing: the run fails, naming the place.
    passed = skipped = 0;
    failed = 1;
    r.failure = fmt::format("the gtest report of {} --gtest_filter={} is unusable: {}", binary,
                            name, report_problem);
    r.counterexample = r.failure;
  }
  if (have_duration) r.duration_ms = duration_ms;

  // The process's fate overrides a report that looks clean: a crash after (or before)
  // the test wrote its report is still a crash.
  std::string fate;
  if (!proc.started) {
    fate = "the test binary " + proc.describe();
  } else if (proc.timed_out) {
    fate = "the test binary " + proc.describe();
  } else if (proc.term_signal != 0) {
    fate = "the test binary was " + proc.describe();
  } else if (proc.exit_code != 0 && failed == 0) {
    fate = fmt::format("the test binary exited with code {} without reporting a failure",
                       proc.exit_code);
  } else if (passed + failed + skipped == 0) {
    fate = "the test did not run (the filter matched no test in the binary)";
  }
  if (!fate.empty()) {
    r.result = TestResult::kFailed;
    if (r.failure.empty())
      r.failure = fate;
    else
      r.failure = fate + "; " + r.failure;
    if (r.counterexample.empty()) r.counterexample = fate;
  } else if (failed > 0) {
    r.result = TestResult::kFailed;
  } else if (skipped > 0) {
    r.result = TestResult::kSkipped;
  } else {
    r.result = TestResult::kPassed;
  }
  if (r.result == TestResult::kFailed) {
    // rc::check() inside a TEST prints its counterexample to the output rather than into
    // the gtest failure message: take it from there when the message has none.
    if (cx_is_raw || r.counterexample.empty()) {
      const std::string from_output = extract_rapidcheck_counterexample(output);
      if (!from_output.empty()) r.counterexample = from_output;
    }
    r.reproduce = extract_rapidcheck_reproduce(output);
    r.output_tail = output.size() > 2000 ? output.substr(output.size() - 2000) : output;
  }
  // Test output is arbitrary bytes (a tail cut mid-character, binary dumps); the bundle is
  // JSON, which must be valid UTF-8 or the whole bundle is lost when it is written.
  for (std::string* s :
       {&r.failure, &r.counterexample, &r.reproduce, &r.output_tail, &r.skip_reason}) {
    *s = sanitize_utf8(*s);
  }
  return r;
}

std::string read_gtest_report(const std::string& path, std::string* error) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return {};  // the process died before writing it
  try {
    return read_regular_file(path, kMaxGtestReportBytes);
  } catch (const std::exception& e) {
    *error = e.what();
    return {};
  }
}

}  // namespace pv::harness
