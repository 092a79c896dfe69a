// The grader: a falsifier's earned level from what actually ran (DESIGN.md ladder).
//   earned = highest declared level L such that every declared level <= L passed;
//   a skipped (fixture-absent) test at L caps earned just below L, with its reason;
//   the lowest level skipped -> BLOCKER_FIXTURE_ABSENT; any failure -> FALSIFIED.
// A locally skipped test may be credited from a committed bundle made on another
// machine while that bundle is fresh (same inputs_digest) and says the test passed.
// The falsifier's thresholds are checked against the metrics its bound tests recorded
// (every run, and the bundle's metrics for a credited test): a metric past its bound is
// a failure; a threshold whose metric no bound test recorded, while none was skipped,
// refutes the claim too (an unchecked bound is not a pass).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "harness/contract.h"
#include "harness/gtest_result.h"

namespace pv::harness {

// One binding's runs folded together: failed if any run failed, skipped if any
// skipped (and none failed), passed otherwise.
struct BindingOutcome {
  TestRun agg;
  int runs = 0;
  std::vector<uint64_t> seeds;
  std::vector<std::map<std::string, double>> run_metrics;  // one per run (or the bundle's)
};
BindingOutcome fold_runs(const std::vector<TestRun>& runs);

struct LevelOutcome {
  Status level = Status::PARTIAL_ALGORITHM_LEVEL;
  std::vector<BindingOutcome> tests;
};

// A bundle for the same falsifier found under the evidence directory, as the one bundle
// reader gives it (harness/evidence.h).
struct CommittedEvidence;

struct Grade {
  Status earned = Status::FALSIFIED;
  std::string capped_by;       // why earned stops where it does ("" when nothing caps it)
  std::string counterexample;  // when FALSIFIED
  std::string failure;         // when FALSIFIED: which test and how
  std::vector<std::string> credited_from;  // "evidence/...@<host>"
  std::vector<std::string> notes;          // stale evidence, machines short, ...
};

// `levels` holds the outcome of every declared level in ascending order (credited
// outcomes are filled in by this function from `others`, which excludes this machine).
// `machines: N` counts machines as count_machines (harness/signing.h) does: committed
// bundles by the key that signed them, so one key never makes up more than one machine;
// `local_key_id` is the key this run signs with ("" when unsigned), so this machine and
// bundles the same key signed elsewhere are one machine too.
Grade grade_falsifier(const Falsifier& f, std::vector<LevelOutcome>& levels,
                      const std::vector<CommittedEvidence>& others, bool inputs_declared,
                      const std::string& local_machine, const std::string& local_key_id = "");

}  // namespace pv::harness
