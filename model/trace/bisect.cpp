#include "model/trace/bisect.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <random>

#include "kernels/quant/ggml_types.h"
#include "kernels/quant/quant.h"

namespace pv::model {
namespace {

double cos_drift(double cosine) { return std::max(0.0, 1.0 - cosine); }

// Ratio of growth, where a step from (near) zero counts from the absolute floor, so a
// jump out of bit-identical stages is measured against what would be noticeable.
double growth(double now, double before, double abs_floor) {
  return now / std::max(before, abs_floor);
}

}  // namespace

NoisePrior quant_noise_prior(const std::string& weight_type) {
  // Measured, not tabled: round-trip 64 deterministic N(0,1) rows of 256 through the
  // type's own quantizer and take the NMSE / (1 - cosine) of the weights, which is what
  // one matmul over such weights adds to its output (independent per-weight errors).
  static std::mutex mu;
  static std::map<std::string, NoisePrior> cache;
  std::lock_guard<std::mutex> lock(mu);
  if (auto it = cache.find(weight_type); it != cache.end()) return it->second;
  NoisePrior p;
  std::optional<kernels::GgmlType> type;
  for (uint32_t id = 0; id < 64 && !type; ++id) {
    const auto tr = kernels::type_traits(id);
    if (tr && tr->name == weight_type) type = tr->type;
  }
  // Float types (block of 1, incl. F16/BF16 rounding) add no noise above the abs floor.
  if (type && kernels::traits(*type).block_values > 1) {
    constexpr int kRows = 64, kCols = 256;
    std::mt19937_64 rng(0x5eed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> x(kCols), y(kCols);
    std::vector<uint8_t> q(kernels::row_bytes(*type, kCols));
    double aa = 0, dd = 0, ab = 0, bb = 0;
    for (int r = 0; r < kRows; ++r) {
      for (auto& v : x) v = nd(rng);
      kernels::quantize_row(*type, x.data(), q.data(), kCols);
      kernels::dequantize_row(*type, q.data(), y.data(), kCols);
      for (int i = 0; i < kCols; ++i) {
        aa += double(x[i]) * x[i];
        bb += double(y[i]) * y[i];
        ab += double(x[i]) * y[i];
        dd += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
      }
    }
    p.nmse = dd / aa;
    p.cos = std::max(0.0, 1.0 - ab / std::sqrt(aa * bb));
  }
  cache[weight_type] = p;
  return p;
}

BisectCriterion with_auto_prior(BisectCriterion crit, const std::string& ref_weight_type,
                                const std::string& cand_weight_type) {
  if (ref_weight_type == cand_weight_type) return crit;
  const NoisePrior a = quant_noise_prior(ref_weight_type);
  const NoisePrior b = quant_noise_prior(cand_weight_type);
  crit.prior_cos = std::max(a.cos, b.cos);
  crit.prior_nmse = std::max(a.nmse, b.nmse);
  return crit;
}

BisectResult bisect(const TraceDiff& diff, const BisectCriterion& crit, const TraceDiff* noise) {
  BisectResult r;
  std::map<std::pair<std::string, int>, const StageDiff*> noise_at;
  if (noise != nullptr) {
    for (const auto& s : noise->stages) noise_at[{stage_diff_name(s), s.layer}] = &s;
    r.noise_source = "clean comparison (per stage, with its running max)";
  } else {
    r.noise_source = "running max of the earlier stages' drift";
  }
  double run_cos = crit.prior_cos, run_nmse = crit.prior_nmse;  // running max of the drift
  double noise_run_cos = 0, noise_run_nmse = 0;  // running max of the clean comparison
  double prev_cos = 0, prev_nmse = 0;
  double best_jump = 0;
  for (const auto& s : diff.stages) {
    BisectRow row{
        s.stage, s.layer, s.stats.cosine, s.stats.nmse, 0, 0, 0, s.stats.nonfinite_mismatch,
        false,   s.user};
    const double dc = cos_drift(s.stats.cosine);
    const double dn = s.stats.nmse;
    double level_cos = run_cos, level_nmse = run_nmse;
    if (noise != nullptr) {
      auto it = noise_at.find({stage_diff_name(s), s.layer});
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
      row.jump = std::max(growth(dc, prev_cos, std::max(crit.abs_floor_cos, crit.prior_cos)),
                          growth(dn, prev_nmse, std::max(crit.abs_floor_nmse, crit.prior_nmse)));
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
