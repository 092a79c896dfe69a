// Shared by the op-level falsifiers (kernel_parity_*_test.cpp, every backend) and the CUDA
// parity tests: an independent reference written from the block layouts in
// ../shared/REFERENCE.md (double accumulation), random weight blocks with finite scales,
// guarded backend buffers (device memory on CUDA, host memory on the CPU backend), and the
// error measures DESIGN.md names (NMSE = sum (a-b)^2 / sum a^2 as llama.cpp's backend tests,
// cosine, max |a-b|).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "falsifiers/support/op_reference_ext.h"
#include "harness/testing/pv_test.h"
#include "kernels/backend.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/quant/ggml_types.h"
#include "kernels/tensor.h"

namespace pv::optest {

using kernels::GgmlType;

// Skips with "fixture-absent: cuda-device" (never a pass) when no device can be used.
#define PV_REQUIRE_CUDA_BACKEND(var)                                      \
  std::unique_ptr<::pv::kernels::Backend> var;                            \
  do {                                                                    \
    std::string pv_why_;                                                  \
    if (!::pv::kernels::cuda_device_available(&pv_why_)) {                \
      std::printf("%s\n", pv_why_.c_str());                               \
      PV_SKIP_FIXTURE_ABSENT("cuda-device");                              \
    }                                                                     \
    var = ::pv::kernels::make_cuda_backend(0);                            \
    ::testing::Test::RecordProperty("device", var->device_description()); \
  } while (0)

inline float half_to_float(uint16_t h) {
  _Float16 v;
  std::memcpy(&v, &h, 2);
  return static_cast<float>(v);
}
inline uint16_t float_to_half(float f) {
  const _Float16 v = static_cast<_Float16>(f);
  uint16_t h;
  std::memcpy(&h, &v, 2);
  return h;
}
inline float bf16_to_float(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Backend::prepare_weight caches by host address (tied embeddings share one upload), so a
// freed and reallocated host buffer would alias an earlier weight: tests keep every
// weight's bytes alive in a HostBytes for as long as the backend may look them up.
using HostBytes = std::deque<std::vector<uint8_t>>;

inline const std::vector<GgmlType>& all_weight_types() {
  static const std::vector<GgmlType> v = {
      GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q8_0,   GgmlType::Q4_0,
      GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q4_1, GgmlType::Q5_0,   GgmlType::Q5_1,
      GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q5_K, GgmlType::IQ4_NL, GgmlType::IQ4_XS};
  return v;
}

// Random rows of `type`: every quant bit pattern is possible (random bytes), while the
// f16 scale fields are drawn finite and small so values stay O(1).
inline std::vector<uint8_t> random_weight(GgmlType type, int64_t rows, int64_t cols,
                                          std::mt19937_64& rng) {
  const size_t rb = kernels::row_bytes(type, cols);
  std::vector<uint8_t> out(rb * static_cast<size_t>(rows));
  std::uniform_int_distribution<int> byte(0, 255);
  for (auto& b : out) b = static_cast<uint8_t>(byte(rng));
  std::normal_distribution<float> normal(0.f, 1.f);
  std::uniform_real_distribution<float> scale(0.2f, 1.f);
  auto put_half = [&](uint8_t* p, float v) {
    const uint16_t h = float_to_half(v);
    std::memcpy(p, &h, 2);
  };
  const size_t n = static_cast<size_t>(rows * cols);
  switch (type) {
    case GgmlType::F32:
      for (size_t i = 0; i < n; ++i) {
        const float v = normal(rng);
        std::memcpy(out.data() + 4 * i, &v, 4);
      }
      break;
    case GgmlType::F16:
      for (size_t i = 0; i < n; ++i) put_half(out.data() + 2 * i, normal(rng));
      break;
    case GgmlType::BF16:
      for (size_t i = 0; i < n; ++i) {
        const float v = normal(rng);
        uint32_t u;
        std::memcpy(&u, &v, 4);
        const uint16_t b = static_cast<uint16_t>(u >> 16);
        std::memcpy(out.data() + 2 * i, &b, 2);
      }
      break;
    case GgmlType::Q8_0:
      for (size_t b = 0; b < n / 32; ++b) put_half(out.data() + 34 * b, scale(rng) / 64.f);
      break;
    case GgmlType::Q4_0:
      for (size_t b = 0; b < n / 32; ++b) put_half(out.data() + 18 * b, scale(rng) / 4.f);
      break;
    case GgmlType::Q4_K:
      for (size_t b = 0; b < n / 256; ++b) {
        put_half(out.data() + 144 * b, scale(rng) / 64.f);
        put_half(out.data() + 144 * b + 2, scale(rng) / 64.f);
      }
      break;
    case GgmlType::Q6_K:
      for (size_t b = 0; b < n / 256; ++b) put_half(out.data() + 210 * b + 208, scale(rng) / 256.f);
      break;
    case GgmlType::Q4_1:
    case GgmlType::Q5_0:
    case GgmlType::Q5_1:
    case GgmlType::Q2_K:
    case GgmlType::Q3_K:
    case GgmlType::Q5_K:
    case GgmlType::IQ4_NL:
    case GgmlType::IQ4_XS: {
      const auto& tr = kernels::traits(type);
      for (size_t b = 0; b < n / static_cast<size_t>(tr.block_values); ++b) {
        for (const ExtScaleField& f : ext_scale_fields(type)) {
          const float v = scale(rng) * f.magnitude;
          put_half(out.data() + tr.block_bytes * b + f.offset, f.negative ? -v : v);
        }
      }
      break;
    }
  }
  return out;
}

// Reference decoder of one row, written from the layouts in REFERENCE.md.
inline std::vector<double> dequant_row(GgmlType type, const uint8_t* row, int64_t cols) {
  std::vector<double> y(static_cast<size_t>(cols));
  auto half_at = [](const uint8_t* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return static_cast<double>(half_to_float(h));
  };
  switch (type) {
    case GgmlType::F32:
      for (int64_t i = 0; i < cols; ++i) {
        float v;
        std::memcpy(&v, row + 4 * i, 4);
        y[i] = v;
      }
      break;
    case GgmlType::F16:
      for (int64_t i = 0; i < cols; ++i) y[i] = half_at(row + 2 * i);
      break;
    case GgmlType::BF16:
      for (int64_t i = 0; i < cols; ++i) {
        uint16_t b;
        std::memcpy(&b, row + 2 * i, 2);
        y[i] = bf16_to_float(b);
      }
      break;
    case GgmlType::Q8_0:
      for (int64_t b = 0; b < cols / 32; ++b) {
        const uint8_t* p = row + 34 * b;
        for (int j = 0; j < 32; ++j) y[32 * b + j] = half_at(p) * static_cast<int8_t>(p[2 + j]);
      }
      break;
    case GgmlType::Q4_0:
      for (int64_t b = 0; b < cols / 32; ++b) {
        const uint8_t* p = row + 18 * b;
        for (int j = 0; j < 16; ++j) {
          y[32 * b + j] = half_at(p) * ((p[2 + j] & 15) - 8);
          y[32 * b + j + 16] = half_at(p) * ((p[2 + j] >> 4) - 8);
        }
      }
      break;
    case GgmlType::Q4_K:
      for (int64_t b = 0; b < cols / 256; ++b) {
        const uint8_t* p = row + 144 * b;
        const double d = half_at(p), dmin = half_at(p + 2);
        const uint8_t* s = p + 4;
        const uint8_t* q = p + 16;
        auto sm = [&](int j, int* sc, int* m) {
          if (j < 4) {
            *sc = s[j] & 63;
            *m = s[j + 4] & 63;
          } else {
            *sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
            *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
          }
        };
        for (int c = 0; c < 4; ++c) {
          int sc0, m0, sc1, m1;
          sm(2 * c, &sc0, &m0);
          sm(2 * c + 1, &sc1, &m1);
          for (int l = 0; l < 32; ++l) {
            y[256 * b + 64 * c + l] = d * sc0 * (q[32 * c + l] & 15) - dmin * m0;
            y[256 * b + 64 * c + 32 + l] = d * sc1 * (q[32 * c + l] >> 4) - dmin * m1;
          }
        }
      }
      break;
    case GgmlType::Q6_K:
      for (int64_t b = 0; b < cols / 256; ++b) {
        const uint8_t* p = row + 210 * b;
        const double d = half_at(p + 208);
        const uint8_t* ql = p;
        const uint8_t* qh = p + 128;
        const int8_t* sc = reinterpret_cast<const int8_t*>(p + 192);
        double* yb = y.data() + 256 * b;
        for (int half = 0; half < 2; ++half) {
          for (int l = 0; l < 32; ++l) {
            const int is = l / 16;
            const int q1 = ((ql[l] & 15) | (((qh[l] >> 0) & 3) << 4)) - 32;
            const int q2 = ((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4)) - 32;
            const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            yb[l] = d * sc[is] * q1;
            yb[l + 32] = d * sc[is + 2] * q2;
            yb[l + 64] = d * sc[is + 4] * q3;
            yb[l + 96] = d * sc[is + 6] * q4;
          }
          yb += 128;
          ql += 64;
          qh += 32;
          sc += 8;
        }
      }
      break;
    case GgmlType::Q4_1:
    case GgmlType::Q5_0:
    case GgmlType::Q5_1:
    case GgmlType::Q2_K:
    case GgmlType::Q3_K:
    case GgmlType::Q5_K:
    case GgmlType::IQ4_NL:
    case GgmlType::IQ4_XS: {
      const auto& tr = kernels::traits(type);
      for (int64_t i = 0; i < cols; ++i) {
        const uint8_t* b = row + tr.block_bytes * static_cast<size_t>(i / tr.block_values);
        y[i] = ext_block_value(type, b, static_cast<int>(i % tr.block_values));
      }
      break;
    }
  }
  return y;
}

// The activations a matmul over block weights actually multiplies: both backends round x
// to int8 codes per activation block (32 values for 32-value weight blocks, 256 for 256-value ones)
// against d = amax/127, codes nearbyint(x * (127/amax)) in f32, a non-finite value making the whole
// block NaN. Written here from that statement, not taken from either backend. Float weights keep
// f32 x. n is a multiple of the block (rows of tokens back to back).
inline std::vector<float> act_rounded(GgmlType type, const float* x, int64_t n) {
  const int64_t block = kernels::traits(type).block_values == 32 ? 32 : 256;
  std::vector<float> out(x, x + n);
  for (int64_t b = 0; b < n; b += block) {
    float amax = 0.f;
    bool finite = true;
    for (int64_t i = b; i < b + block; ++i) {
      finite = finite && std::isfinite(x[i]);
      amax = std::max(amax, std::fabs(x[i]));
    }
    const float d = amax / 127.f, id = amax > 0.f ? 127.f / amax : 0.f;
    for (int64_t i = b; i < b + block; ++i)
      out[i] = finite ? d * std::clamp(std::nearbyint(x[i] * id), -127.f, 127.f) : NAN;
  }
  return out;
}

inline bool is_block_type(GgmlType t) { return kernels::traits(t).block_values > 1; }

inline std::vector<float> random_floats(size_t n, std::mt19937_64& rng, float sd = 1.f) {
  std::normal_distribution<float> normal(0.f, sd);
  std::vector<float> v(n);
  for (auto& x : v) x = normal(rng);
  return v;
}

struct Compare {
  double nmse = 0, cosine = 1, max_abs = 0;
  size_t nonfinite = 0;  // NaN/Inf in the candidate where the reference is finite
};

template <class Ref>
Compare compare(const Ref* ref, const float* got, size_t n) {
  Compare c;
  double se = 0, ss = 0, dot = 0, gg = 0;
  for (size_t i = 0; i < n; ++i) {
    const double a = static_cast<double>(ref[i]), b = got[i];
    if (!std::isfinite(b) && std::isfinite(a)) {
      ++c.nonfinite;
      continue;
    }
    se += (a - b) * (a - b);
    ss += a * a;
    dot += a * b;
    gg += b * b;
    c.max_abs = std::max(c.max_abs, std::fabs(a - b));
  }
  c.nmse = ss > 0 ? se / ss : se;
  c.cosine = (ss > 0 && gg > 0) ? dot / std::sqrt(ss * gg) : (se == 0 ? 1.0 : 0.0);
  return c;
}

// A backend buffer of n floats followed by kGuard guard floats: device memory on CUDA, host
// memory on the CPU backend; only the Backend's alloc/upload/download touch it, so it works
// for both. The guard and (for outputs) the payload start as a NaN sentinel; after an op the
// guard must be untouched and every payload element written.
class Guarded {
 public:
  static constexpr size_t kGuard = 64;
  static constexpr uint32_t kSentinel = 0x7FA5A5A5u;  // a quiet NaN no kernel produces

  Guarded(kernels::Backend& be, size_t n, const float* init = nullptr) : be_(be), n_(n) {
    d_ = be_.alloc(n_ + kGuard);
    std::vector<float> h(n_ + kGuard, sentinel());
    if (init != nullptr) std::memcpy(h.data(), init, n_ * sizeof(float));
    be_.upload(d_, h.data(), n_ + kGuard);
  }
  ~Guarded() { be_.free(d_); }
  Guarded(const Guarded&) = delete;
  Guarded& operator=(const Guarded&) = delete;

  float* get() const { return d_; }
  // Downloads the payload; counts guard floats changed and payload floats still holding
  // the sentinel (never written).
  std::vector<float> fetch(size_t* guard_hits, size_t* unwritten) const {
    std::vector<float> h(n_ + kGuard);
    be_.synchronize();
    be_.download(h.data(), d_, n_ + kGuard);
    *guard_hits = 0;
    *unwritten = 0;
    for (size_t i = 0; i < n_ + kGuard; ++i) {
      uint32_t u;
      std::memcpy(&u, &h[i], 4);
      if (i >= n_ && u != kSentinel) ++*guard_hits;
      if (i < n_ && u == kSentinel) ++*unwritten;
    }
    h.resize(n_);
    return h;
  }
  static float sentinel() {
    float f;
    std::memcpy(&f, &kSentinel, 4);
    return f;
  }

 private:
  kernels::Backend& be_;
  size_t n_;
  float* d_;
};

// ---- reference ops (double) -------------------------------------------------------------

// Causal GQA attention, naive repeat-KV form: out[t, h, :] over cache rows [0, pos0+t].
// scores / probs (when non-null) get [H, T, L] like Backend::attention.
inline void ref_attention(const std::vector<float>& q, const std::vector<float>& k,
                          const std::vector<float>& v, int H, int Hkv, int D, int T, int pos0,
                          std::vector<double>* out, std::vector<double>* scores,
                          std::vector<double>* probs) {
  const int L = pos0 + T;
  out->assign(static_cast<size_t>(T) * H * D, 0.0);
  if (scores) scores->assign(static_cast<size_t>(H) * T * L, 0.0);
  if (probs) probs->assign(static_cast<size_t>(H) * T * L, 0.0);
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  std::vector<double> s(L);
  for (int h = 0; h < H; ++h) {
    const int kvh = h / (H / Hkv);
    for (int t = 0; t < T; ++t) {
      const int qpos = pos0 + t;
      for (int j = 0; j < L; ++j) {
        double dot = 0;
        for (int d = 0; d < D; ++d)
          dot += static_cast<double>(q[(static_cast<size_t>(t) * H + h) * D + d]) *
                 k[(static_cast<size_t>(j) * Hkv + kvh) * D + d];
        s[j] = dot * scale;
        if (scores) (*scores)[(static_cast<size_t>(h) * T + t) * L + j] = s[j];
      }
      double m = -INFINITY, sum = 0;
      for (int j = 0; j <= qpos; ++j) m = std::max(m, s[j]);
      for (int j = 0; j < L; ++j) {
        s[j] = j <= qpos ? std::exp(s[j] - m) : 0.0;
        sum += s[j];
      }
      for (int j = 0; j < L; ++j) {
        s[j] /= sum;
        if (probs) (*probs)[(static_cast<size_t>(h) * T + t) * L + j] = s[j];
      }
      for (int d = 0; d < D; ++d) {
        double acc = 0;
        for (int j = 0; j <= qpos; ++j)
          acc += s[j] * v[(static_cast<size_t>(j) * Hkv + kvh) * D + d];
        (*out)[(static_cast<size_t>(t) * H + h) * D + d] = acc;
      }
    }
  }
}

// How a RoPE implementation forms its angles. Exact: pos * theta^(-2p/D) in double (the
// CUDA backend). F32Hf: HF transformers' float32 rotary embedding, which the CPU backend
// follows for oracle parity: inv_freq = 1 / theta^(2p/D) with the exponent, the power and
// the reciprocal each rounded to f32, and angle = f32(pos) * inv_freq rounded to f32. The
// two differ by ~pos * 6e-8 rad, far above the transcendental bound at positions in the
// thousands, so a reference must know which one a backend promises.
enum class RopeAngles { Exact, F32Hf };

inline double rope_angle(int pos, int p, int D, double theta, RopeAngles angles) {
  if (angles == RopeAngles::Exact) return pos * std::pow(theta, -2.0 * p / D);
  const float expo = static_cast<float>(2 * p) / static_cast<float>(D);
  const float inv_freq = 1.0f / static_cast<float>(std::pow(theta, static_cast<double>(expo)));
  return static_cast<float>(static_cast<float>(pos) * inv_freq);
}

// RoPE on [T, n_heads*head_dim] in double; positions pos0 + t.
inline void ref_rope(std::vector<double>* x, int T, int H, int D, int pos0, double theta,
                     bool interleaved, RopeAngles angles = RopeAngles::Exact) {
  for (int t = 0; t < T; ++t)
    for (int h = 0; h < H; ++h)
      for (int p = 0; p < D / 2; ++p) {
        const double ang = rope_angle(pos0 + t, p, D, theta, angles);
        const size_t base = (static_cast<size_t>(t) * H + h) * D;
        const size_t a = base + (interleaved ? 2 * p : p);
        const size_t b = base + (interleaved ? 2 * p + 1 : p + D / 2);
        const double xa = (*x)[a], xb = (*x)[b];
        (*x)[a] = xa * std::cos(ang) - xb * std::sin(ang);
        (*x)[b] = xb * std::cos(ang) + xa * std::sin(ang);
      }
}

}  // namespace pv::optest
