// Decoders and quantizers of the block types llama.cpp's usual mixes add to the original
// seven: Q4_1, Q5_0, Q5_1 (32-value blocks), Q2_K, Q3_K, Q5_K (K-quants), IQ4_NL and IQ4_XS
// (the non-linear 4-bit codebook). Decoders follow ggml's f32 arithmetic order exactly
// (scale products formed first, no fused multiply-add), which is what makes them
// bit-exact against ggml's to_float. The quantizers are pv's own: a least-squares search
// per sub-block (the plain range mapping is one candidate, so the search never loses to
// it), then the sub-block scales quantized under an fp16 super-scale with a +-1 re-search.
#include "kernels/quant/quant_ext.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/quant/half.h"
#include "kernels/quant/quant_blocks.h"

namespace pv::kernels {
namespace {

// ---- decoders ------------------------------------------------------------------------

void dequantize_q4_1(const BlockQ4_1* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = fp16_to_fp32(b[i].d), m = fp16_to_fp32(b[i].m);
    for (int j = 0; j < kQK / 2; ++j) {
      const float p0 = static_cast<float>(b[i].qs[j] & 0xF) * d;
      const float p1 = static_cast<float>(b[i].qs[j] >> 4) * d;
      y[j] = p0 + m;
      y[j + kQK / 2] = p1 + m;
    }
  }
}

void dequantize_q5_0(const BlockQ5_0* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = fp16_to_fp32(b[i].d);
    const uint32_t qh = q5_high_bits(b[i].qh);
    for (int j = 0; j < kQK / 2; ++j) {
      const int h0 = static_cast<int>((qh >> j) & 1u) << 4;
      const int h1 = static_cast<int>((qh >> (j + 16)) & 1u) << 4;
      y[j] = static_cast<float>(((b[i].qs[j] & 0xF) | h0) - 16) * d;
      y[j + kQK / 2] = static_cast<float>(((b[i].qs[j] >> 4) | h1) - 16) * d;
    }
  }
}

void dequantize_q5_1(const BlockQ5_1* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = fp16_to_fp32(b[i].d), m = fp16_to_fp32(b[i].m);
    const uint32_t qh = q5_high_bits(b[i].qh);
    for (int j = 0; j < kQK / 2; ++j) {
      const int h0 = static_cast<int>((qh >> j) & 1u) << 4;
      const int h1 = static_cast<int>((qh >> (j + 16)) & 1u) << 4;
      const float p0 = static_cast<float>((b[i].qs[j] & 0xF) | h0) * d;
      const float p1 = static_cast<float>((b[i].qs[j] >> 4) | h1) * d;
      y[j] = p0 + m;
      y[j + kQK / 2] = p1 + m;
    }
  }
}

// Value v of 0..255 in a Q2_K / Q3_K block: 128-value half h = v/128, within it shift
// s = (v%128)/32 selects bits 2s..2s+1 of qs[32h + v%32].
void dequantize_q2_K(const BlockQ2_K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(b[i].d), dmin = fp16_to_fp32(b[i].dmin);
    const uint8_t* q = b[i].qs;
    int is = 0;
    for (int h = 0; h < 2; ++h, q += 32) {
      for (int s = 0; s < 4; ++s) {
        for (int part = 0; part < 2; ++part, ++is) {
          const uint8_t sc = b[i].scales[is];
          const float dl = d * static_cast<float>(sc & 0xF);
          const float ml = dmin * static_cast<float>(sc >> 4);
          for (int l = 0; l < 16; ++l) {
            const float p = dl * static_cast<float>((q[16 * part + l] >> (2 * s)) & 3);
            *y++ = p - ml;
          }
        }
      }
    }
  }
}

