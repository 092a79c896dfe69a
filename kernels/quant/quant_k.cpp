// K-quant quantizers. Both follow the same two-level plan:
//  1. per sub-block, search the float scale (and, for Q4_K, the min) that minimise the
//     squared error: for each candidate inverse scale around the plain range mapping, round
//     the values to levels, solve the least-squares scale/offset for those levels, and keep
//     the best candidate (the plain min/max mapping is one candidate, so the search is never
//     worse than it);
//  2. quantize the sub-block scales against one fp16 super-block scale (rounded up, so the
//     largest never clamps), then re-search the
//     integer scale (+-1) per sub-block with the final levels, since rounding the scale moves
//     the optimum.
#include "kernels/quant/quant_k.h"

#include <algorithm>
#include <cmath>

#include "kernels/quant/half.h"

namespace pv::kernels {
namespace {

int round_clamp(float v, int lo, int hi) {
  return std::clamp(static_cast<int>(std::nearbyint(v)), lo, hi);
}

// ---- Q4_K ----------------------------------------------------------------------------

struct AffineFit {
  float scale = 0.0f;  // x ~= scale * L - min
  float min = 0.0f;    // >= 0: the stored min is subtracted (ggml's layout)
};

// Squared error of x ~= scale*L - min with L = round((x + min)/scale) in [0, 15].
float affine_error(const float* x, int n, float scale, float min) {
  const float inv = scale > 0.0f ? 1.0f / scale : 0.0f;
  float err = 0.0f;
  for (int i = 0; i < n; ++i) {
    const int l = round_clamp((x[i] + min) * inv, 0, 15);
    const float e = scale * static_cast<float>(l) - min - x[i];
    err += e * e;
  }
  return err;
}

AffineFit fit_scale_min(const float* x, int n) {
  float lo = 0.0f, hi = x[0];  // the offset may only be <= 0 (min >= 0 in storage)
  for (int i = 0; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  AffineFit best{(hi - lo) / 15.0f, -lo};
  if (!(hi > lo)) return AffineFit{0.0f, -lo};
  float best_err = affine_error(x, n, best.scale, best.min);
  int levels[kQKK / 8];
  for (int step = 0; step <= 25; ++step) {
    const float iscale = (14.0f + 0.1f * static_cast<float>(step)) / (hi - lo);
    double sl = 0, sl2 = 0, sx = 0, sxl = 0;
    for (int i = 0; i < n; ++i) {
      levels[i] = round_clamp(iscale * (x[i] - lo), 0, 15);
      sl += levels[i];
      sl2 += static_cast<double>(levels[i]) * levels[i];
      sx += x[i];
      sxl += static_cast<double>(x[i]) * levels[i];
    }
    const double det = n * sl2 - sl * sl;
    if (det <= 0) continue;
    double a = (n * sxl - sl * sx) / det;
    double b = (sl2 * sx - sl * sxl) / det;
    if (b > 0) {  // offset must stay <= 0: refit the scale alone
      b = 0;
      a = sxl / sl2;
    }
    if (a <= 0) continue;
    const AffineFit cand{static_cast<float>(a), static_cast<float>(-b)};
    const float err = affine_error(x, n, cand.scale, cand.min);
    if (err < best_err) {
      best_err = err;
      best = cand;
    }
  }
  return best;
}

void pack_q4_K_scales(const int* ls, const int* lm, uint8_t* s) {
  for (int j = 0; j < 4; ++j) {
    s[j] = static_cast<uint8_t>(ls[j] | ((ls[j + 4] >> 4) << 6));
    s[j + 4] = static_cast<uint8_t>(lm[j] | ((lm[j + 4] >> 4) << 6));
    s[j + 8] = static_cast<uint8_t>((ls[j + 4] & 0xF) | ((lm[j + 4] & 0xF) << 4));
  }
}

// ---- Q6_K ----------------------------------------------------------------------------

// Squared error of x ~= scale*L with L = round(x/scale) in [-32, 31].
float symmetric_error(const float* x, int n, float scale) {
  const float inv = scale != 0.0f ? 1.0f / scale : 0.0f;
  float err = 0.0f;
  for (int i = 0; i < n; ++i) {
    const int l = round_clamp(x[i] * inv, -32, 31);
    const float e = scale * static_cast<float>(l) - x[i];
    err += e * e;
  }
  return err;
}

float fit_symmetric_scale(const float* x, int n) {
  float amax = 0.0f, xmax = 0.0f;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      xmax = x[i];
    }
  }
  if (amax == 0.0f) return 0.0f;
  float best = xmax / -32.0f;  // the largest magnitude on the 32-level side
  float best_err = symmetric_error(x, n, best);
  for (int step = -10; step <= 10; ++step) {
    const float iscale = -(32.0f + 0.1f * static_cast<float>(step)) / xmax;
    double sxl = 0, sl2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = round_clamp(iscale * x[i], -32, 31);
      sxl += static_cast<double>(x[i]) * l;
      sl2 += static_cast<double>(l) * l;
    }
    if (sl2 <= 0) continue;
    const float cand = static_cast<float>(sxl / sl2);
    const float err = symmetric_error(x, n, cand);
    if (err < best_err) {
      best_err = err;
      best = cand;
    }
  }
  return best;
}

}  // namespace

