// First-divergence search over a stage-by-stage trace comparison.
//
// A quantized or differently-rounded path drifts at every stage, so a bare threshold
// either cries wolf (the aprender investigation chased a 0.9966 cosine that was pure
// Q4_K noise) or misses real bugs. The criterion is relative to a noise floor:
//
//   drift(s)  = (1 - cosine(s), NMSE(s))                      for stage s, in computation order
//   floor(s)  = max(abs_floor, ratio * noise(s))               per metric
//   noise(s)  = running max of drift over the stages before s, starting from the prior
//               (the drift one matmul over the candidate's weight type adds: a quantized
//               run's first matmul is otherwise a jump out of exact agreement) (default),
//               or, with a clean
//               comparison given (--noise), that comparison's drift at the same stage
//               (and, if larger, the running max of the clean comparison up to s).
//   s diverges when either metric's drift exceeds its floor, or when NaN/Inf appears on
//   one side only.
// The first stage that diverges is named; the table is printed up to it.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "model/trace/trace_compare.h"

namespace pv::model {

struct BisectCriterion {
  double ratio = 10.0;           // x the noise level before a stage counts as diverged
  double abs_floor_cos = 1e-5;   // (1 - cosine) below this is never a divergence
  double abs_floor_nmse = 1e-5;  // NMSE below this is never a divergence
  // Noise expected before any stage has been compared: the drift one lossy op of the
  // candidate's weight type introduces (quant_noise_prior). 0 for same-precision runs.
  double prior_cos = 0.0;
  double prior_nmse = 0.0;
};

struct NoisePrior {
  double cos = 0.0;  // 1 - cosine
  double nmse = 0.0;
};
// Drift that one matmul over weights of this type (trace.json "weight_type": F32, F16,
// BF16, Q8_0, Q4_0, Q4_K, Q6_K) adds to an exact product, measured by the type's own
// quantizer round trip on deterministic Gaussian rows. Float or unknown types give 0.
NoisePrior quant_noise_prior(const std::string& weight_type);
// pv bisect's "--prior auto": when the two runs hold weights of different stored types
// the first matmul legitimately jumps out of exact agreement by about the lossier type's
// round-trip error, so the running noise level starts there; same types start at 0.
BisectCriterion with_auto_prior(BisectCriterion crit, const std::string& ref_weight_type,
                                const std::string& cand_weight_type);

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
  std::string user = {};  // a user stage's name (stage is then meaningless)
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