void dequantize_q3_K(const BlockQ3_K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(b[i].d);
    int sc[16];
    q3k_scales(b[i].scales, sc);
    const uint8_t* q = b[i].qs;
    int is = 0;
    uint8_t m = 1;
    for (int h = 0; h < 2; ++h, q += 32) {
      for (int s = 0; s < 4; ++s, m = static_cast<uint8_t>(m << 1)) {
        for (int part = 0; part < 2; ++part, ++is) {
          const float dl = d * static_cast<float>(sc[is] - 32);
          for (int l = 0; l < 16; ++l) {
            const int k = 16 * part + l;
            const int v = ((q[k] >> (2 * s)) & 3) - ((b[i].hmask[k] & m) ? 0 : 4);
            *y++ = dl * static_cast<float>(v);
          }
        }
      }
    }
  }
}

void dequantize_q5_K(const BlockQ5_K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(b[i].d), dmin = fp16_to_fp32(b[i].dmin);
    const uint8_t* ql = b[i].qs;
    for (int c = 0; c < 4; ++c, ql += 32) {
      uint8_t sc, mn;
      q4k_scale_min(2 * c, b[i].scales, &sc, &mn);
      const float d1 = d * sc, m1 = dmin * mn;
      q4k_scale_min(2 * c + 1, b[i].scales, &sc, &mn);
      const float d2 = d * sc, m2 = dmin * mn;
      const uint8_t u1 = static_cast<uint8_t>(1u << (2 * c)), u2 = static_cast<uint8_t>(u1 << 1);
      for (int l = 0; l < 32; ++l) {
        const float p = d1 * static_cast<float>((ql[l] & 0xF) + ((b[i].qh[l] & u1) ? 16 : 0));
        *y++ = p - m1;
      }
      for (int l = 0; l < 32; ++l) {
        const float p = d2 * static_cast<float>((ql[l] >> 4) + ((b[i].qh[l] & u2) ? 16 : 0));
        *y++ = p - m2;
      }
    }
  }
}

void dequantize_iq4_nl(const BlockIQ4_NL* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = fp16_to_fp32(b[i].d);
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = d * static_cast<float>(kIQ4NLValues[b[i].qs[j] & 0xF]);
      y[j + kQK / 2] = d * static_cast<float>(kIQ4NLValues[b[i].qs[j] >> 4]);
    }
  }
}

void dequantize_iq4_xs(const BlockIQ4_XS* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(b[i].d);
    for (int ib = 0; ib < kQKK / 32; ++ib, y += 32) {
      const float dl = d * static_cast<float>(iq4xs_scale(b[i], ib) - 32);
      const uint8_t* qs = b[i].qs + 16 * ib;
      for (int j = 0; j < 16; ++j) {
        y[j] = dl * static_cast<float>(kIQ4NLValues[qs[j] & 0xF]);
        y[j + 16] = dl * static_cast<float>(kIQ4NLValues[qs[j] >> 4]);
      }
    }
  }
}

// ---- quantizer building blocks -------------------------------------------------------

int round_clamp(float v, int lo, int hi) {
  if (!(v == v)) return lo;  // only a 0 * inf scale product can get here; keep it in range
  return std::clamp(static_cast<int>(std::nearbyint(std::clamp(v, -1e9f, 1e9f))), lo, hi);
}

// x ~= scale * L + offset with L in [0, nmax]. `offset_max_zero` restricts the offset to
// <= 0 (the K-quants store a min that is subtracted); the 32-value types store any offset.
struct Affine {
  float scale = 0.0f;
  float offset = 0.0f;
};

float affine_error(const float* x, int n, int nmax, Affine a) {
  const float inv = a.scale > 0.0f ? 1.0f / a.scale : 0.0f;
  float err = 0.0f;
  for (int i = 0; i < n; ++i) {
    const int l = round_clamp((x[i] - a.offset) * inv, 0, nmax);
    const float e = a.scale * static_cast<float>(l) + a.offset - x[i];
    err += e * e;
  }
  return err;
}

