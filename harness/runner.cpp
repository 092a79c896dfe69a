#include "harness/runner.h"

#include <fmt/format.h>
#include <stdlib.h>

#include <atomic>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "harness/temp_files.h"

namespace pv::harness {

std::string threshold_env_name(std::string_view key) {
  std::string n = "PV_THRESHOLD_";
  for (char ch : key) {
    n += std::isalnum(static_cast<unsigned char>(ch))
             ? static_cast<char>(std::toupper(static_cast<unsigned char>(ch)))
             : '_';
  }
  return n;
}

std::map<std::string, std::string> threshold_env(const std::vector<Threshold>& thresholds) {
  std::map<std::string, std::string> env;
  if (thresholds.empty()) return env;
  nlohmann::json all = nlohmann::json::object();
  for (const auto& t : thresholds) {
    env[threshold_env_name(t.name)] = t.text;
    all[t.name] = {{"metric", t.metric}, {t.upper ? "max" : "min", t.bound}};
  }
  env["PV_THRESHOLDS"] = all.dump();
  return env;
}

TestRun run_one(const RunJob& job, const RunnerOptions& opts) {
  namespace fs = std::filesystem;
  TestBinding b = job.binding;
  if (b.binary.empty()) {  // a job built from binary and test only (tests, benchmarks)
    b.binary = job.binary;
    b.test = job.test;
  }
  RunWhere where = opts.where;
  if (where.bin_dirs.empty()) where.bin_dirs = {opts.bin_dir};
  const Invocation inv = resolve_binding(b, job.root, where);
  if (inv.error.empty() && b.runner != RunnerKind::kGtest) {
    return run_foreign(b, inv, job.env, job.seed, opts.timeout);
  }
  ProcessResult proc;
  std::string json_text, report_error;
  if (!inv.error.empty()) {
    proc.spawn_error = inv.error;
  } else {
    const TempDir dir("run");  // throws EnvironmentError naming the path
    const std::string json_path = dir.path() + "/report.json";
    ProcessOptions po;
    po.argv = {inv.argv[0], "--gtest_filter=" + job.test, "--gtest_output=json:" + json_path,
               "--gtest_color=no"};
    po.argv.insert(po.argv.end(), inv.argv.begin() + 1, inv.argv.end());
    po.env = inv.env;
    for (const auto& [k, v] : job.env) po.env[k] = v;
    po.env["PV_SEED"] = std::to_string(job.seed);
    po.env["RC_PARAMS"] = "seed=" + std::to_string(job.seed);
    po.cwd = inv.cwd;
    po.timeout = opts.timeout;
    proc = run_process(po);
    if (!proc.environment_error.empty()) throw EnvironmentError(proc.environment_error);
    json_text = read_gtest_report(json_path, &report_error);
    // No report from a test that ran: when the temp dir cannot take a file (full, read-only,
    // over a file size limit), that is why, and it says nothing about the test.
    if (json_text.empty() && proc.started && !proc.timed_out && proc.term_signal == 0) {
      probe_writable_dir(dir.path(), "the temp dir (TMPDIR) holding the gtest report,");
    }
  }
  return interpret_gtest_run(job.binary, job.test, json_text, proc, job.seed, report_error);
}

std::vector<TestRun> run_tests(const std::vector<RunJob>& jobs, const RunnerOptions& opts) {
  std::vector<TestRun> results(jobs.size());
  std::atomic<size_t> next{0};
  size_t done = 0;
  std::mutex mu;
  auto worker = [&] {
    for (;;) {
      const size_t i = next.fetch_add(1);
      if (i >= jobs.size()) return;
      std::string error;
      bool environment = false;
      try {
        results[i] = run_one(jobs[i], opts);
      } catch (const EnvironmentError& e) {
        error = e.what();
        environment = true;
      } catch (const std::exception& e) {
        error = e.what();
      } catch (...) {
        error = "an exception that is not a std::exception";
      }
      if (!error.empty()) {
        const TestBinding& b = jobs[i].binding;
        std::string binding = b.binary.empty() ? jobs[i].binary + ":" + jobs[i].test : b.text();
        if (!b.pos.file.empty()) {
          binding += fmt::format(" (bound at {}:{}:{})", b.pos.file, b.pos.line, b.pos.col);
        }
        TestRun& r = results[i];
        r = TestRun{};
        r.binary = jobs[i].binary;
        r.name = jobs[i].test;
        r.seed = jobs[i].seed;
        r.result = TestResult::kFailed;
        r.failure = fmt::format("pv could not run {}: {}", binding, error);
        r.counterexample = r.failure;
      }
      std::lock_guard<std::mutex> lock(mu);
      if (environment && opts.environment_errors) {
        opts.environment_errors->push_back(results[i].failure);
      }
      ++done;
      if (opts.progress) opts.progress(done, jobs.size(), jobs[i]);
    }
  };
  const int n = std::max(1, std::min<int>(opts.jobs, static_cast<int>(jobs.size())));
  std::vector<std::thread> threads;
  for (int t = 1; t < n; ++t) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
  return results;
}

}  // namespace pv::harness
