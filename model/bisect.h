// First-divergence search over a stage-by-stage trace comparison.
//
// A quantized or differently-rounded path drifts at every stage, so a bare threshold
// either cries wolf (the aprender investigation chased a 0.9966 cosine that was pure
// Q4_K noise) or misses real bugs. The criterion is relative to a noise floor:
//
//   drift(s)  = (1 - cosine(s), NMSE(s))                      for stage s, in computation order
//   floor(s)  = max(abs_floor, ratio * noise(s))               per metric
//   noise(s)  = running max of drift over the stages before s  (default), or, with a clean
//               comparison given (--noise), that comparison's drift at the same stage
//               (and, if larger, the running max of the clean comparison up to s).
//   s diverges when either metric's drift exceeds its floor, or when NaN/Inf appears on
//   one side only.
// The first stage that diverges is named; the table is printed up to it.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "model/trace_compare.h"

namespace pv::model {

struct BisectCriterion {
  double ratio = 10.0;           // x the noise level before a stage counts as diverged
  double abs_floor_cos = 1e-5;   // (1 - cosine) below this is never a divergence
  double abs_floor_nmse = 1e-5;  // NMSE below this is never a divergence
};

struct BisectRow {
  Stage stage;
  int layer;
  double cosine;
  double nmse;
  double floor_cos;   // the (1 - cosine) floor applied to this stage
  double floor_nmse;  // the NMSE floor applied to this stage
  double jump;        // drift growth over the previous stage (max of both metrics' ratios)
  bool nonfinite_mismatch;
  bool diverged;
};

struct BisectResult {
  std::vector<BisectRow> rows;     // every compared stage, computation order
  std::optional<size_t> first;     // index of the first diverging row
  std::string reason;              // why that row broke the criterion
  std::optional<size_t> max_jump;  // index of the row with the largest drift jump
  std::string noise_source;        // "running max of earlier stages" or the clean pair
};

// `noise`, when given, is a clean comparison over the same stages (e.g. a second
// reference run, or the unbugged candidate); stages missing from it fall back to the
// running-max floor.
BisectResult bisect(const TraceDiff& diff, const BisectCriterion& crit,
                    const TraceDiff* noise = nullptr);

}  // namespace pv::model
