// A plain command: run directly from its argv (never a shell). Its exit code is the
// verdict — 0 passed, 77 skipped (the automake/ctest convention), anything else failed —
// and the result file (PV_RESULT_FILE) adds metrics, the skip reason, the counterexample
// and the seed.
#include <fmt/format.h>

#include "harness/runners.h"

namespace pv::harness {

Outcome command_outcome(const ProcessResult& proc) {
  Outcome o;
  o.exit_code_explained = true;
  if (!proc.started || proc.timed_out || proc.term_signal != 0) return o;  // settle says why
  if (proc.exit_code == 0) {
    o.passed = 1;
  } else if (proc.exit_code == 77) {
    o.skipped = 1;
  } else {
    o.failed = 1;
    o.failure = fmt::format("exited with code {}", proc.exit_code);
  }
  return o;
}

}  // namespace pv::harness