// Least-squares affine fit over a sweep of candidate inverse scales around the range
// mapping (hi - lo)/nmax; each candidate's levels get the optimal scale and offset.
Affine fit_affine(const float* x, int n, int nmax, bool offset_max_zero) {
  float lo = offset_max_zero ? 0.0f : x[0], hi = x[0];
  for (int i = 0; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  if (!(hi > lo)) return Affine{0.0f, lo};
  Affine best{(hi - lo) / static_cast<float>(nmax), lo};
  float best_err = affine_error(x, n, nmax, best);
  for (int step = 0; step <= 25; ++step) {
    const float iscale =
        (static_cast<float>(nmax) - 1.0f + 0.1f * static_cast<float>(step)) / (hi - lo);
    double sl = 0, sl2 = 0, sx = 0, sxl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = round_clamp(iscale * (x[i] - lo), 0, nmax);
      sl += l;
      sl2 += static_cast<double>(l) * l;
      sx += x[i];
      sxl += static_cast<double>(x[i]) * l;
    }
    const double det = n * sl2 - sl * sl;
    if (det <= 0) continue;
    double a = (n * sxl - sl * sx) / det;
    double b = (sl2 * sx - sl * sxl) / det;
    if (offset_max_zero && b > 0) {
      b = 0;
      a = sxl / sl2;
    }
    if (a <= 0) continue;
    const Affine cand{static_cast<float>(a), static_cast<float>(b)};
    const float err = affine_error(x, n, nmax, cand);
    if (err < best_err) {
      best_err = err;
      best = cand;
    }
  }
  return best;
}

// x ~= scale * L with L in [nmin, nmax] (nmin = -nmax - 1); the largest magnitude maps to
// nmin (the level with the extra step), then a least-squares sweep around that.
float symmetric_error(const float* x, int n, int nmin, int nmax, float scale) {
  const float inv = scale != 0.0f ? 1.0f / scale : 0.0f;
  float err = 0.0f;
  for (int i = 0; i < n; ++i) {
    const int l = round_clamp(x[i] * inv, nmin, nmax);
    const float e = scale * static_cast<float>(l) - x[i];
    err += e * e;
  }
  return err;
}

float fit_symmetric(const float* x, int n, int nmin, int nmax) {
  float amax = 0.0f, xmax = 0.0f;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      xmax = x[i];
    }
  }
  if (amax == 0.0f) return 0.0f;
  const float span = static_cast<float>(-nmin);
  float best = xmax / -span;
  float best_err = symmetric_error(x, n, nmin, nmax, best);
  for (int step = -10; step <= 10; ++step) {
    const float iscale = -(span + 0.1f * static_cast<float>(step)) / xmax;
    double sxl = 0, sl2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = round_clamp(iscale * x[i], nmin, nmax);
      sxl += static_cast<double>(x[i]) * l;
      sl2 += static_cast<double>(l) * l;
    }
    if (sl2 <= 0) continue;
    const float cand = static_cast<float>(sxl / sl2);
    const float err = symmetric_error(x, n, nmin, nmax, cand);
    if (err < best_err) {
      best_err = err;
      best = cand;
    }
  }
  return best;
}

