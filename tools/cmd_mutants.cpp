// pv mutants: plant each bug of the catalogue (mutants/mutant.h) in turn, run the
// falsifiers that claim to cover it, and print which falsifier kills which bug (the kill
// matrix), a mutation score per contract, the holes (bugs nothing kills) and the must_kill
// promises broken (a falsifier that no longer kills a bug it declares).
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include "harness/contract.h"
#include "harness/gtest_listing.h"
#include "harness/must_kill.h"
#include "harness/runner.h"
#include "harness/validate.h"
#include "mutants/mutant.h"
#include "tools/command.h"

namespace {

namespace fs = std::filesystem;
namespace ph = pv::harness;
namespace pm = pv::mutant;

constexpr const char* kFooter =
    R"(For each planted bug, the falsifiers of the contract that claims the buggy code
plus every falsifier that lists the bug under must_kill (with --declared-only: those
alone) run with PV_MUTANT=<bug> set
(CPU; a GPU-only bug is listed as not run here). A falsifier kills a bug when one of its
bound tests fails, crashes, times out or records a metric beyond its thresholds; a skip
is not a kill. A bug nothing kills is a hole. Unless --no-baseline, every test first runs
without a bug: a test that does not pass then cannot kill anything.

Exit codes:
  0  every bug run was killed and every must_kill promise held
  1  a hole (a surviving bug), a broken must_kill promise, or a baseline that failed
  2  usage or schema errors (file:line:col))";

struct Args {
  std::vector<std::string> contracts;
  std::vector<std::string> bugs;
  bool list = false;
  bool json = false;
  bool no_baseline = false;
  bool declared_only = false;
  int jobs = 0;
  std::string bin_dir;
  double timeout_s = 300;
};

std::string self_dir() {
  std::error_code ec;
  const auto exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : exe.parent_path().string();
}

// How one falsifier fared against one bug.
enum class Verdict { Killed, Survived, Skipped, BaselineBroken };

std::string_view verdict_name(Verdict v) {
  switch (v) {
    case Verdict::Killed:
      return "killed";
    case Verdict::Survived:
      return "survived";
    case Verdict::Skipped:
      return "skipped";
    case Verdict::BaselineBroken:
      return "baseline-broken";
  }
  return "";
}

struct Cell {
  std::string contract;  // file as given
  const ph::Falsifier* f = nullptr;
  Verdict verdict = Verdict::Survived;
  std::string why;        // the killing test and its failure, or the skip reason
  bool declared = false;  // the falsifier lists the bug under must_kill
};

struct BugRow {
  const pm::Info* bug = nullptr;
  std::string claimed_by;  // the contract (as loaded) that claims the code, "" if not loaded
  bool gpu_only = false;
  std::vector<Cell> cells;
  bool killed() const {
    return std::any_of(cells.begin(), cells.end(),
                       [](const Cell& c) { return c.verdict == Verdict::Killed; });
  }
};

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

int list_catalogue(bool json) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& i : pm::catalogue()) {
    if (i.bug == pm::Bug::None) continue;
    if (json) {
      j.push_back({{"name", i.name},
                   {"code", i.code},
                   {"contract", i.contract},
                   {"description", i.description},
                   {"gpu_only", i.gpu_only}});
    } else {
      std::cout << fmt::format("{:<24} {}{}\n  code: {}\n  claimed by: {}\n", i.name, i.description,
                               i.gpu_only ? " [GPU only]" : "", i.code, i.contract);
    }
  }
  if (json) std::cout << j.dump(2) << "\n";
  return 0;
}

std::string short_id(const std::string& id) {
  return id.rfind("FALSIFY-", 0) == 0 ? id.substr(8) : id;
}

