// What every runner shares: resolving a binding to a program, the binding check over the
// runners' listings, the result file protocol, the verdict, and running one binding.
#include <fmt/format.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "harness/runners.h"
#include "harness/temp_files.h"

namespace pv::harness {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kFixturePrefix = "fixture-absent: ";

std::string abs_under(const std::string& root, const std::string& p) {
  if (p.empty()) return {};
  return (fs::path(root) / p).lexically_normal().string();
}

bool executable_file(const std::string& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec) && ::access(p.c_str(), X_OK) == 0;
}

// A program named without a '/': the bin dirs first, then $PATH.
std::string find_program(const std::string& name, const std::vector<std::string>& bin_dirs) {
  for (const auto& d : bin_dirs) {
    const std::string p = d + "/" + name;
    if (executable_file(p)) return p;
  }
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "");
  std::string d;
  while (std::getline(ss, d, ':')) {
    if (d.empty()) continue;
    const std::string p = d + "/" + name;
    if (executable_file(p)) return p;
  }
  return {};
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

Invocation resolve_binding(const TestBinding& b, const std::string& root, const RunWhere& where) {
  Invocation inv;
  const auto dit = where.config.runners.find(b.runner);
  const RunnerDefaults none;
  const RunnerDefaults& d = dit == where.config.runners.end() ? none : dit->second;
  inv.env = where.config.env;
  for (const auto& [k, v] : d.env) inv.env[k] = v;
  for (const auto& [k, v] : b.env) inv.env[k] = v;
  inv.cwd = b.cwd.empty() ? d.cwd : abs_under(root, b.cwd);
  // pytest collects relative to its working directory: the repository unless told.
  if (b.runner == RunnerKind::kPytest && inv.cwd.empty()) inv.cwd = root;
  // Byte-compiled test modules would land in the bound project's tree.
  if (b.runner == RunnerKind::kPytest) inv.env.try_emplace("PYTHONDONTWRITEBYTECODE", "1");
  inv.dir = b.dir.empty() ? d.dir : abs_under(root, b.dir);
  const std::string rname(runner_name(b.runner));
  switch (b.runner) {
    case RunnerKind::kGtest:
    case RunnerKind::kCommand: {
      const std::string prog = b.runner == RunnerKind::kGtest ? b.binary : b.argv.at(0);
      std::string path;
      if (prog.find('/') != std::string::npos) {
        path = prog[0] == '/' ? prog : abs_under(root, prog);
        if (!executable_file(path)) {
          inv.error = fmt::format("{} is not an executable file", path);
          return inv;
        }
      } else {
        std::vector<std::string> dirs = where.bin_dirs;
        path = b.runner == RunnerKind::kGtest ? std::string() : find_program(prog, dirs);
        if (b.runner == RunnerKind::kGtest) {
          for (const auto& dir : dirs) {
            if (executable_file(dir + "/" + prog)) {
              path = dir + "/" + prog;
              break;
            }
          }
          if (path.empty()) {
            inv.error = fmt::format("no such test binary {} in {}", prog, fmt::join(dirs, ", "));
            return inv;
          }
        } else if (path.empty()) {
          inv.error = fmt::format("no executable {} in the bin dirs ({}) or $PATH", prog,
                                  fmt::join(dirs, ", "));
          return inv;
        }
      }
      inv.argv.push_back(path);
      if (b.runner == RunnerKind::kCommand) {
        inv.argv.insert(inv.argv.end(), b.argv.begin() + 1, b.argv.end());
      }
      inv.argv.insert(inv.argv.end(), d.args.begin(), d.args.end());
      inv.argv.insert(inv.argv.end(), b.args.begin(), b.args.end());
      return inv;
    }
    case RunnerKind::kCtest:
    case RunnerKind::kCargo:
    case RunnerKind::kPytest:
      break;
  }
  inv.argv = d.program.empty() ? std::vector<std::string>{rname} : d.program;
  if (inv.argv[0].find('/') == std::string::npos) {
    const std::string found = find_program(inv.argv[0], {});
    if (found.empty()) {
      inv.error = fmt::format(
          "the {} runner's program '{}' is not in $PATH (install it, or set "
          "runners.{}.program in pv.yaml)",
          rname, inv.argv[0], rname);
      return inv;
    }
    inv.argv[0] = found;
  } else if (!executable_file(inv.argv[0])) {
    inv.error =
        fmt::format("the {} runner's program {} is not an executable file", rname, inv.argv[0]);
    return inv;
  }
  if (b.runner != RunnerKind::kPytest) {
    if (inv.dir.empty()) {
      inv.error = fmt::format(
          "a {} test needs 'dir' ({}) in the binding or in pv.yaml's "
          "runners.{}.dir",
          rname, b.runner == RunnerKind::kCtest ? "the CTest build tree" : "the crate", rname);
      return inv;
    }
    std::error_code ec;
    const char* marker = b.runner == RunnerKind::kCtest ? "CTestTestfile.cmake" : "Cargo.toml";
    if (!fs::is_regular_file(fs::path(inv.dir) / marker, ec)) {
      inv.error = fmt::format("{} holds no {}", inv.dir, marker);
      return inv;
    }
  }
  inv.argv.insert(inv.argv.end(), d.args.begin(), d.args.end());
  inv.argv.insert(inv.argv.end(), b.args.begin(), b.args.end());
  return inv;
}