// The codebook level nearest to v (kIQ4NLValues is sorted): a binary search for the first
// level above v, then the nearer of it and the one below (ties to the lower level).
int nearest_iq4(float v) {
  int lo = 0, hi = 16;
  while (lo < hi) {
    const int mid = (lo + hi) / 2;
    if (static_cast<float>(kIQ4NLValues[mid]) <= v) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (lo == 0) return 0;
  if (lo == 16) return 15;
  const float below = v - static_cast<float>(kIQ4NLValues[lo - 1]);
  const float above = static_cast<float>(kIQ4NLValues[lo]) - v;
  return above < below ? lo : lo - 1;
}

float iq4_error(const float* x, int n, float scale) {
  const float inv = scale != 0.0f ? 1.0f / scale : 0.0f;
  float err = 0.0f;
  for (int i = 0; i < n; ++i) {
    const float e = scale * static_cast<float>(kIQ4NLValues[nearest_iq4(x[i] * inv)]) - x[i];
    err += e * e;
  }
  return err;
}

// Scale of x ~= scale * kIQ4NLValues[idx]: the extreme value maps to -127 (the codebook's
// largest magnitude) and a sweep of smaller and larger candidates is refitted by least
// squares on their chosen indices.
float fit_iq4(const float* x, int n) {
  float amax = 0.0f, xmax = 0.0f;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      xmax = x[i];
    }
  }
  if (amax == 0.0f) return 0.0f;
  float best = xmax / -127.0f;
  float best_err = iq4_error(x, n, best);
  for (int step = -10; step <= 10; ++step) {
    const float cand0 = xmax / (-127.0f + 5.0f * static_cast<float>(step));
    const float inv = 1.0f / cand0;
    double sxl = 0, sl2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = kIQ4NLValues[nearest_iq4(x[i] * inv)];
      sxl += static_cast<double>(x[i]) * l;
      sl2 += static_cast<double>(l) * l;
    }
    if (sl2 <= 0) continue;
    const float cand = static_cast<float>(sxl / sl2);
    const float err = iq4_error(x, n, cand);
    if (err < best_err) {
      best_err = err;
      best = cand;
    }
  }
  return best;
}

// A 32-value affine block (Q4_1, Q5_1): fp16 scale and offset, the level of each value
// recomputed against the stored (rounded) pair.
template <typename Block>
void quantize_affine32(const float* x, Block* b, int nmax, int* levels) {
  const Affine a = fit_affine(x, kQK, nmax, false);
  b->d = fp32_to_fp16(a.scale);
  b->m = fp32_to_fp16(a.offset);
  const float d = fp16_to_fp32(b->d), m = fp16_to_fp32(b->m);
  const float inv = d > 0.0f ? 1.0f / d : 0.0f;
  for (int j = 0; j < kQK; ++j) levels[j] = round_clamp((x[j] - m) * inv, 0, nmax);
}

void pack_nibbles32(const int* levels, uint8_t* qs) {
  for (int j = 0; j < kQK / 2; ++j) {
    qs[j] = static_cast<uint8_t>((levels[j] & 0xF) | ((levels[j + kQK / 2] & 0xF) << 4));
  }
}

void pack_q5_high(const int* levels, uint8_t* qh) {
  uint32_t bits = 0;
  for (int j = 0; j < kQK; ++j) bits |= static_cast<uint32_t>((levels[j] >> 4) & 1) << j;
  for (int k = 0; k < 4; ++k) qh[k] = static_cast<uint8_t>(bits >> (8 * k));
}

// Best integer sub-block scale (and min) within +-1 of the rounded one, by the squared error
// of the final levels: rounding the scale moves the optimum.
struct ScaleMin {
  int s;
  int m;
};

ScaleMin research_affine(const float* x, int n, int nmax, float d, float dmin, float scale,
                         float min, int smax, int mmax) {
  const int s0 = round_clamp(d > 0.0f ? scale / d : 0.0f, 0, smax);
  const int m0 = round_clamp(dmin > 0.0f ? min / dmin : 0.0f, 0, mmax);
  ScaleMin best{s0, m0};
  float best_err = affine_error(x, n, nmax, {d * s0, -(dmin * m0)});
  for (int s = std::max(0, s0 - 1); s <= std::min(smax, s0 + 1); ++s) {
    for (int m = std::max(0, m0 - 1); m <= std::min(mmax, m0 + 1); ++m) {
      const float err = affine_error(x, n, nmax, {d * s, -(dmin * m)});
      if (err < best_err) {
        best_err = err;
        best = {s, m};
      }
    }
  }
  return best;
}

}  // namespace

