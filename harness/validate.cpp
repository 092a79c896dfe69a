#include "harness/validate.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <tuple>

#include "harness/atomic_file.h"
#include "harness/evidence_lock.h"
#include "harness/input_limits.h"
#include "harness/must_kill.h"
#include "harness/process_tree.h"
#include "harness/repo_config.h"
#include "harness/runners.h"
#include "harness/source_tree.h"
#include "harness/temp_files.h"
#include "mutants/mutant.h"

namespace pv::harness {
namespace {

namespace fs = std::filesystem;

// Cross-contract checks: duplicate ids, depends_on, bound tests, inputs globs.
void check_contract_set(ValidateResult& res, BindingChecker& listing,
                        std::map<std::string, SourceTree>& trees, bool check_bindings) {
  std::map<std::string, SourcePos> contract_ids;
  std::map<std::string, std::pair<SourcePos, std::string>> falsifier_ids;
  for (const auto& c : res.contracts) {
    if (!c.id.empty()) {
      auto [it, inserted] = contract_ids.emplace(c.id, c.id_pos);
      if (!inserted) {
        res.diags.push_back(
            {c.id_pos, fmt::format("contract id '{}' is also used by {}:{}:{}", c.id,
                                   it->second.file, it->second.line, it->second.col)});
      }
    }
    for (const auto& f : c.falsifiers) {
      if (f.id.empty()) continue;
      auto [it, inserted] = falsifier_ids.emplace(f.id, std::make_pair(f.pos, c.id));
      if (!inserted) {
        const SourcePos& p = it->second.first;
        res.diags.push_back({f.pos, fmt::format("duplicate falsifier id '{}' (also defined at "
                                                "{}:{}:{}, contract {}); ids must be unique "
                                                "across all contracts",
                                                f.id, p.file, p.line, p.col, it->second.second)});
      }
    }
  }
  // depends_on may name any contract given, or any contract beside the ones given.
  std::set<std::string> known;
  for (const auto& [id, pos] : contract_ids) known.insert(id);
  std::set<std::string> dirs;
  for (const auto& c : res.contracts) dirs.insert(fs::path(c.file).parent_path().string());
  bool peeked = false;
  for (const auto& c : res.contracts) {
    for (size_t i = 0; i < c.depends_on.size(); ++i) {
      if (known.count(c.depends_on[i])) continue;
      if (!peeked) {
        peeked = true;
        std::error_code ec;
        for (const auto& d : dirs) {
          for (const auto& e : fs::directory_iterator(d.empty() ? "." : d, ec)) {
            if (e.path().extension() == ".yaml" || e.path().extension() == ".yml") {
              const std::string id = peek_contract_id(e.path().string());
              if (!id.empty()) known.insert(id);
            }
          }
        }
        if (known.count(c.depends_on[i])) continue;
      }
      std::vector<std::string> cands(known.begin(), known.end());
      const std::string near = nearest(c.depends_on[i], cands);
      res.diags.push_back(
          {c.depends_on_pos[i],
           fmt::format("depends_on names '{}', which is no known contract (neither given nor "
                       "beside it){}",
                       c.depends_on[i], near.empty() ? "" : "; did you mean '" + near + "'?")});
    }
  }
  for (const auto& c : res.contracts) {
    SourceTree& tree = trees.try_emplace(c.root, c.root).first->second;
    for (const auto& f : c.falsifiers) {
      for (size_t i = 0; i < f.inputs.size(); ++i) {
        if (tree.match(f.inputs[i]).empty()) {
          res.diags.push_back(
              {f.input_pos[i], fmt::format("inputs pattern '{}' of falsifier {} matches no file "
                                           "under {}",
                                           f.inputs[i], f.id, c.root)});
        }
      }
      for (const auto& lv : f.levels) {
        for (const auto& t : lv.tests) {
          if (!check_bindings) break;
          std::string problem = listing.check(t, c.root);
          if (problem.rfind("bound test ", 0) == 0 &&
              mutant::planted(mutant::Bug::MissingTestAccepted))
            problem.clear();
          if (problem.empty()) continue;
          // The gtest wording ("is not listed by ...") stands on its own; a binary that
          // cannot be found or listed is introduced as before.
          if (problem.rfind("bound test ", 0) == 0) {
            res.diags.push_back({t.pos, problem});
          } else {
            res.diags.push_back(
                {t.pos, fmt::format("bound test {} cannot be checked: {}", t.text(), problem)});
          }
        }
      }
    }
  }
}

std::string display_prefix(const ValidateOptions& opts) {
  if (opts.evidence_dir.empty()) return "evidence/";
  std::string p = opts.evidence_dir;
  if (!p.empty() && p.back() != '/') p += '/';
  return p;
}

}  // namespace

ValidateResult validate(const ValidateOptions& opts) {
  ValidateResult res;
  // Listing and running tests need the temp dir: an unusable one is the machine's fault,
  // found here rather than read as "the filter matched no test".
  {
    const std::string tmp = temp_root();
    probe_writable_dir(tmp, "the temp dir (TMPDIR)");
    // Leftovers of a pv killed with SIGKILL: its test processes, and its temp dirs.
    const auto killed = kill_orphaned_test_processes();
    if (!killed.empty()) {
      res.warnings.push_back(fmt::format(
          "killed {} test process(es) left running by a pv that is gone", killed.size()));
    }
    clean_stale_temps(tmp, TempKind::kTempDirs, kStaleTempAge, false);
  }
  for (const auto& path : opts.contracts) {
    LoadedContract lc = load_contract(path, res.diags);
    if (!opts.source_root.empty()) {
      lc.contract.root = fs::absolute(opts.source_root).lexically_normal().string();
      std::error_code ec;
      lc.contract.rel_file =
          fs::relative(fs::absolute(path), lc.contract.root, ec).lexically_normal().string();
    }
    res.contracts.push_back(std::move(lc.contract));
  }
  ListingCache own_listing(opts.bin_dir);
  ListingCache& listing = opts.listing ? *opts.listing : own_listing;
  RunWhere where;
  where.bin_dirs = {opts.bin_dir};
  bool config_ok = true;
  {
    std::string config = opts.config;
    if (config.empty() && !res.contracts.empty()) {
      const std::string beside = res.contracts.front().root + "/pv.yaml";
      std::error_code ec;
      if (fs::is_regular_file(beside, ec)) config = beside;
    }
    const size_t before = res.diags.size();
    if (!config.empty()) where.config = load_repo_config(config, res.diags);
    // Bindings resolve through the config: with a broken one, listing them would run
    // runners in the wrong places. Its errors already stop the run.
    config_ok = res.diags.size() == before;
    for (const auto& d : where.config.bin_dirs) where.bin_dirs.push_back(d);
  }
  BindingChecker checker(listing, where);
  std::map<std::string, SourceTree> trees;
  check_contract_set(res, checker, trees, config_ok);
  res.binaries_listed = listing.binaries_listed() + checker.listed();
  std::stable_sort(res.diags.begin(), res.diags.end(),
                   [](const Diagnostic& a, const Diagnostic& b) {
                     return std::tie(a.pos.file, a.pos.line, a.pos.col) <
                            std::tie(b.pos.file, b.pos.line, b.pos.col);
                   });
  if (!res.diags.empty()) {
    res.exit_code = kExitUsage;
    return res;
  }
  if (opts.schema_only || res.contracts.empty()) return res;

  const std::string root0 = res.contracts.front().root;
  res.evidence_dir = opts.evidence_dir.empty() ? root0 + "/evidence" : opts.evidence_dir;
  AllowedSigners allowed;
  try {
    allowed = load_allowed_signers(
        opts.allowed_signers.empty() ? root0 + "/evidence/allowed_signers" : opts.allowed_signers);
  } catch (const std::exception& e) {
    res.io_errors.push_back(e.what());
    res.exit_code = kExitUsage;
    return res;
  }
  res.env = collect_environment(root0);
  res.seed = opts.seed ? *opts.seed : (std::random_device{}() & 0x7FFFFFFFu);

  // One job per distinct (binary, test, run index): a test bound by several falsifiers
  // runs once per run index and its outcome is shared.
  // Falsifiers stating different thresholds give the test different environments, so
  // the thresholds are part of the key.
  std::vector<RunJob> jobs;
  std::map<std::tuple<std::string, int, std::string>, size_t> job_of;
  for (const auto& c : res.contracts) {
    for (const auto& f : c.falsifiers) {
      if (opts.select && !opts.select(f.id)) continue;
      const auto env = threshold_env(f.thresholds);
      const std::string env_key = env.count("PV_THRESHOLDS") ? env.at("PV_THRESHOLDS") : "";
      for (const auto& lv : f.levels) {
        for (const auto& t : lv.tests) {
          for (int r = 0; r < lv.runs; ++r) {
            auto key = std::make_tuple(c.root + '\0' + t.key(), r, env_key);
            if (job_of.count(key)) continue;
            job_of[key] = jobs.size();
            jobs.push_back({t.binary, t.test, t, c.root, res.seed + jobs.size(), env});
          }
        }
      }
    }
  }
  RunnerOptions ro;
  ro.bin_dir = opts.bin_dir;
  ro.where = where;
  ro.jobs = opts.jobs;
  ro.timeout = opts.timeout;
  ro.progress = opts.progress;
  std::vector<std::string> environment_errors;
  ro.environment_errors = &environment_errors;
  const std::vector<TestRun> runs = run_tests(jobs, ro);
  if (!environment_errors.empty()) {
    throw EnvironmentError(
        fmt::format("{}{}; no claim was graded", environment_errors.front(),
                    environment_errors.size() > 1
                        ? fmt::format(" (and {} more runs)", environment_errors.size() - 1)
                        : std::string()));
  }
  res.ran = true;
  MustKillOutcomes must_kill;
  if (opts.mutants) {
    std::vector<const Contract*> cs;
    for (const auto& c : res.contracts) cs.push_back(&c);
    must_kill = check_must_kill(cs, opts.select, ro, res.seed + jobs.size());
  }
  res.tests_run = static_cast<int>(runs.size());

  const std::string prefix = display_prefix(opts);
  const std::string now = utc_now_iso8601();
  for (const auto& c : res.contracts) {
    SourceTree& tree = trees.try_emplace(c.root, c.root).first->second;
    for (const auto& f : c.falsifiers) {
      if (opts.select && !opts.select(f.id)) continue;
      const auto env = threshold_env(f.thresholds);
      const std::string env_key = env.count("PV_THRESHOLDS") ? env.at("PV_THRESHOLDS") : "";
      FalsifierVerdict v;
      v.contract = &c;
      v.falsifier = &f;
      for (const auto& lv : f.levels) {
        LevelOutcome lo;
        lo.level = lv.level;
        for (const auto& t : lv.tests) {
          std::vector<TestRun> these;
          for (int r = 0; r < lv.runs; ++r) {
            TestRun tr = runs[job_of.at(std::make_tuple(c.root + '\0' + t.key(), r, env_key))];
            tr.name = t.test;
            these.push_back(std::move(tr));
          }
          lo.tests.push_back(fold_runs(these));
        }
        v.levels.push_back(std::move(lo));
      }
      v.inputs_digest = tree.inputs_digest(f.inputs, c.rel_file);
      std::vector<std::string> rejected;
      const auto others = find_committed(res.evidence_dir, prefix, c.id, f.id, res.env.machine_id,
                                         v.inputs_digest, allowed, rejected);
      bool sought_credit = false;
      for (const auto& lo : v.levels) {
        for (const auto& b : lo.tests) sought_credit |= b.agg.result == TestResult::kSkipped;
      }
      v.grade = grade_falsifier(f, v.levels, others, !f.inputs.empty(), res.env.machine_id,
                                opts.sign_key != nullptr ? key_id(opts.sign_key->pub) : "");
      if (auto mk = must_kill.find(f.id); mk != must_kill.end()) {
        cap_by_must_kill(mk->second, &v.grade.earned, &v.grade.capped_by, &v.grade.notes);
      }
      // Only where a skipped test looked for credit does a refused bundle change anything.
      if (sought_credit) {
        for (auto& why : rejected) v.grade.notes.push_back("no credit from " + why);
      }
      v.bundle_path = prefix + bundle_relpath(res.env.machine_id, c.id, f.id);
      if (v.grade.earned == Status::FALSIFIED || v.overclaim()) res.exit_code = kExitFalsified;
      res.verdicts.push_back(std::move(v));
    }
  }

  if (opts.write_evidence) {
    // Bundles, and the read-merge-write of index.json, under the directory's lock: another
    // validate writing here would otherwise drop this run's index entries (or this run its).
    const EvidenceLock lock(res.evidence_dir, opts.lock_wait, opts.on_lock_wait);
    const auto stale =
        clean_stale_temps(res.evidence_dir, TempKind::kAtomicWrites, kStaleTempAge, true);
    if (!stale.empty()) {
      res.warnings.push_back(
          fmt::format("removed {} temp file(s) of evidence writers that are gone (first: {})",
                      stale.size(), stale.front()));
    }
    for (const auto& v : res.verdicts) {
      const std::string path = res.evidence_dir + "/" +
                               bundle_relpath(res.env.machine_id, v.contract->id, v.falsifier->id);
      try {
        std::string text = make_bundle(v, res.env, now)
                               .dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
        if (opts.sign_key != nullptr) {
          // Signed as it will be read back: the written text, parsed again.
          nlohmann::json j = nlohmann::json::parse(text);
          sign_bundle(j, *opts.sign_key);
          text = j.dump(2);
        }
        write_file_atomic(path, text + "\n");
        res.bundles_written.push_back(v.bundle_path);
      } catch (const std::exception& e) {
        res.io_errors.push_back(e.what());
      }
    }
    res.index_path = res.evidence_dir + "/index.json";
    nlohmann::json previous;
    {
      // The previous index only carries entries of contracts not validated now. A broken one
      // (committed, torn, hostile) must not break this and every later validate: it is
      // rebuilt from this run, with a warning naming it.
      std::error_code ec;
      if (std::filesystem::exists(res.index_path, ec)) {
        try {
          const std::string text = read_regular_file(res.index_path, kMaxEvidenceFileBytes);
          if (auto deep = json_nesting_error(text)) throw std::runtime_error(*deep);
          previous = nlohmann::json::parse(text, nullptr, false);
          if (previous.is_discarded() || !previous.is_object()) {
            throw std::runtime_error("not a JSON object");
          }
        } catch (const std::exception& e) {
          std::string why = e.what();
          if (why.rfind(res.index_path + ": ", 0) == 0) why = why.substr(res.index_path.size() + 2);
          res.warnings.push_back(res.index_path + ": ignored and rebuilt from this run: " + why);
          previous = nlohmann::json();
        }
      }
    }
    try {
      write_file_atomic(res.index_path, make_index(res.verdicts, previous, now).dump(2) + "\n");
    } catch (const std::exception& e) {
      res.io_errors.push_back(e.what());
    }
    if (!res.io_errors.empty() && res.exit_code == kExitOk) res.exit_code = kExitUsage;
  }
  return res;
}

}  // namespace pv::harness
