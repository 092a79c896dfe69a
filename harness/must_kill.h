// A falsifier's must_kill promise (contract key `must_kill:`), checked by
// `pv validate --mutants`: each planted bug it names (mutants/mutant.h) is switched on in
// turn and the falsifier's bound tests run again. A falsifier whose tests pass with a
// declared bug planted cannot tell that bug from working code, so its passing runs are
// no evidence for the claim: validate caps what it earns (see cap_by_must_kill).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "harness/contract.h"
#include "harness/gtest_result.h"
#include "harness/runner.h"

namespace pv::harness {

// Does this run, made with a bug planted, show the bug? It does when the test fails,
// crashes or times out, or passes with a metric that the falsifier's thresholds refuse
// (what validate turns into a failure). A skip never kills. `why` says how it was killed.
bool run_kills(const TestRun& r, const Falsifier& f, std::string* why);

enum class KillResult {
  kKilled,     // some bound test showed the bug
  kSurvived,   // every bound test that ran passed with the bug planted
  kNotRunHere  // every bound test skipped (e.g. a GPU-only bug on a machine without one)
};

struct MustKillOutcome {
  std::string bug;
  KillResult result = KillResult::kSurvived;
  std::string detail;  // killed: the killing run; not run: the skip reason
};

// Falsifier id -> one outcome per must_kill entry, in declaration order. Only falsifiers
// that `select` accepts (all when empty) and that declare must_kill are run; each
// (test, bug) runs once, with the falsifier's thresholds and PV_MUTANT=<bug>.
using MustKillOutcomes = std::map<std::string, std::vector<MustKillOutcome>>;
MustKillOutcomes check_must_kill(const std::vector<const Contract*>& contracts,
                                 const std::function<bool(const std::string&)>& select,
                                 const RunnerOptions& opts, uint64_t seed);

// The cap a broken promise puts on the earned status: every surviving bug voids the
// evidence of the falsifier's passing tests, so it earns at most BLOCKER_FIXTURE_ABSENT
// and `capped_by` names the survivors. Returns true when it capped.
bool cap_by_must_kill(const std::vector<MustKillOutcome>& outcomes, Status* earned,
                      std::string* capped_by, std::vector<std::string>* notes);

std::string_view kill_result_name(KillResult r);

}  // namespace pv::harness
