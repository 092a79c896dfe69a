#include "harness/gtest_result.h"

#include <fmt/format.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

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
                            const std::string& json_text, const ProcessResult& proc,
                            uint64_t seed) {
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
  if (!json_text.empty()) doc = nlohmann::json::parse(json_text, nullptr, false);
  if (!doc.is_discarded() && doc.is_object() && doc.contains("testsuites")) {
    for (const auto& suite : doc["testsuites"]) {
      for (const auto& t : suite.value("testsuite", nlohmann::json::array())) {
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
  return r;
}

}  // namespace pv::harness
