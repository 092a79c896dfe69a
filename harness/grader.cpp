#include "harness/grader.h"

#include <fmt/format.h>

#include <set>

namespace pv::harness {
namespace {

// Bundles are data from elsewhere: a field of the wrong type reads as absent.
std::string str_field(const nlohmann::json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>()
                                                                : std::string();
}

int int_field(const nlohmann::json& j, const char* key, int dflt) {
  return j.is_object() && j.contains(key) && j[key].is_number_integer() ? j[key].get<int>() : dflt;
}

const nlohmann::json* find_test(const nlohmann::json& bundle, const TestRun& t) {
  if (!bundle.contains("tests") || !bundle["tests"].is_array()) return nullptr;
  for (const auto& e : bundle["tests"]) {
    if (str_field(e, "binary") == t.binary && str_field(e, "name") == t.name) return &e;
  }
  return nullptr;
}

bool passed_here(const nlohmann::json& e) {
  // Credited entries do not credit again: evidence must come from a run that ran it.
  return str_field(e, "result") == "passed" &&
         (!e.contains("credited_from") || e["credited_from"].is_null());
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
    b.agg.duration_ms += r.duration_ms;
    if (r.result == TestResult::kFailed && b.agg.result != TestResult::kFailed) {
      const double d = b.agg.duration_ms;
      b.agg = r;
      b.agg.duration_ms = d;
    } else if (r.result == TestResult::kSkipped && b.agg.result == TestResult::kPassed) {
      b.agg.result = TestResult::kSkipped;
      b.agg.skip_reason = r.skip_reason;
    }
  }
  return b;
}

Grade grade_falsifier(const Falsifier& f, std::vector<LevelOutcome>& levels,
                      const std::vector<CommittedEvidence>& others, bool inputs_declared,
                      const std::string& local_machine) {
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
        const nlohmann::json* e = find_test(ev.bundle, b.agg);
        if (e == nullptr) continue;
        const std::string where = ev.where + "@" + (ev.host.empty() ? ev.machine_id : ev.host);
        if (str_field(*e, "result") == "failed") {
          // A fresh bundle that refutes the claim refutes it here too.
          b.agg.result = TestResult::kFailed;
          b.agg.failure =
              fmt::format("failed on {} ({}): {}", ev.machine_id, where, str_field(*e, "failure"));
          b.agg.counterexample = str_field(*e, "counterexample");
          if (b.agg.counterexample.empty()) b.agg.counterexample = "see " + where;
          break;
        }
        if (passed_here(*e) && int_field(*e, "runs", 1) >= spec.runs) {
          b.agg.result = TestResult::kPassed;
          b.agg.credited_from = where;
          b.agg.skip_reason.clear();
          if (e->contains("metrics") && (*e)["metrics"].is_object()) {
            for (auto it = (*e)["metrics"].begin(); it != (*e)["metrics"].end(); ++it) {
              if (it->is_number()) b.agg.metrics[it.key()] = it->get<double>();
            }
          }
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
                      ev.where, ev.host.empty() ? ev.machine_id : ev.host));
    }
  }
  if (!inputs_declared && any_local_skip && !others.empty()) {
    g.notes.push_back(
        "committed evidence exists but the falsifier declares no 'inputs', so its "
        "freshness cannot be checked; it earns nothing");
  }

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
      std::set<std::string> machines;
      bool local_all = true;
      for (const auto& b : lv.tests) local_all = local_all && b.agg.credited_from.empty();
      if (local_all) machines.insert(local_machine);
      for (const auto& ev : others) {
        if (!ev.fresh) continue;
        bool all = true;
        for (const auto& b : lv.tests) {
          const nlohmann::json* e = find_test(ev.bundle, b.agg);
          all = all && e != nullptr && passed_here(*e) && int_field(*e, "runs", 1) >= spec.runs;
        }
        if (all) machines.insert(ev.machine_id);
      }
      if (static_cast<int>(machines.size()) < spec.machines) {
        g.capped_by = fmt::format("machines: {} of {} at {}", machines.size(), spec.machines,
                                  status_name(lv.level));
        return g;
      }
    }
    g.earned = lv.level;
  }
  return g;
}

}  // namespace pv::harness