int run_mutants(Args a) {
  // The bugs go to the tests only: pv's own harness code here stays unplanted.
  unsetenv("PV_MUTANT");
  if (a.list) return list_catalogue(a.json);

  if (a.contracts.empty()) {
    const std::string root = ph::find_source_root(fs::current_path().string() + "/x");
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(root + "/contracts", ec)) {
      if (e.path().extension() == ".yaml") a.contracts.push_back(e.path().string());
    }
    std::sort(a.contracts.begin(), a.contracts.end());
    if (a.contracts.empty()) {
      std::cerr << "pv mutants: no contracts given and none under " << root << "/contracts\n";
      return ph::kExitUsage;
    }
  }
  ph::Diagnostics diags;
  std::vector<ph::Contract> contracts;
  for (const auto& path : a.contracts) {
    auto lc = ph::load_contract(path, diags);
    if (lc.ok) contracts.push_back(std::move(lc.contract));
  }
  std::vector<const pm::Info*> bugs;
  for (const auto& name : a.bugs) {
    const pm::Info* i = pm::find(name);
    if (i == nullptr || i->bug == pm::Bug::None) {
      diags.push_back(
          {{"--bug", 0, 0}, fmt::format("'{}' is not a planted bug (pv mutants --list)", name)});
    } else {
      bugs.push_back(i);
    }
  }
  if (!diags.empty()) {
    for (const auto& d : diags) std::cerr << d.str() << "\n";
    return ph::kExitUsage;
  }
  if (a.bugs.empty()) {
    for (const auto& i : pm::catalogue()) {
      if (i.bug != pm::Bug::None) bugs.push_back(&i);
    }
  }

  // Which falsifiers each bug is run against.
  auto same_file = [](const std::string& a, std::string_view b) {
    return fs::path(a).filename() == fs::path(std::string(b)).filename();
  };
  std::vector<BugRow> rows;
  std::map<const ph::Falsifier*, std::string> root_of;  // relative bindings resolve here
  for (const auto& c : contracts) {
    for (const auto& f : c.falsifiers) root_of[&f] = c.root;
  }
  for (const pm::Info* bug : bugs) {
    BugRow row;
    row.bug = bug;
    row.gpu_only = bug->gpu_only;
    for (const auto& c : contracts) {
      const bool claims = same_file(c.file, bug->contract);
      if (claims) row.claimed_by = c.file;
      for (const auto& f : c.falsifiers) {
        const bool declared =
            std::find(f.must_kill.begin(), f.must_kill.end(), bug->name) != f.must_kill.end();
        if (declared || (claims && !a.declared_only)) {
          row.cells.push_back({c.file, &f, Verdict::Survived, "", declared});
        }
      }
    }
    // A bug none of the given contracts claims or declares is not this run's business;
    // one that a given contract claims but nothing runs against is a hole.
    if (!row.cells.empty() || !row.claimed_by.empty()) rows.push_back(std::move(row));
  }

  ph::RunnerOptions opts;
  opts.bin_dir = a.bin_dir.empty() ? self_dir() : a.bin_dir;
  opts.jobs = a.jobs > 0 ? a.jobs : std::max(1u, std::thread::hardware_concurrency());
  opts.timeout = std::chrono::milliseconds(static_cast<int64_t>(a.timeout_s * 1000));
  const uint64_t seed = std::random_device{}() | (uint64_t(std::random_device{}()) << 32);
  const bool tty = isatty(STDOUT_FILENO) != 0 && !a.json;
  if (isatty(STDERR_FILENO) != 0 && !a.json) {
    opts.progress = [](size_t done, size_t total, const ph::RunJob& job) {
      std::cerr << fmt::format("\r\033[K[{}/{}] {} {}:{}", done, total,
                               job.env.count("PV_MUTANT") ? job.env.at("PV_MUTANT") : "baseline",
                               job.binary, job.test)
                << std::flush;
    };
  }

  // Every (falsifier, bound test) once without a bug, then once per bug that involves it.
  struct JobRef {
    size_t row;  // rows index, or SIZE_MAX for the baseline
    size_t cell;
    const ph::Falsifier* f;
  };
  std::vector<ph::RunJob> jobs;
  std::vector<JobRef> refs;
  std::map<std::pair<const ph::Falsifier*, std::string>, size_t> baseline;  // -> jobs index
  auto add_job = [&](const ph::Falsifier& f, const ph::TestBinding& t, const std::string& bug,
                     JobRef ref) {
    ph::RunJob j{t.binary, t.test, t, root_of.at(&f), seed, ph::threshold_env(f.thresholds)};
    if (!bug.empty()) j.env["PV_MUTANT"] = bug;
    jobs.push_back(std::move(j));
    refs.push_back(ref);
  };
  for (size_t ri = 0; ri < rows.size(); ++ri) {
    if (rows[ri].gpu_only) continue;
    for (size_t ci = 0; ci < rows[ri].cells.size(); ++ci) {
      const ph::Falsifier& f = *rows[ri].cells[ci].f;
      for (const auto& lv : f.levels) {
        for (const auto& t : lv.tests) {
          if (!a.no_baseline && baseline.emplace(std::pair{&f, t.text()}, jobs.size()).second) {
            add_job(f, t, "", {SIZE_MAX, 0, &f});
          }
          add_job(f, t, std::string(rows[ri].bug->name), {ri, ci, &f});
        }
      }
    }
  }
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<ph::TestRun> results = ph::run_tests(jobs, opts);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (opts.progress) std::cerr << "\r\033[K" << std::flush;

  // Baseline failures: such a test proves nothing about a bug.
  std::vector<std::string> broken_baseline;
  std::set<std::pair<const ph::Falsifier*, std::string>> broken;
  for (const auto& [key, idx] : baseline) {
    std::string why;
    const ph::TestRun& r = results[idx];
    // A skip (fixture-absent) is not broken: its bug runs skip too and kill nothing.
    if (ph::run_kills(r, *key.first, &why)) {
      broken.insert(key);
      broken_baseline.push_back(
          fmt::format("{} {}: {}", key.first->id, key.second, first_line(why)));
    }
  }
  for (size_t i = 0; i < jobs.size(); ++i) {
    const JobRef& ref = refs[i];
    if (ref.row == SIZE_MAX) continue;
    Cell& cell = rows[ref.row].cells[ref.cell];
    if (cell.verdict == Verdict::Killed) continue;
    const std::string bound = jobs[i].binary + ":" + jobs[i].test;
    if (broken.count({ref.f, bound})) {
      if (cell.verdict == Verdict::Survived) cell.verdict = Verdict::BaselineBroken;
      continue;
    }
    std::string why;
    if (ph::run_kills(results[i], *ref.f, &why)) {
      cell.verdict = Verdict::Killed;
      cell.why = first_line(why);
    } else if (results[i].result == ph::TestResult::kSkipped && cell.verdict == Verdict::Survived) {
      cell.verdict = Verdict::Skipped;
      cell.why = results[i].skip_reason;
    }
  }

  // Scores per contract: the bugs it claims or declares, run here, killed by any falsifier.
  struct Score {
    int killed = 0, run = 0, gpu = 0;
  };
  std::map<std::string, Score> scores;
  std::vector<std::string> holes, broken_promises;
  for (const auto& row : rows) {
    std::set<std::string> involved;
    for (const auto& c : row.cells) involved.insert(c.contract);
    for (const auto& c : involved) {
      Score& s = scores[c];
      if (row.gpu_only) {
        ++s.gpu;
        continue;
      }
      ++s.run;
      s.killed += row.killed();
    }
    if (row.gpu_only) continue;
    if (!row.killed()) {
      holes.push_back(fmt::format(
          "{} survives: {} ({}) is claimed by {}", row.bug->name, row.bug->description,
          row.bug->code, row.claimed_by.empty() ? std::string(row.bug->contract) : row.claimed_by));
    }
    for (const auto& c : row.cells) {
      if (c.declared && c.verdict != Verdict::Killed) {
        broken_promises.push_back(fmt::format(
            "{} {}: FALSIFIED: must_kill bug {} survived at {}:{}:{} ({})", c.contract, c.f->id,
            row.bug->name, c.f->pos.file, c.f->pos.line, c.f->pos.col, verdict_name(c.verdict)));
      }
    }
  }
  int run = 0, killed = 0;
  for (const auto& row : rows) {
    if (row.gpu_only) continue;
    ++run;
    killed += row.killed();
  }
  const double total_score = run == 0 ? 100.0 : 100.0 * killed / run;
  const bool ok = holes.empty() && broken_promises.empty() && broken_baseline.empty();

  if (a.json) {
    nlohmann::json j;
    j["seed"] = seed;
    j["seconds"] = seconds;
    j["score_percent"] = total_score;
    j["bugs_run"] = run;
    j["bugs_killed"] = killed;
    j["bugs"] = nlohmann::json::array();
    for (const auto& row : rows) {
      nlohmann::json b{
          {"name", row.bug->name},
          {"code", row.bug->code},
          {"claimed_by", row.claimed_by.empty() ? std::string(row.bug->contract) : row.claimed_by},
          {"gpu_only", row.gpu_only}};
      b["status"] = row.gpu_only ? "not-run: GPU-only bug, no CUDA run here"
                                 : (row.killed() ? "killed" : "survived");
      b["falsifiers"] = nlohmann::json::array();
      for (const auto& c : row.cells) {
        b["falsifiers"].push_back({{"contract", c.contract},
                                   {"id", c.f->id},
                                   {"must_kill", c.declared},
                                   {"verdict", row.gpu_only ? "not-run" : verdict_name(c.verdict)},
                                   {"why", c.why}});
      }
      j["bugs"].push_back(std::move(b));
    }
    for (const auto& [c, s] : scores) {
      j["contracts"][c] = {{"killed", s.killed}, {"run", s.run}, {"gpu_only_not_run", s.gpu}};
    }
    j["holes"] = holes;
    j["must_kill_broken"] = broken_promises;
    j["baseline_broken"] = broken_baseline;
    std::cout << j.dump(2) << "\n";
  } else if (tty) {
    // The matrix, one block per bug: a column per falsifier involved.
    for (const auto& row : rows) {
      std::cout << fmt::format("{} ({})\n", row.bug->name, row.bug->code);
      if (row.gpu_only) {
        std::cout << "  not run: GPU-only bug, no CUDA run here\n";
        continue;
      }
      for (const auto& c : row.cells) {
        const char* mark = c.verdict == Verdict::Killed     ? "K"
                           : c.verdict == Verdict::Skipped  ? "s"
                           : c.verdict == Verdict::Survived ? "."
                                                            : "!";
        std::cout << fmt::format("  {} {:<22} {:<40}{}{}\n", mark, short_id(c.f->id),
                                 fs::path(c.contract).filename().string(),
                                 c.declared ? " must_kill" : "",
                                 c.why.empty() ? "" : "  " + c.why.substr(0, 100));
      }
    }
  } else {
    for (const auto& row : rows) {
      std::vector<std::string> killers;
      for (const auto& c : row.cells) {
        if (c.verdict == Verdict::Killed) killers.push_back(c.f->id);
      }
      if (row.gpu_only) {
        std::cout << fmt::format("{}: not run (GPU-only bug, no CUDA run here)\n", row.bug->name);
      } else if (killers.empty()) {
        std::cout << fmt::format(
            "{}: SURVIVED ({} falsifier(s) ran; claimed by {})\n", row.bug->name, row.cells.size(),
            row.claimed_by.empty() ? std::string(row.bug->contract) : row.claimed_by);
      } else {
        std::cout << fmt::format("{}: killed by {} of {}: {}\n", row.bug->name, killers.size(),
                                 row.cells.size(), fmt::join(killers, " "));
      }
    }
  }
  if (!a.json) {
    for (const auto& [c, s] : scores) {
      std::cout << fmt::format("score {}: {}/{} bugs killed{}\n", c, s.killed, s.run,
                               s.gpu ? fmt::format(" ({} GPU-only not run)", s.gpu) : "");
    }
    for (const auto& h : holes) std::cout << "hole: " << h << "\n";
    for (const auto& p : broken_promises) std::cout << p << "\n";
    for (const auto& b : broken_baseline) std::cout << "baseline not passing: " << b << "\n";
    std::cout << fmt::format("mutation score {:.1f}% ({}/{} bugs killed) in {:.1f} s\n",
                             total_score, killed, run, seconds);
  }
  return ok ? ph::kExitOk : ph::kExitFalsified;
}