void dequantize_ext(GgmlType type, const void* src, float* dst, int64_t nb) {
  switch (type) {
    case GgmlType::Q4_1:
      return dequantize_q4_1(static_cast<const BlockQ4_1*>(src), dst, nb);
    case GgmlType::Q5_0:
      return dequantize_q5_0(static_cast<const BlockQ5_0*>(src), dst, nb);
    case GgmlType::Q5_1:
      return dequantize_q5_1(static_cast<const BlockQ5_1*>(src), dst, nb);
    case GgmlType::Q2_K:
      return dequantize_q2_K(static_cast<const BlockQ2_K*>(src), dst, nb);
    case GgmlType::Q3_K:
      return dequantize_q3_K(static_cast<const BlockQ3_K*>(src), dst, nb);
    case GgmlType::Q5_K:
      return dequantize_q5_K(static_cast<const BlockQ5_K*>(src), dst, nb);
    case GgmlType::IQ4_NL:
      return dequantize_iq4_nl(static_cast<const BlockIQ4_NL*>(src), dst, nb);
    case GgmlType::IQ4_XS:
      return dequantize_iq4_xs(static_cast<const BlockIQ4_XS*>(src), dst, nb);
    default:
      break;
  }
}

void quantize_q4_1(const float* x, BlockQ4_1* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    int levels[kQK];
    quantize_affine32(x, &b[i], 15, levels);
    pack_nibbles32(levels, b[i].qs);
  }
}

void quantize_q5_1(const float* x, BlockQ5_1* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    int levels[kQK];
    quantize_affine32(x, &b[i], 31, levels);
    pack_nibbles32(levels, b[i].qs);
    pack_q5_high(levels, b[i].qh);
  }
}

// Q5_0: symmetric levels -16..15, the extreme mapping to -16 (scale magnitude rounded up so
// it never clamps), the least-squares sweep choosing among candidates.
void quantize_q5_0(const float* x, BlockQ5_0* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    b[i].d = fp32_to_fp16(fit_symmetric(x, kQK, -16, 15));
    const float d = fp16_to_fp32(b[i].d);
    const float inv = d != 0.0f ? 1.0f / d : 0.0f;
    int levels[kQK];
    for (int j = 0; j < kQK; ++j) levels[j] = round_clamp(x[j] * inv, -16, 15) + 16;
    pack_nibbles32(levels, b[i].qs);
    pack_q5_high(levels, b[i].qh);
  }
}

void quantize_iq4_nl(const float* x, BlockIQ4_NL* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    b[i].d = fp32_to_fp16(fit_iq4(x, kQK));
    const float d = fp16_to_fp32(b[i].d);
    const float inv = d != 0.0f ? 1.0f / d : 0.0f;
    int levels[kQK];
    for (int j = 0; j < kQK; ++j) levels[j] = nearest_iq4(x[j] * inv);
    pack_nibbles32(levels, b[i].qs);
  }
}

// Q2_K: per 16 values an affine fit with levels 0..3 and a subtracted min; scales and mins
// as 4-bit integers under fp16 d and dmin (rounded up: the largest never clamps).
void quantize_q2_K(const float* x, BlockQ2_K* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQKK) {
    Affine fits[16];
    float max_scale = 0.0f, max_min = 0.0f;
    for (int j = 0; j < 16; ++j) {
      fits[j] = fit_affine(x + 16 * j, 16, 3, true);
      max_scale = std::max(max_scale, fits[j].scale);
      max_min = std::max(max_min, -fits[j].offset);
    }
    b[i].d = fp32_to_fp16_round_up(max_scale / 15.0f);
    b[i].dmin = fp32_to_fp16_round_up(max_min / 15.0f);
    const float d = fp16_to_fp32(b[i].d), dmin = fp16_to_fp32(b[i].dmin);
    int levels[kQKK];
    for (int j = 0; j < 16; ++j) {
      const ScaleMin sm =
          research_affine(x + 16 * j, 16, 3, d, dmin, fits[j].scale, -fits[j].offset, 15, 15);
      b[i].scales[j] = static_cast<uint8_t>(sm.s | (sm.m << 4));
      const float scale = d * sm.s, min = dmin * sm.m;
      const float inv = scale > 0.0f ? 1.0f / scale : 0.0f;
      for (int l = 0; l < 16; ++l)
        levels[16 * j + l] = round_clamp((x[16 * j + l] + min) * inv, 0, 3);
    }
    // Value v: half h = v/128, shift s = (v%128)/32, byte 32h + v%32.
    for (int k = 0; k < kQKK / 4; ++k) b[i].qs[k] = 0;
    for (int v = 0; v < kQKK; ++v) {
      b[i].qs[32 * (v / 128) + v % 32] |= static_cast<uint8_t>(levels[v] << (2 * ((v % 128) / 32)));
    }
  }
}

