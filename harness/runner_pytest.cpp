// pytest: `--collect-only -q` lists node ids; a bound node id runs with --junitxml, and
// the JUnit report gives the verdict, the failure message, skips with their reason
// (pytest.skip("fixture-absent: X")) and metrics (record_property("metric.<name>", v)).
#include <fmt/format.h>

#include <cstdlib>

#include "harness/junit_report.h"
#include "harness/runners.h"

namespace pv::harness {

std::set<std::string> parse_pytest_collect(std::string_view text) {
  // "-q" prints one node id per line, then a blank line and "N tests collected".
  std::set<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (line.empty()) break;
    if (line.find("::") != std::string_view::npos) out.insert(std::string(line));
  }
  return out;
}

bool pytest_id_listed(const std::set<std::string>& listed, const std::string& id) {
  if (listed.count(id)) return true;
  // A file, class or unparameterized function: some listed item must lie below it.
  for (const char* sep : {"::", "["}) {
    const std::string prefix = id + sep;
    auto it = listed.lower_bound(prefix);
    if (it != listed.end() && it->compare(0, prefix.size(), prefix) == 0) return true;
  }
  return false;
}

Listing list_pytest(const Invocation& inv) {
  Listing l;
  ProcessOptions po;
  po.argv = inv.argv;
  for (const char* a : {"--collect-only", "-q", "-p", "no:cacheprovider"}) po.argv.push_back(a);
  po.env = inv.env;
  po.cwd = inv.cwd;
  po.timeout = std::chrono::seconds(120);
  po.tail_bytes = 64u << 20;
  const ProcessResult r = run_process(po);
  // Exit 5: nothing collected — a valid, empty listing.
  if (!r.started || r.timed_out || r.term_signal != 0 || (r.exit_code != 0 && r.exit_code != 5)) {
    l.error = fmt::format("{} --collect-only failed{}: {}: {}", fmt::join(inv.argv, " "),
                          inv.cwd.empty() ? "" : " in " + inv.cwd, r.describe(),
                          r.stdout_text.substr(0, 1500) + r.stderr_text.substr(0, 500));
    return l;
  }
  l.ok = true;
  l.tests = parse_pytest_collect(r.stdout_text);
  return l;
}

std::vector<std::string> pytest_argv(const TestBinding& b, const Invocation& inv,
                                     const std::string& report) {
  std::vector<std::string> argv = inv.argv;
  // xunit1: the family whose report keeps record_property's <properties>.
  for (std::string a :
       {std::string("-q"), std::string("-p"), std::string("no:cacheprovider"), std::string("-o"),
        std::string("junit_family=xunit1"), "--junitxml=" + report, b.test}) {
    argv.push_back(std::move(a));
  }
  return argv;
}

Outcome pytest_outcome(const std::string& report_text, const ProcessResult& proc) {
  Outcome o;
  if (report_text.empty()) {
    o.report_problem = "pytest wrote no JUnit report";
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
    const std::string full = c.classname.empty() ? c.name : c.classname + "::" + c.name;
    o.executed.push_back(full);
    if (c.time_s >= 0) total_s += c.time_s;
    for (const auto& [k, v] : c.properties) {
      if (k.rfind("metric.", 0) != 0) continue;
      char* end = nullptr;
      const double x = std::strtod(v.c_str(), &end);
      if (end != v.c_str() && *end == '\0') o.metrics[k.substr(7)] = x;
    }
    if (c.result == "failed") {
      ++o.failed;
      if (o.failure.empty()) o.failure = full + ": " + c.message;
    } else if (c.result == "skipped") {
      ++o.skipped;
      if (o.skip_reason.empty()) o.skip_reason = c.message;
    } else {
      ++o.passed;
    }
  }
  if (!cases.empty()) o.duration_ms = total_s * 1000.0;
  // pytest exits 1 with failures; 0 with passes and skips.
  o.exit_code_explained = proc.exit_code == 1 && o.failed > 0;
  return o;
}

}  // namespace pv::harness
