#include "harness/grader.h"

#include <fmt/format.h>

#include <set>

#include "harness/evidence.h"
#include "harness/gtest_listing.h"
#include "harness/signing.h"
#include "mutants/mutant.h"

namespace pv::harness {
namespace {

// Credited entries do not credit again: evidence must come from a run that ran it.
bool passed_here(const EvidenceTest& e) { return e.result == "passed" && e.credited_from.empty(); }

// The entry of `bundle` for test `b` bound at `level`: a test bound at two levels has one
// entry per level, and each level is judged by its own. A bundle that records no level
// (older writers) matches by name alone.
const EvidenceTest* find_at_level(const EvidenceBundle& bundle, const TestRun& b,
                                  std::string_view level) {
  const EvidenceTest* unlevelled = nullptr;
  for (const auto& t : bundle.tests) {
    if (t.binary != b.binary || t.name != b.name) continue;
    if (mutant::planted(mutant::Bug::CreditIgnoresLevel)) return &t;
    if (t.level == level) return &t;
    if (t.level.empty() && unlevelled == nullptr) unlevelled = &t;
  }
  return unlevelled;
}

// Whether a committed entry ran often enough for a level that asks for `runs` runs.
bool enough_runs(const EvidenceTest& e, int runs) {
  return e.runs >= runs || mutant::planted(mutant::Bug::CreditIgnoresRuns);
}

bool metric_matches(const Threshold& t, const std::string& name) {
  return t.pattern() ? gtest_pattern_match(t.metric, name) : t.metric == name;
}

// Checks every threshold against every run of every bound test that ran (or was
// credited). A metric past its bound turns its test into a failure that names both
// numbers. Returns the first threshold no bound test recorded a metric for, when no
// bound test was skipped (a skipped test records nothing, and its skip already caps
// the level).
const Threshold* check_thresholds(const Falsifier& f, std::vector<LevelOutcome>& levels) {
  const Threshold* unrecorded = nullptr;
  for (const auto& t : f.thresholds) {
    bool recorded = false, any_skip = false;
    for (auto& lv : levels) {
      for (auto& b : lv.tests) {
        if (b.agg.result == TestResult::kSkipped) {
          any_skip = true;
          continue;
        }
        for (const auto& metrics : b.run_metrics) {
          for (const auto& [name, v] : metrics) {
            if (!metric_matches(t, name)) continue;
            recorded = true;
            if (t.holds(v) || b.agg.result == TestResult::kFailed) continue;
            const std::string test = b.agg.binary + ":" + b.agg.name;
            b.agg.result = TestResult::kFailed;
            b.agg.failure = fmt::format("metric {} = {:.9g} is beyond threshold {} ({}) in {}",
                                        name, v, t.name, t.describe(), test);
            b.agg.counterexample = fmt::format(
                "{}: metric.{} = {:.9g}, threshold {}: {} {}{}", test, name, v, t.name,
                t.upper ? "<=" : ">=", t.text,
                b.agg.credited_from.empty() ? "" : " (recorded by " + b.agg.credited_from + ")");
          }
        }
      }
    }
    if (!recorded && !any_skip && unrecorded == nullptr) unrecorded = &t;
  }
  return unrecorded;
}

}  // namespace

BindingOutcome fold_runs(const std::vector<TestRun>& runs) {
  BindingOutcome b;
  b.runs = static_cast<int>(runs.size());
  if (runs.empty()) return b;
  b.agg = runs.front();
  b.agg.duration_ms = 0;
  for (const auto& r : runs) {
    b.seeds.push_back(r.seed);
    b.run_metrics.push_back(r.metrics);
    b.agg.duration_ms += r.duration_ms;
    if (r.result == TestResult::kFailed && b.agg.result != TestResult::kFailed) {
      const double d = b.agg.duration_ms;
      b.agg = r;
      b.agg.duration_ms = d;
    } else if (r.result == TestResult::kSkipped && b.agg.result == TestResult::kPassed &&
               !mutant::planted(mutant::Bug::SkipCountsAsPass)) {
      b.agg.result = TestResult::kSkipped;
      b.agg.skip_reason = r.skip_reason;
    }
  }
  return b;
}

Grade grade_falsifier(const Falsifier& f, std::vector<LevelOutcome>& levels,
                      const std::vector<CommittedEvidence>& others, bool inputs_declared,
                      const std::string& local_machine, const std::string& local_key_id) {
  Grade g;
  std::set<std::string> credited;
  bool any_local_skip = false;
  for (size_t li = 0; li < levels.size(); ++li) {
    const LevelSpec& spec = f.levels[li];
    for (auto& b : levels[li].tests) {
      if (b.agg.result != TestResult::kSkipped) continue;
      any_local_skip = true;
      for (const auto& ev : others) {
        if (!ev.fresh) continue;
        const EvidenceTest* e = find_at_level(ev.bundle, b.agg, status_name(spec.level));
        if (e == nullptr) continue;
        const std::string& host = ev.bundle.env.host;
        const std::string where = ev.where + "@" + (host.empty() ? ev.machine_id : host);
        if (e->result == "failed") {
          // A fresh bundle that refutes the claim refutes it here too.
          b.agg.result = TestResult::kFailed;
          b.agg.failure = fmt::format("failed on {} ({}): {}", ev.machine_id, where, e->failure);
          b.agg.counterexample = e->counterexample;
          if (b.agg.counterexample.empty()) b.agg.counterexample = "see " + where;
          break;
        }
        if (passed_here(*e) && enough_runs(*e, spec.runs)) {
          b.agg.result = TestResult::kPassed;
          b.agg.credited_from = where;
          b.agg.skip_reason.clear();
          for (const auto& [k, v] : e->metrics) b.agg.metrics[k] = v;
          // The thresholds hold the bundle to the numbers it recorded.
          b.run_metrics.assign(1, e->metrics);
          credited.insert(where);
          break;
        }
      }
    }
  }
  g.credited_from.assign(credited.begin(), credited.end());
  for (const auto& ev : others) {
    if (!ev.fresh && any_local_skip && inputs_declared) {
      g.notes.push_back(
          fmt::format("stale evidence {} (made on {}): its inputs_digest no longer "
                      "matches the sources; it earns nothing",
                      ev.where, ev.bundle.env.host.empty() ? ev.machine_id : ev.bundle.env.host));
    }
  }
  if (!inputs_declared && any_local_skip && !others.empty()) {
    g.notes.push_back(
        "committed evidence exists but the falsifier declares no 'inputs', so its "
        "freshness cannot be checked; it earns nothing");
  }

  const Threshold* unrecorded = check_thresholds(f, levels);

  // Any failure anywhere refutes the claim.
  for (const auto& lv : levels) {
    for (const auto& b : lv.tests) {
      if (b.agg.result == TestResult::kFailed) {
        g.earned = Status::FALSIFIED;
        g.failure = b.agg.failure;
        g.counterexample = b.agg.counterexample;
        if (!b.agg.reproduce.empty()) g.counterexample += "\nreproduce: " + b.agg.reproduce;
        if (b.seeds.size() > 0 || b.agg.seed != 0) {
          g.counterexample +=
              fmt::format("\nseed: {} (replay with PV_SEED={} RC_PARAMS=\"seed={}\")", b.agg.seed,
                          b.agg.seed, b.agg.seed);
        }
        g.capped_by =
            fmt::format("failed: {}:{} at {}", b.agg.binary, b.agg.name, status_name(lv.level));
        return g;
      }
    }
  }

  if (unrecorded != nullptr) {
    g.earned = Status::FALSIFIED;
    g.failure =
        fmt::format("threshold {} ({}) at {}:{}:{} is unchecked: no bound test recorded metric {}",
                    unrecorded->name, unrecorded->describe(), unrecorded->pos.file,
                    unrecorded->pos.line, unrecorded->pos.col, unrecorded->metric);
    g.counterexample = g.failure;
    g.capped_by = "unchecked threshold " + unrecorded->name;
    return g;
  }

  g.earned = Status::BLOCKER_FIXTURE_ABSENT;
  for (size_t li = 0; li < levels.size(); ++li) {
    const auto& lv = levels[li];
    const LevelSpec& spec = f.levels[li];
    const BindingOutcome* skipped = nullptr;
    for (const auto& b : lv.tests) {
      if (b.agg.result == TestResult::kSkipped) {
        skipped = &b;
        break;
      }
    }
    if (skipped != nullptr) {
      g.capped_by = fmt::format("{} at {}", skipped->agg.skip_reason, status_name(lv.level));
      return g;
    }
    if (spec.machines > 1) {
      // Distinct machines on which every test of this level passed (not credited).
      std::vector<MachineClaim> machines;
      bool local_all = true;
      for (const auto& b : lv.tests) local_all = local_all && b.agg.credited_from.empty();
      if (local_all) machines.push_back({local_machine, local_key_id});
      for (const auto& ev : others) {
        if (!ev.fresh) continue;
        bool all = true;
        for (const auto& b : lv.tests) {
          const EvidenceTest* e = find_at_level(ev.bundle, b.agg, status_name(lv.level));
          all = all && e != nullptr && passed_here(*e) && enough_runs(*e, spec.runs);
        }
        if (all) machines.push_back({ev.machine_id, ev.signer_key_id});
      }
      const MachineCount n = count_machines(machines);
      if (n.machines < spec.machines) {
        g.capped_by = fmt::format("machines: {} of {} at {}", n.machines, spec.machines,
                                  status_name(lv.level));
        if (!n.note.empty()) g.capped_by += " (" + n.note + ")";
        return g;
      }
    }
    g.earned = lv.level;
  }
  return g;
}

}  // namespace pv::harness