// Q3_K: per 16 values a symmetric fit with levels -4..3; the 6-bit signed scales (-32..31)
// under an fp16 d whose sign maps the largest scale magnitude to -32.
void quantize_q3_K(const float* x, BlockQ3_K* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQKK) {
    float scales[16], amax = 0.0f, smax = 0.0f;
    for (int j = 0; j < 16; ++j) {
      scales[j] = fit_symmetric(x + 16 * j, 16, -4, 3);
      if (std::fabs(scales[j]) > amax) {
        amax = std::fabs(scales[j]);
        smax = scales[j];
      }
    }
    b[i].d = fp32_to_fp16_round_up(smax / -32.0f);
    const float d = fp16_to_fp32(b[i].d);
    const float inv_d = d != 0.0f ? 1.0f / d : 0.0f;
    int sc[16], levels[kQKK];
    for (int j = 0; j < 16; ++j) {
      const float* xs = x + 16 * j;
      const int s0 = round_clamp(scales[j] * inv_d, -32, 31);
      sc[j] = s0;
      float best = symmetric_error(xs, 16, -4, 3, d * s0);
      for (int s = std::max(-32, s0 - 1); s <= std::min(31, s0 + 1); ++s) {
        const float err = symmetric_error(xs, 16, -4, 3, d * s);
        if (err < best) {
          best = err;
          sc[j] = s;
        }
      }
      const float scale = d * sc[j];
      const float inv = scale != 0.0f ? 1.0f / scale : 0.0f;
      for (int l = 0; l < 16; ++l) levels[16 * j + l] = round_clamp(xs[l] * inv, -4, 3) + 4;
    }
    for (int k = 0; k < 12; ++k) b[i].scales[k] = 0;
    for (int j = 0; j < 16; ++j) {
      const int s = sc[j] + 32;
      if (j < 8) {
        b[i].scales[j] |= static_cast<uint8_t>(s & 0xF);
      } else {
        b[i].scales[j - 8] |= static_cast<uint8_t>((s & 0xF) << 4);
      }
      b[i].scales[8 + j % 4] |= static_cast<uint8_t>((s >> 4) << (2 * (j / 4)));
    }
    for (int k = 0; k < kQKK / 4; ++k) b[i].qs[k] = 0;
    for (int k = 0; k < kQKK / 8; ++k) b[i].hmask[k] = 0;
    for (int v = 0; v < kQKK; ++v) {
      const int s = (v % 128) / 32, k = v % 32;
      b[i].qs[32 * (v / 128) + k] |= static_cast<uint8_t>((levels[v] & 3) << (2 * s));
      if (levels[v] >= 4) b[i].hmask[k] |= static_cast<uint8_t>(1u << (4 * (v / 128) + s));
    }
  }
}

