#include "harness/must_kill.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "harness/gtest_listing.h"
#include "mutants/mutant.h"

namespace pv::harness {

namespace {

bool metric_matches(const Threshold& t, const std::string& name) {
  return t.pattern() ? gtest_pattern_match(t.metric, name) : t.metric == name;
}

}  // namespace

bool run_kills(const TestRun& r, const Falsifier& f, std::string* why) {
  if (r.result == TestResult::kFailed) {
    *why = fmt::format("{}:{}: {}", r.binary, r.name,
                       r.failure.empty() ? std::string("failed") : r.failure.substr(0, 200));
    return true;
  }
  if (r.result != TestResult::kPassed) return false;
  for (const auto& t : f.thresholds) {
    for (const auto& [name, v] : r.metrics) {
      if (metric_matches(t, name) && !t.holds(v)) {
        *why = fmt::format("{}:{}: metric {} = {:.6g} beyond {}", r.binary, r.name, name, v,
                           t.describe());
        return true;
      }
    }
  }
  return false;
}

std::string_view kill_result_name(KillResult r) {
  switch (r) {
    case KillResult::kKilled:
      return "killed";
    case KillResult::kSurvived:
      return "survived";
    case KillResult::kNotRunHere:
      return "not run here";
  }
  return "";
}

MustKillOutcomes check_must_kill(const std::vector<const Contract*>& contracts,
                                 const std::function<bool(const std::string&)>& select,
                                 const RunnerOptions& opts, uint64_t seed) {
  struct Ref {
    const Falsifier* f;
    size_t outcome;
  };
  MustKillOutcomes out;
  std::vector<RunJob> jobs;
  std::vector<Ref> refs;
  for (const Contract* c : contracts) {
    for (const auto& f : c->falsifiers) {
      if (f.must_kill.empty() || (select && !select(f.id))) continue;
      auto& outcomes = out[f.id];
      const auto env = threshold_env(f.thresholds);
      // A test bound at several levels runs once per bug: the bug, not the level, is
      // what this run asks about.
      std::set<std::string> tests;
      for (const auto& lv : f.levels) {
        for (const auto& t : lv.tests) {
          if (!tests.insert(t.text()).second) continue;
          for (size_t b = 0; b < f.must_kill.size(); ++b) {
            RunJob j{t.binary, t.test, t, c->root, seed + jobs.size(), env};
            j.env["PV_MUTANT"] = f.must_kill[b];
            jobs.push_back(std::move(j));
            refs.push_back({&f, b});
          }
        }
      }
      for (const auto& bug : f.must_kill) outcomes.push_back({bug, KillResult::kNotRunHere, ""});
    }
  }
  if (jobs.empty()) return out;
  const std::vector<TestRun> runs = run_tests(jobs, opts);

  // Per outcome: killed by any run; survived when some run passed and none killed;
  // not run here when every run skipped.
  std::set<std::pair<std::string, size_t>> passed_once;
  for (size_t i = 0; i < runs.size(); ++i) {
    const Ref& ref = refs[i];
    MustKillOutcome& o = out.at(ref.f->id)[ref.outcome];
    if (o.result == KillResult::kKilled) continue;
    std::string why;
    if (run_kills(runs[i], *ref.f, &why)) {
      o.result = KillResult::kKilled;
      o.detail = why;
    } else if (runs[i].result == TestResult::kPassed) {
      passed_once.insert({ref.f->id, ref.outcome});
    } else if (o.detail.empty()) {
      o.detail = runs[i].skip_reason;
    }
  }
  for (auto& [id, outcomes] : out) {
    for (size_t b = 0; b < outcomes.size(); ++b) {
      if (outcomes[b].result == KillResult::kKilled || !passed_once.count({id, b})) continue;
      outcomes[b].result = KillResult::kSurvived;
      outcomes[b].detail = "every bound test passed with it planted";
    }
  }
  return out;
}

bool cap_by_must_kill(const std::vector<MustKillOutcome>& outcomes, Status* earned,
                      std::string* capped_by, std::vector<std::string>* notes) {
  std::vector<std::string> survivors;
  for (const auto& o : outcomes) {
    // One line per bug: the first line of how it was killed (a gtest failure is long).
    const std::string detail = o.detail.substr(0, o.detail.find('\n'));
    notes->push_back(fmt::format("must_kill {}: {}{}", o.bug, kill_result_name(o.result),
                                 detail.empty() ? "" : " (" + detail + ")"));
    if (o.result == KillResult::kSurvived) survivors.push_back(o.bug);
  }
  if (survivors.empty() || *earned == Status::FALSIFIED) return false;
  if (mutant::planted(mutant::Bug::MustKillIgnored)) return false;
  if (*earned > Status::BLOCKER_FIXTURE_ABSENT) *earned = Status::BLOCKER_FIXTURE_ABSENT;
  std::string list;
  for (const auto& s : survivors) list += (list.empty() ? "" : ", ") + s;
  *capped_by = fmt::format(
      "must_kill: planted bug{} {} survived (the bound tests pass with it planted, so their "
      "passing is no evidence)",
      survivors.size() > 1 ? "s" : "", list);
  return true;
}

}  // namespace pv::harness