std::string BindingChecker::check(const TestBinding& b, const std::string& root) {
  const Invocation inv = resolve_binding(b, root, where_);
  if (!inv.error.empty()) return inv.error;
  if (b.runner == RunnerKind::kCommand) return {};  // resolving proved it executable
  if (b.runner == RunnerKind::kGtest) {
    // Keyed by the plain name when it lives in the cache's own directory, so a listing
    // shared across validate calls (pv_bench) is found again.
    const bool own = inv.argv[0] == gtest_.path_of(b.binary);
    const Listing& l = gtest_.get(own ? b.binary : inv.argv[0]);
    if (!l.ok) return l.error;
    const bool pattern = b.test.find_first_of("*?") != std::string::npos;
    for (const auto& name : l.tests) {
      if (pattern ? gtest_pattern_match(b.test, name) : name == b.test) return {};
    }
    const std::string near =
        pattern ? "" : nearest(b.test, std::vector<std::string>(l.tests.begin(), l.tests.end()));
    return fmt::format("bound test '{}' is not listed by {} --gtest_list_tests{}", b.test, b.binary,
                       near.empty() ? "" : "; did you mean '" + near + "'?");
  }
  std::string key = std::string(runner_name(b.runner)) + '\0' + inv.cwd + '\0' + inv.dir;
  for (const auto& a : inv.argv) key += '\0' + a;
  const Listing* l = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(key);
    if (it == cache_.end()) {
      Listing fresh = b.runner == RunnerKind::kPytest  ? list_pytest(inv)
                      : b.runner == RunnerKind::kCtest ? list_ctest(inv)
                                                       : list_cargo(inv);
      ++listed_;
      it = cache_.emplace(key, std::move(fresh)).first;
    }
    l = &it->second;
  }
  if (!l->ok) return l->error;
  const bool found = b.runner == RunnerKind::kPytest ? pytest_id_listed(l->tests, b.test)
                                                     : l->tests.count(b.test) > 0;
  if (found) return {};
  const std::string near =
      nearest(b.test, std::vector<std::string>(l->tests.begin(), l->tests.end()));
  const char* how = b.runner == RunnerKind::kPytest  ? "pytest --collect-only"
                    : b.runner == RunnerKind::kCtest ? "ctest --show-only"
                                                     : "cargo test -- --list";
  return fmt::format("bound test '{}' is not listed by {}{}{}", b.test, how,
                     inv.dir.empty() ? (inv.cwd.empty() ? "" : " in " + inv.cwd) : " in " + inv.dir,
                     near.empty() ? "" : "; did you mean '" + near + "'?");
}

ResultFile read_result_file(const std::string& path) {
  ResultFile rf;
  std::error_code ec;
  if (!fs::exists(path, ec)) return rf;
  rf.present = true;
  const std::string text = slurp(path);
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    rf.error = "the result file (PV_RESULT_FILE) is not a JSON object";
    return rf;
  }
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    const auto& v = it.value();
    if (k == "metrics") {
      if (!v.is_object()) {
        rf.error = "the result file's 'metrics' must map names to numbers";
        return rf;
      }
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_number()) {
          rf.error = fmt::format("the result file's metric '{}' is not a number", m.key());
          return rf;
        }
        rf.metrics[m.key()] = m.value().get<double>();
      }
    } else if (k == "skip_reason" || k == "counterexample" || k == "failure") {
      if (!v.is_string()) {
        rf.error = fmt::format("the result file's '{}' must be text", k);
        return rf;
      }
      (k == "skip_reason"      ? rf.skip_reason
       : k == "counterexample" ? rf.counterexample
                               : rf.failure) = v.get<std::string>();
    } else if (k == "seed") {
      if (!v.is_number_unsigned()) {
        rf.error = "the result file's 'seed' must be a non-negative whole number";
        return rf;
      }
      rf.seed = v.get<uint64_t>();
    } else {
      rf.error = fmt::format(
          "the result file has an unknown key '{}' (known: metrics, "
          "skip_reason, counterexample, failure, seed)",
          k);
      return rf;
    }
  }
  return rf;
}