// Q5_K: Q4_K's plan with 5-bit levels (0..31).
void quantize_q5_K(const float* x, BlockQ5_K* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQKK) {
    Affine fits[8];
    float max_scale = 0.0f, max_min = 0.0f;
    for (int j = 0; j < 8; ++j) {
      fits[j] = fit_affine(x + 32 * j, 32, 31, true);
      max_scale = std::max(max_scale, fits[j].scale);
      max_min = std::max(max_min, -fits[j].offset);
    }
    b[i].d = fp32_to_fp16_round_up(max_scale / 63.0f);
    b[i].dmin = fp32_to_fp16_round_up(max_min / 63.0f);
    const float d = fp16_to_fp32(b[i].d), dmin = fp16_to_fp32(b[i].dmin);
    int ls[8], lm[8], levels[kQKK];
    for (int j = 0; j < 8; ++j) {
      const ScaleMin sm =
          research_affine(x + 32 * j, 32, 31, d, dmin, fits[j].scale, -fits[j].offset, 63, 63);
      ls[j] = sm.s;
      lm[j] = sm.m;
      const float scale = d * sm.s, min = dmin * sm.m;
      const float inv = scale > 0.0f ? 1.0f / scale : 0.0f;
      for (int l = 0; l < 32; ++l)
        levels[32 * j + l] = round_clamp((x[32 * j + l] + min) * inv, 0, 31);
    }
    for (int j = 0; j < 4; ++j) {
      b[i].scales[j] = static_cast<uint8_t>(ls[j] | ((ls[j + 4] >> 4) << 6));
      b[i].scales[j + 4] = static_cast<uint8_t>(lm[j] | ((lm[j + 4] >> 4) << 6));
      b[i].scales[j + 8] = static_cast<uint8_t>((ls[j + 4] & 0xF) | ((lm[j + 4] & 0xF) << 4));
    }
    for (int l = 0; l < 32; ++l) b[i].qh[l] = 0;
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) {
        const int lo = levels[64 * c + l], hi = levels[64 * c + 32 + l];
        b[i].qs[32 * c + l] = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
        b[i].qh[l] |= static_cast<uint8_t>(((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
      }
    }
  }
}

// IQ4_XS: an IQ4_NL scale per 32 values, quantized to 6-bit signed integers (-32..31) under
// an fp16 d that maps the largest magnitude to -32, with a +-1 re-search.
void quantize_iq4_xs(const float* x, BlockIQ4_XS* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQKK) {
    float scales[8], amax = 0.0f, smax = 0.0f;
    for (int j = 0; j < 8; ++j) {
      scales[j] = fit_iq4(x + 32 * j, 32);
      if (std::fabs(scales[j]) > amax) {
        amax = std::fabs(scales[j]);
        smax = scales[j];
      }
    }
    b[i].d = fp32_to_fp16_round_up(smax / -32.0f);
    const float d = fp16_to_fp32(b[i].d);
    const float inv_d = d != 0.0f ? 1.0f / d : 0.0f;
    b[i].scales_h = 0;
    for (int k = 0; k < 4; ++k) b[i].scales_l[k] = 0;
    for (int j = 0; j < 8; ++j) {
      const float* xs = x + 32 * j;
      const int s0 = round_clamp(scales[j] * inv_d, -32, 31);
      int sc = s0;
      float best = iq4_error(xs, 32, d * s0);
      for (int s = std::max(-32, s0 - 1); s <= std::min(31, s0 + 1); ++s) {
        const float err = iq4_error(xs, 32, d * s);
        if (err < best) {
          best = err;
          sc = s;
        }
      }
      const int biased = sc + 32;
      b[i].scales_l[j / 2] |= static_cast<uint8_t>((biased & 0xF) << (4 * (j % 2)));
      b[i].scales_h = static_cast<uint16_t>(b[i].scales_h | ((biased >> 4) << (2 * j)));
      const float scale = d * sc;
      const float inv = scale != 0.0f ? 1.0f / scale : 0.0f;
      int levels[32];
      for (int l = 0; l < 32; ++l) levels[l] = nearest_iq4(xs[l] * inv);
      for (int l = 0; l < 16; ++l) {
        b[i].qs[16 * j + l] = static_cast<uint8_t>(levels[l] | (levels[l + 16] << 4));
      }
    }
  }
}

}  // namespace pv::kernels
