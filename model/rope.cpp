#include "model/rope.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>
#include <string>

#include "mutants/mutant.h"

namespace pv::model {

std::vector<double> rope_base_inv_freq(int head_dim, float theta) {
  const int half = head_dim / 2;
  std::vector<double> out(half);
  for (int i = 0; i < half; ++i) {
    const float expo = static_cast<float>(2 * i) / static_cast<float>(head_dim);
    const float p = static_cast<float>(std::pow(static_cast<double>(theta), expo));
    out[i] = static_cast<double>(1.0f / p);
  }
  return out;
}

namespace {

// transformers' yarn get_mscale.
double yarn_mscale(double scale, double mscale) {
  return scale <= 1.0 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}

// The dimension index at which a frequency makes `rotations` turns over `context`.
double yarn_correction_dim(double rotations, int dim, double base, double context) {
  return dim * std::log(context / (rotations * 2.0 * std::numbers::pi)) / (2.0 * std::log(base));
}

}  // namespace

std::pair<double, double> yarn_correction_range(int head_dim, float theta, const RopeScaling& s,
                                                int max_position_embeddings) {
  const double ctx = s.original_context > 0 ? s.original_context : max_position_embeddings;
  if (!(ctx > 0)) throw std::invalid_argument("rope table: yarn needs a context length");
  double low = yarn_correction_dim(s.beta_fast, head_dim, theta, ctx);
  double high = yarn_correction_dim(s.beta_slow, head_dim, theta, ctx);
  if (s.truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  return {std::max(low, 0.0), std::min(high, static_cast<double>(head_dim - 1))};
}

RopeTable rope_table(int head_dim, float theta, const RopeScaling& s, int max_position_embeddings) {
  if (head_dim <= 0 || head_dim % 2 != 0) {
    throw std::invalid_argument("rope table: head_dim " + std::to_string(head_dim) +
                                " must be positive and even");
  }
  if (!(theta > 1.0f) || !std::isfinite(theta)) {
    throw std::invalid_argument("rope table: base " + std::to_string(theta) + " must be > 1");
  }
  const int half = head_dim / 2;
  const std::vector<double> base = rope_base_inv_freq(head_dim, theta);
  std::vector<double> inv = base;
  double attention = 1.0;
  switch (s.kind) {
    case RopeScalingKind::None:
      break;
    case RopeScalingKind::Linear:
      for (double& v : inv) v /= s.factor;
      break;
    case RopeScalingKind::Llama3: {
      const double old_ctx = s.original_context;
      const double low_wavelen = old_ctx / s.low_freq_factor;
      const double high_wavelen = old_ctx / s.high_freq_factor;
      const bool skip_band = mutant::planted(mutant::Bug::Llama3SmoothBandUnscaled);
      for (int i = 0; i < half; ++i) {
        const double wavelen = 2.0 * std::numbers::pi / base[i];
        if (wavelen < high_wavelen) continue;  // high frequencies: unchanged
        if (wavelen > low_wavelen) {
          inv[i] = base[i] / s.factor;  // low frequencies: interpolated fully
          continue;
        }
        if (skip_band) continue;
        // In between: blend the two by where the wavelength sits.
        const double smooth =
            (old_ctx / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        inv[i] = (1.0 - smooth) * base[i] / s.factor + smooth * base[i];
      }
      break;
    }
    case RopeScalingKind::Yarn: {
      auto [low, high] = yarn_correction_range(head_dim, theta, s, max_position_embeddings);
      if (low == high) high += 0.001;  // as transformers: no zero-width ramp
      for (int i = 0; i < half; ++i) {
        const double ramp = std::clamp((i - low) / (high - low), 0.0, 1.0);
        const double extrapolation = 1.0 - ramp;  // weight of the unscaled frequency
        inv[i] = base[i] / s.factor * (1.0 - extrapolation) + base[i] * extrapolation;
      }
      if (s.attention_factor > 0.0) {
        attention = s.attention_factor;
      } else if (s.mscale > 0.0 && s.mscale_all_dim > 0.0) {
        attention = yarn_mscale(s.factor, s.mscale) / yarn_mscale(s.factor, s.mscale_all_dim);
      } else {
        attention = yarn_mscale(s.factor, 1.0);
      }
      break;
    }
  }
  if (!s.freq_factors.empty()) {
    if (static_cast<int>(s.freq_factors.size()) != half) {
      throw std::invalid_argument("rope table: " + std::to_string(s.freq_factors.size()) +
                                  " frequency factors for " + std::to_string(half) + " pairs");
    }
    for (int i = 0; i < half; ++i) inv[i] /= static_cast<double>(s.freq_factors[i]);
  }
  RopeTable t;
  t.inv_freq.resize(half);
  for (int i = 0; i < half; ++i) {
    if (!std::isfinite(inv[i]) || !(inv[i] > 0.0)) {
      throw std::invalid_argument("rope table: inv_freq[" + std::to_string(i) +
                                  "] is not a positive finite number");
    }
    t.inv_freq[i] = static_cast<float>(inv[i]);
  }
  t.attention_factor = static_cast<float>(attention);
  return t;
}

const char* rope_scaling_name(RopeScalingKind kind) {
  switch (kind) {
    case RopeScalingKind::None:
      return "none";
    case RopeScalingKind::Linear:
      return "linear";
    case RopeScalingKind::Llama3:
      return "llama3";
    case RopeScalingKind::Yarn:
      return "yarn";
  }
  return "?";
}

}  // namespace pv::model