TestRun settle_run(const TestBinding& b, const Outcome& o, const ProcessResult& proc,
                   const ResultFile& rf, uint64_t seed) {
  TestRun r;
  r.binary = b.binary;
  r.name = b.test;
  r.seed = rf.seed ? *rf.seed : seed;
  r.duration_ms = o.duration_ms >= 0 ? o.duration_ms : proc.duration_ms;
  r.exit_code = proc.exit_code;
  r.term_signal = proc.term_signal;
  r.timed_out = proc.timed_out;
  r.metrics = o.metrics;
  for (const auto& [k, v] : rf.metrics) r.metrics[k] = v;
  r.executed = o.executed;
  const std::string output = proc.stdout_text + proc.stderr_text;
  const std::string rname(runner_name(b.runner));

  std::string fate;
  if (!proc.started || proc.timed_out) {
    fate = fmt::format("the {} run {}", rname, proc.describe());
  } else if (proc.term_signal != 0) {
    fate = fmt::format("the {} run was {}", rname, proc.describe());
  } else if (!rf.error.empty()) {
    fate = rf.error;
  } else if (o.failed == 0 && o.passed + o.skipped == 0) {
    fate = fmt::format("{} ran no test '{}'{}", rname, b.test,
                       o.report_problem.empty() ? "" : " (" + o.report_problem + ")");
  } else if (!o.exit_code_explained && proc.exit_code != 0 && o.failed == 0) {
    fate = fmt::format("{} exited with code {} without reporting a failure", rname, proc.exit_code);
  }
  if (!fate.empty()) {
    r.result = TestResult::kFailed;
    r.failure = fate;
    r.counterexample = rf.counterexample.empty() ? fate : rf.counterexample;
  } else if (o.failed > 0) {
    r.result = TestResult::kFailed;
    std::string msg = o.failure.empty() ? rf.failure : o.failure;
    if (msg.empty()) msg = "failed";
    r.failure = fmt::format("{}: {}", b.test, msg);
    r.counterexample = rf.counterexample.empty() ? msg : rf.counterexample;
  } else if (o.skipped > 0) {
    const std::string reason = o.skip_reason.rfind(kFixturePrefix, 0) == 0 || rf.skip_reason.empty()
                                   ? o.skip_reason
                                   : rf.skip_reason;
    if (reason.rfind(kFixturePrefix, 0) == 0 && reason.size() > kFixturePrefix.size()) {
      r.result = TestResult::kSkipped;
      r.skip_reason = reason;
    } else {
      r.result = TestResult::kFailed;
      r.failure = fmt::format(
          "{}: skipped without a 'fixture-absent: <name>' reason ({}); an "
          "unexplained skip counts as a failure",
          b.test, reason.empty() ? "no reason given" : "'" + reason + "'");
      r.counterexample = "unexplained skip";
    }
  } else {
    r.result = TestResult::kPassed;
  }
  if (r.result == TestResult::kFailed) {
    r.output_tail = output.size() > 2000 ? output.substr(output.size() - 2000) : output;
  }
  return r;
}

TestRun run_foreign(const TestBinding& b, const Invocation& inv,
                    std::map<std::string, std::string> extra_env, uint64_t seed,
                    std::chrono::milliseconds timeout) {
  const TempDir scratch("run");  // throws EnvironmentError naming the path
  const std::string& dir = scratch.path();
  const std::string report = dir + "/report.xml";
  const std::string result_file = dir + "/result.json";
  ProcessOptions po;
  switch (b.runner) {
    case RunnerKind::kPytest:
      po.argv = pytest_argv(b, inv, report);
      break;
    case RunnerKind::kCtest:
      po.argv = ctest_argv(b, inv, report);
      break;
    case RunnerKind::kCargo:
      po.argv = cargo_argv(b, inv);
      break;
    case RunnerKind::kCommand:
    case RunnerKind::kGtest:
      po.argv = inv.argv;
      break;
  }
  po.env = inv.env;
  for (auto& [k, v] : extra_env) po.env[k] = std::move(v);
  po.env["PV_SEED"] = std::to_string(seed);
  po.env["RC_PARAMS"] = "seed=" + std::to_string(seed);
  po.env["PV_RESULT_FILE"] = result_file;
  po.cwd = inv.cwd;
  po.timeout = timeout;
  po.tail_bytes = 1u << 20;
  const ProcessResult proc = run_process(po);
  if (!proc.environment_error.empty()) throw EnvironmentError(proc.environment_error);
  Outcome o;
  switch (b.runner) {
    case RunnerKind::kPytest:
      o = pytest_outcome(slurp(report), proc);
      break;
    case RunnerKind::kCtest:
      o = ctest_outcome(slurp(report), proc);
      break;
    case RunnerKind::kCargo:
      o = cargo_outcome(b.test, proc);
      break;
    case RunnerKind::kCommand:
    case RunnerKind::kGtest:
      o = command_outcome(proc);
      break;
  }
  const ResultFile rf = read_result_file(result_file);
  return settle_run(b, o, proc, rf, seed);
}

}  // namespace pv::harness
