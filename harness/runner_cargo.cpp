// cargo test: `-- --list` lists a crate's tests ("path: test"); a bound test path runs
// alone (-- --exact <path>) and libtest's own lines give the verdict: "test <path> ...
// ok | FAILED | ignored[, <reason>]". #[ignore = "fixture-absent: X"] is a skip with its
// reason; metrics and counterexamples come through the result file (PV_RESULT_FILE).
#include <fmt/format.h>

#include "harness/runners.h"

namespace pv::harness {
namespace {

std::vector<std::string> cargo_base(const Invocation& inv) {
  // Offline: a bound crate builds from what is on the machine, or not at all.
  return {inv.argv[0], "test", "--offline", "--manifest-path", inv.dir + "/Cargo.toml"};
}

std::vector<std::string_view> lines_of(std::string_view text) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    out.push_back(line);
    pos = nl + 1;
  }
  return out;
}

}  // namespace

std::set<std::string> parse_cargo_list(std::string_view text) {
  std::set<std::string> out;
  for (std::string_view line : lines_of(text)) {
    constexpr std::string_view kSuffix = ": test";
    if (line.size() > kSuffix.size() &&
        line.compare(line.size() - kSuffix.size(), kSuffix.size(), kSuffix) == 0) {
      out.insert(std::string(line.substr(0, line.size() - kSuffix.size())));
    }
  }
  return out;
}

Listing list_cargo(const Invocation& inv) {
  Listing l;
  ProcessOptions po;
  po.argv = cargo_base(inv);
  po.argv.insert(po.argv.end(), inv.argv.begin() + 1, inv.argv.end());
  for (const char* a : {"--", "--list"}) po.argv.push_back(a);
  po.env = inv.env;
  po.timeout = std::chrono::minutes(10);
  po.tail_bytes = 64u << 20;
  const ProcessResult r = run_process(po);
  if (!r.ok()) {
    l.error = fmt::format("cargo test --manifest-path {}/Cargo.toml -- --list failed: {}: {}",
                          inv.dir, r.describe(), r.stderr_text.substr(0, 1500));
    return l;
  }
  l.ok = true;
  l.tests = parse_cargo_list(r.stdout_text);
  return l;
}

std::vector<std::string> cargo_argv(const TestBinding& b, const Invocation& inv) {
  std::vector<std::string> argv = cargo_base(inv);
  argv.insert(argv.end(), inv.argv.begin() + 1, inv.argv.end());
  for (const std::string& a : {std::string("--"), std::string("--exact"), b.test}) {
    argv.push_back(a);
  }
  return argv;
}

Outcome cargo_outcome(const std::string& id, const ProcessResult& proc) {
  Outcome o;
  const std::string head = "test " + id + " ... ";
  const auto lines = lines_of(proc.stdout_text);
  for (std::string_view line : lines) {
    if (line.rfind(head, 0) != 0) continue;
    std::string_view verdict = line.substr(head.size());
    o.executed.push_back(id);
    if (verdict == "ok") {
      ++o.passed;
    } else if (verdict.rfind("ignored", 0) == 0) {
      ++o.skipped;
      if (verdict.rfind("ignored, ", 0) == 0) o.skip_reason = std::string(verdict.substr(9));
    } else {
      ++o.failed;
    }
  }
  if (o.failed > 0) {
    // "---- <id> stdout ----" and the panic message below it, up to the next blank line.
    const std::string marker = "---- " + id + " stdout ----";
    bool in = false;
    for (std::string_view line : lines) {
      if (line == marker) {
        in = true;
        continue;
      }
      if (!in) continue;
      if (line.empty() && o.failure.empty()) continue;  // newer libtest: a blank line first
      if (line.empty() || line.rfind("note: ", 0) == 0 || line == "stack backtrace:") break;
      if (!o.failure.empty()) o.failure += "\n";
      o.failure += std::string(line);
    }
  }
  // libtest exits 101 when a test failed.
  o.exit_code_explained = proc.exit_code != 0 && o.failed > 0;
  if (o.passed + o.failed + o.skipped == 0) o.report_problem = "libtest printed no line for it";
  return o;
}

}  // namespace pv::harness
