#include "harness/runner.h"

#include <stdlib.h>

#include <atomic>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

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
  std::string dir = (fs::temp_directory_path() / "pv-run-XXXXXX").string();
  ProcessResult proc;
  std::string json_text, report_error;
  if (!inv.error.empty()) {
    proc.spawn_error = inv.error;
  } else if (mkdtemp(dir.data()) == nullptr) {
    proc.spawn_error = "cannot create a scratch directory for the gtest report";
  } else {
    const std::string json_path = dir + "/report.json";
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
    json_text = read_gtest_report(json_path, &report_error);
    std::error_code ec;
    fs::remove_all(dir, ec);
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
      results[i] = run_one(jobs[i], opts);
      std::lock_guard<std::mutex> lock(mu);
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