void quantize_q4_K(const float* x, BlockQ4_K* b, int64_t nb) {
  constexpr int kSub = 32;
  for (int64_t i = 0; i < nb; ++i, x += kQKK) {
    AffineFit fits[8];
    float max_scale = 0.0f, max_min = 0.0f;
    for (int j = 0; j < 8; ++j) {
      fits[j] = fit_scale_min(x + j * kSub, kSub);
      max_scale = std::max(max_scale, fits[j].scale);
      max_min = std::max(max_min, fits[j].min);
    }
    b[i].d = fp32_to_fp16_round_up(max_scale / 63.0f);
    b[i].dmin = fp32_to_fp16_round_up(max_min / 63.0f);
    const float d = fp16_to_fp32(b[i].d), dmin = fp16_to_fp32(b[i].dmin);
    const float inv_d = d > 0.0f ? 1.0f / d : 0.0f, inv_dmin = dmin > 0.0f ? 1.0f / dmin : 0.0f;
    int ls[8], lm[8];
    for (int j = 0; j < 8; ++j) {
      const int s0 = round_clamp(fits[j].scale * inv_d, 0, 63);
      const int m0 = round_clamp(fits[j].min * inv_dmin, 0, 63);
      ls[j] = s0;
      lm[j] = m0;
      float best = affine_error(x + j * kSub, kSub, d * s0, dmin * m0);
      for (int s = std::max(0, s0 - 1); s <= std::min(63, s0 + 1); ++s) {
        for (int m = std::max(0, m0 - 1); m <= std::min(63, m0 + 1); ++m) {
          const float err = affine_error(x + j * kSub, kSub, d * s, dmin * m);
          if (err < best) {
            best = err;
            ls[j] = s;
            lm[j] = m;
          }
        }
      }
    }
    pack_q4_K_scales(ls, lm, b[i].scales);
    int levels[kQKK];
    for (int j = 0; j < 8; ++j) {
      const float scale = d * ls[j], min = dmin * lm[j];
      const float inv = scale > 0.0f ? 1.0f / scale : 0.0f;
      for (int l = 0; l < kSub; ++l) {
        levels[j * kSub + l] = round_clamp((x[j * kSub + l] + min) * inv, 0, 15);
      }
    }
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) {
        b[i].qs[32 * c + l] =
            static_cast<uint8_t>(levels[64 * c + l] | (levels[64 * c + 32 + l] << 4));
      }
    }
  }
}

void quantize_q6_K(const float* x, BlockQ6_K* b, int64_t nb) {
  constexpr int kSub = 16;
  for (int64_t i = 0; i < nb; ++i, x += kQKK) {
    float scales[16];
    float amax = 0.0f, smax = 0.0f;
    for (int j = 0; j < 16; ++j) {
      scales[j] = fit_symmetric_scale(x + j * kSub, kSub);
      if (std::fabs(scales[j]) > amax) {
        amax = std::fabs(scales[j]);
        smax = scales[j];
      }
    }
    b[i].d = fp32_to_fp16_round_up(smax / -128.0f);  // the largest scale maps to int8 -128
    const float d = fp16_to_fp32(b[i].d);
    const float inv_d = d != 0.0f ? 1.0f / d : 0.0f;
    int levels[kQKK];
    for (int j = 0; j < 16; ++j) {
      const float* xs = x + j * kSub;
      const int s0 = round_clamp(scales[j] * inv_d, -128, 127);
      int sc = s0;
      float best = symmetric_error(xs, kSub, d * s0);
      for (int s = std::max(-128, s0 - 1); s <= std::min(127, s0 + 1); ++s) {
        const float err = symmetric_error(xs, kSub, d * s);
        if (err < best) {
          best = err;
          sc = s;
        }
      }
      b[i].scales[j] = static_cast<int8_t>(sc);
      const float scale = d * sc;
      const float inv = scale != 0.0f ? 1.0f / scale : 0.0f;
      for (int l = 0; l < kSub; ++l) levels[j * kSub + l] = round_clamp(xs[l] * inv, -32, 31) + 32;
    }
    for (int h = 0; h < 2; ++h) {
      const int* q = levels + 128 * h;
      for (int l = 0; l < 32; ++l) {
        b[i].ql[64 * h + l] = static_cast<uint8_t>((q[l] & 0xF) | ((q[l + 64] & 0xF) << 4));
        b[i].ql[64 * h + l + 32] =
            static_cast<uint8_t>((q[l + 32] & 0xF) | ((q[l + 96] & 0xF) << 4));
        b[i].qh[32 * h + l] =
            static_cast<uint8_t>((q[l] >> 4) | ((q[l + 32] >> 4) << 2) | ((q[l + 64] >> 4) << 4) |
                                 ((q[l + 96] >> 4) << 6));
      }
    }
  }
}

}  // namespace pv::kernels
