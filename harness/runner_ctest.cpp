// ctest: `--show-only=json-v1` lists a CTest build tree's tests; a bound test runs alone
// (-R ^name$) with --output-junit. SKIP_RETURN_CODE (77 by convention) is a skip; its
// reason, metrics and counterexample come through the result file (PV_RESULT_FILE), which
// ctest's children inherit.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "harness/junit_report.h"
#include "harness/runners.h"

namespace pv::harness {
namespace {

std::string regex_escape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    if (std::string_view("\\^$.|?*+()[]{}").find(ch) != std::string_view::npos) out += '\\';
    out += ch;
  }
  return out;
}

// The last non-empty lines of a test's output: ctest's own failure message is only
// "Failed", so the output says what went wrong.
std::string last_lines(const std::string& text, int n) {
  size_t end = text.find_last_not_of(" \n\r\t");
  if (end == std::string::npos) return {};
  size_t start = end + 1;
  for (int i = 0; i < n && start > 0; ++i) {
    const size_t nl = text.rfind('\n', start - 1);
    start = nl == std::string::npos ? 0 : nl;
    if (start == 0) break;
  }
  std::string s = text.substr(start, end + 1 - start);
  while (!s.empty() && s.front() == '\n') s.erase(0, 1);
  return s;
}

}  // namespace

Listing list_ctest(const Invocation& inv) {
  Listing l;
  ProcessOptions po;
  po.argv = {inv.argv[0], "--test-dir", inv.dir, "--show-only=json-v1"};
  po.env = inv.env;
  po.timeout = std::chrono::seconds(60);
  po.tail_bytes = 64u << 20;
  const ProcessResult r = run_process(po);
  if (!r.ok()) {
    l.error = fmt::format("ctest --test-dir {} --show-only=json-v1 failed: {}: {}", inv.dir,
                          r.describe(), r.stderr_text.substr(0, 1000));
    return l;
  }
  const nlohmann::json j = nlohmann::json::parse(r.stdout_text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("tests") || !j["tests"].is_array()) {
    l.error = fmt::format("ctest --test-dir {} --show-only=json-v1 printed no test list", inv.dir);
    return l;
  }
  for (const auto& t : j["tests"]) {
    if (t.is_object() && t.contains("name") && t["name"].is_string()) {
      l.tests.insert(t["name"].get<std::string>());
    }
  }
  l.ok = true;
  return l;
}

std::vector<std::string> ctest_argv(const TestBinding& b, const Invocation& inv,
                                    const std::string& report) {
  std::vector<std::string> argv = {
      inv.argv[0],      "--test-dir", inv.dir,           "-R", "^" + regex_escape(b.test) + "$",
      "--output-junit", report,       "--no-tests=error"};
  argv.insert(argv.end(), inv.argv.begin() + 1, inv.argv.end());
  return argv;
}

Outcome ctest_outcome(const std::string& report_text, const ProcessResult& proc) {
  Outcome o;
  if (report_text.empty()) {
    o.report_problem = "ctest wrote no JUnit report";
    return o;
  }
  std::string err;
  const auto cases = parse_junit(report_text, &err);
  if (!err.empty()) {
    o.report_problem = "the JUnit report: " + err;
    return o;
  }
  double total_s = 0;
  for (const auto& c : cases) {
    o.executed.push_back(c.name);
    if (c.time_s >= 0) total_s += c.time_s;
    if (c.result == "failed") {
      ++o.failed;
      if (o.failure.empty()) {
        const std::string tail = last_lines(c.system_out, 3);
        o.failure = tail.empty() ? c.message : tail;
      }
    } else if (c.result == "skipped") {
      ++o.skipped;
      if (o.skip_reason.empty()) o.skip_reason = c.message;
    } else {
      ++o.passed;
    }
  }
  if (!cases.empty()) o.duration_ms = total_s * 1000.0;
  // ctest exits 8 when a test failed.
  o.exit_code_explained = proc.exit_code != 0 && o.failed > 0;
  return o;
}

}  // namespace pv::harness
