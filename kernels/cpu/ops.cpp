#include "kernels/cpu/ops.h"

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "mutants/mutant.h"

namespace pv::kernels::cpu {

void rmsnorm(const float* x, const float* w, int T, int n, float eps, float* y) {
  for (int t = 0; t < T; ++t) {
    const float* xr = x + static_cast<size_t>(t) * n;
    float* yr = y + static_cast<size_t>(t) * n;
    double ss = 0.0;
    for (int i = 0; i < n; ++i) ss += static_cast<double>(xr[i]) * xr[i];
    // HF: hidden * torch.rsqrt(variance + eps) with variance a float32 mean; the mean is
    // rounded to f32 before eps is added, as there.
    const float mean = static_cast<float>(ss / n);
    const float inv = 1.0f / std::sqrt(mean + eps);
    for (int i = 0; i < n; ++i) yr[i] = (xr[i] * inv) * w[i];
  }
}

// Rounding follows HF transformers' rotary embedding, which the oracle traces come from
// (it runs RoPE in float32 even for a float64 model):
//   inv_freq[i] = 1 / theta^(float(2i) / float(d))       float32
//   angle       = float(pos) * inv_freq[i]                float32 product
//   cos, sin    = of that float32 angle, rounded to float32
// We evaluate pow/cos/sin in double and round once, i.e. correctly rounded float32 values;
// torch's float32 pow/sin/cos are within ~1 ulp of those, so per-element RoPE parity with
// HF is ~1e-7 relative. The float32 angle itself is what HF uses, so large positions carry
// the same angle rounding on both sides (not the exact double angle).
void rope_tables(int T, int head_dim, int pos0, float theta, std::vector<float>* cos_tab,
                 std::vector<float>* sin_tab) {
  const int half = head_dim / 2;
  std::vector<float> inv_freq(half);
  for (int i = 0; i < half; ++i) {
    const float expo = static_cast<float>(2 * i) / static_cast<float>(head_dim);
    const float p = static_cast<float>(std::pow(static_cast<double>(theta), expo));
    inv_freq[i] = 1.0f / p;
  }
  rope_tables(T, head_dim, pos0, inv_freq.data(), 1.0f, cos_tab, sin_tab);
}

void rope_tables(int T, int head_dim, int pos0, const float* inv_freq, float attention_factor,
                 std::vector<float>* cos_tab, std::vector<float>* sin_tab) {
  const int half = head_dim / 2;
  cos_tab->resize(static_cast<size_t>(T) * half);
  sin_tab->resize(static_cast<size_t>(T) * half);
  for (int t = 0; t < T; ++t) {
    const float pos = static_cast<float>(pos0 + t);
    for (int i = 0; i < half; ++i) {
      const float angle = pos * inv_freq[i];
      // As transformers: cos/sin rounded to f32, then scaled in f32 (exact when 1).
      (*cos_tab)[static_cast<size_t>(t) * half + i] =
          static_cast<float>(std::cos(angle)) * attention_factor;
      (*sin_tab)[static_cast<size_t>(t) * half + i] =
          static_cast<float>(std::sin(angle)) * attention_factor;
    }
  }
}

namespace {

void rotate(float* x, int T, int n_heads, int head_dim, const std::vector<float>& cos_tab,
            const std::vector<float>& sin_tab, RopeStyle style) {
  if (mutant::planted(mutant::Bug::RopePairing))
    style = style == RopeStyle::HalfSplit ? RopeStyle::Interleaved : RopeStyle::HalfSplit;
  const int half = head_dim / 2;
  for (int t = 0; t < T; ++t) {
    const float* c = cos_tab.data() + static_cast<size_t>(t) * half;
    const float* s = sin_tab.data() + static_cast<size_t>(t) * half;
    for (int h = 0; h < n_heads; ++h) {
      float* v = x + (static_cast<size_t>(t) * n_heads + h) * head_dim;
      if (style == RopeStyle::HalfSplit) {
        // Element i pairs with i + d/2 (HF rotate_half).
        for (int i = 0; i < half; ++i) {
          const float a = v[i], b = v[i + half];
          v[i] = a * c[i] - b * s[i];
          v[i + half] = b * c[i] + a * s[i];
        }
      } else {
        // Adjacent pairs (2i, 2i+1), same frequency index i.
        for (int i = 0; i < half; ++i) {
          const float a = v[2 * i], b = v[2 * i + 1];
          v[2 * i] = a * c[i] - b * s[i];
          v[2 * i + 1] = b * c[i] + a * s[i];
        }
      }
    }
  }
}

}  // namespace

void rope(float* x, int T, int n_heads, int head_dim, int pos0, float theta, RopeStyle style) {
  if (head_dim % 2 != 0) throw std::invalid_argument("rope: head_dim must be even");
  std::vector<float> cos_tab, sin_tab;
  rope_tables(T, head_dim, pos0, theta, &cos_tab, &sin_tab);
  rotate(x, T, n_heads, head_dim, cos_tab, sin_tab, style);
}

void rope(float* x, int T, int n_heads, int head_dim, int pos0, const float* inv_freq,
          float attention_factor, RopeStyle style) {
  if (head_dim % 2 != 0 || head_dim > kMaxRopeHeadDim) {
    throw std::invalid_argument("rope: head_dim " + std::to_string(head_dim) +
                                " must be even and at most " + std::to_string(kMaxRopeHeadDim));
  }
  std::vector<float> cos_tab, sin_tab;
  rope_tables(T, head_dim, pos0, inv_freq, attention_factor, &cos_tab, &sin_tab);
  rotate(x, T, n_heads, head_dim, cos_tab, sin_tab, style);
}

void add(float* x, const float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) x[i] += y[i];
}

void silu(const float* x, size_t n, float* y) {
  for (size_t i = 0; i < n; ++i) y[i] = x[i] / (1.0f + std::exp(-x[i]));
}

void mul(const float* a, const float* b, size_t n, float* y) {
  for (size_t i = 0; i < n; ++i) y[i] = a[i] * b[i];
}

void add_bias(float* y, const float* bias, int T, int n) {
  for (int t = 0; t < T; ++t) add(y + static_cast<size_t>(t) * n, bias, static_cast<size_t>(n));
}

void softmax(float* x, int rows, int n) {
  for (int r = 0; r < rows; ++r) {
    float* v = x + static_cast<size_t>(r) * n;
    float mx = -INFINITY;
    for (int i = 0; i < n; ++i) mx = v[i] > mx ? v[i] : mx;
    double sum = 0.0;
    for (int i = 0; i < n; ++i) {
      v[i] = std::exp(v[i] - mx);
      sum += v[i];
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (int i = 0; i < n; ++i) v[i] *= inv;
  }
}

void embed(const TensorView& table, const int32_t* tokens, int T, float* out) {
  for (int t = 0; t < T; ++t) {
    if (tokens[t] < 0 || tokens[t] >= table.rows) {
      throw std::out_of_range("token id " + std::to_string(tokens[t]) + " at position " +
                              std::to_string(t) + " is outside the embedding table '" + table.name +
                              "' of " + std::to_string(table.rows) + " rows");
    }
    dequantize_view_row(table, tokens[t], out + static_cast<size_t>(t) * table.cols);
  }
}

}  // namespace pv::kernels::cpu