PV_COMMAND("mutants", "Plant each catalogued bug, run its falsifiers, print the kill matrix",
           [](CLI::App& sub) -> std::function<int()> {
             auto args = std::make_shared<Args>();
             sub.add_option("contracts", args->contracts,
                            "Contract YAML files (default: contracts/*.yaml of the source root)")
                 ->check(CLI::ExistingFile);
             sub.add_option("--bug", args->bugs, "Only this planted bug (repeatable)")
                 ->expected(1)
                 ->allow_extra_args(false)
                 ->take_all();
             sub.add_flag("--list", args->list, "Print the catalogue of planted bugs");
             sub.add_flag("--json", args->json, "Print the result as JSON on stdout");
             sub.add_flag("--no-baseline", args->no_baseline,
                          "Skip the bug-free run (when pv validate just passed these tests)");
             sub.add_flag("--declared-only", args->declared_only,
                          "Run each bug against its must_kill declarers only, not every "
                          "falsifier of the contract claiming its code (the CI gate)");
             sub.add_option("-j,--jobs", args->jobs, "Test processes at once (default: cores)")
                 ->check(CLI::Range(1, 256));
             sub.add_option("--bin-dir", args->bin_dir,
                            "Where test binaries live (default: the directory of pv)");
             sub.add_option("--timeout", args->timeout_s, "Per-test timeout in seconds")
                 ->check(CLI::PositiveNumber);
             sub.footer(kFooter);
             return [args] { return run_mutants(*args); };
           });

}  // namespace
