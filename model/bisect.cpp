#include "model/bisect.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

namespace pv::model {
namespace {

double cos_drift(double cosine) { return std::max(0.0, 1.0 - cosine); }

// Ratio of growth, where a step from (near) zero counts from the absolute floor, so a
// jump out of bit-identical stages is measured against what would be noticeable.
double growth(double now, double before, double abs_floor) {
  return now / std::max(before, abs_floor);
}

}  // namespace

BisectResult bisect(const TraceDiff& diff, const BisectCriterion& crit, const TraceDiff* noise) {
  BisectResult r;
  std::map<int64_t, const StageDiff*> noise_at;
  if (noise != nullptr) {
    for (const auto& s : noise->stages) noise_at[computation_order(s.stage, s.layer)] = &s;
    r.noise_source = "clean comparison (per stage, with its running max)";
  } else {
    r.noise_source = "running max of the earlier stages' drift";
  }
  double run_cos = 0, run_nmse = 0;              // running max of this comparison's drift
  double noise_run_cos = 0, noise_run_nmse = 0;  // running max of the clean comparison
  double prev_cos = 0, prev_nmse = 0;
  double best_jump = 0;
  for (const auto& s : diff.stages) {
    BisectRow row{
        s.stage, s.layer, s.stats.cosine, s.stats.nmse, 0, 0, 0, s.stats.nonfinite_mismatch, false};
    const double dc = cos_drift(s.stats.cosine);
    const double dn = s.stats.nmse;
    double level_cos = run_cos, level_nmse = run_nmse;
    if (noise != nullptr) {
      auto it = noise_at.find(computation_order(s.stage, s.layer));
      if (it != noise_at.end()) {
        noise_run_cos = std::max(noise_run_cos, cos_drift(it->second->stats.cosine));
        noise_run_nmse = std::max(noise_run_nmse, it->second->stats.nmse);
        level_cos = noise_run_cos;
        level_nmse = noise_run_nmse;
      }
    }
    row.floor_cos = std::max(crit.abs_floor_cos, crit.ratio * level_cos);
    row.floor_nmse = std::max(crit.abs_floor_nmse, crit.ratio * level_nmse);
    if (!r.rows.empty()) {
      row.jump = std::max(growth(dc, prev_cos, crit.abs_floor_cos),
                          growth(dn, prev_nmse, crit.abs_floor_nmse));
    }
    const bool nan_cos = std::isnan(s.stats.cosine), nan_nmse = std::isnan(dn);
    std::string why;
    if (row.nonfinite_mismatch) {
      why = fmt::format("NaN/Inf on one side only (ref {} NaN {} Inf, cand {} NaN {} Inf)",
                        s.stats.nan_a, s.stats.inf_a, s.stats.nan_b, s.stats.inf_b);
    } else if (nan_cos || dc > row.floor_cos) {
      why = fmt::format("1-cosine {:.3e} > floor {:.3e}", dc, row.floor_cos);
    } else if (nan_nmse || dn > row.floor_nmse) {
      why = fmt::format("NMSE {:.3e} > floor {:.3e}", dn, row.floor_nmse);
    }
    row.diverged = !why.empty();
    r.rows.push_back(row);
    if (r.rows.size() > 1 && row.jump > best_jump) {
      best_jump = row.jump;
      r.max_jump = r.rows.size() - 1;
    }
    if (row.diverged) {
      r.first = r.rows.size() - 1;
      r.reason = why;
      break;
    }
    run_cos = std::max(run_cos, dc);
    run_nmse = std::max(run_nmse, dn);
    prev_cos = dc;
    prev_nmse = dn;
  }
  return r;
}

}  // namespace pv::model
