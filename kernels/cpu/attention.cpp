// Causal GQA attention over a KV cache, the reference CPU kernel. Per query head:
// scores over the visible cache rows, a max-subtracted softmax in f32 (sum in double),
// then the probability-weighted sum of V rows.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/ops.h"
#include "mutants/mutant.h"

namespace pv::kernels::cpu {
namespace {

float dot(const float* a, const float* b, int n) {
  float s = 0.0f;
  for (int i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

}  // namespace

void attention_heads(const float* q, const float* k_cache, const float* v_cache,
                     const AttentionShape& shape, int T, int pos0, int h_begin, int h_end,
                     float* out, float* scores, float* probs) {
  const int H = shape.n_heads, Hkv = shape.n_kv_heads, d = shape.head_dim;
  const int n_ctx = pos0 + T;  // cache rows visible to the last query
  const size_t q_stride = static_cast<size_t>(H) * d;
  const size_t kv_stride = static_cast<size_t>(Hkv) * d;
  using mutant::Bug, mutant::planted;
  float scale = 1.0f / std::sqrt(static_cast<float>(d));
  if (planted(Bug::AttnScaleHd128) && d == 128) scale = 1.0f / 11.0f;
  if (planted(Bug::ScaleByHeadDim)) scale = 1.0f / static_cast<float>(d);
  const bool no_max = planted(Bug::SoftmaxNoMax);
  const bool kv_bug = planted(Bug::KvHeadMapping);
  const int mask_slip = planted(Bug::MaskOffByOnePrefill) && T > 1 ? 1 : 0;
  std::vector<float> p(static_cast<size_t>(n_ctx));
  std::vector<float> acc(static_cast<size_t>(d));

  for (int h = h_begin; h < h_end; ++h) {
    const int kvh = kv_bug ? h % Hkv : kv_head_of(h, H, Hkv);
    for (int t = 0; t < T; ++t) {
      const int visible = std::min(pos0 + t + 1 + mask_slip, n_ctx);  // causal: 0 .. pos0+t
      const float* qv = q + t * q_stride + static_cast<size_t>(h) * d;
      float* srow = scores ? scores + (static_cast<size_t>(h) * T + t) * n_ctx : nullptr;
      float* prow = probs ? probs + (static_cast<size_t>(h) * T + t) * n_ctx : nullptr;

      // The requested score matrix is the full pre-mask Q·Kᵀ·scale, so the future
      // columns are computed too, but only when it is asked for.
      const int n_scored = srow ? n_ctx : visible;
      float mx = -INFINITY;
      for (int j = 0; j < n_scored; ++j) {
        const float* kv = k_cache + j * kv_stride + static_cast<size_t>(kvh) * d;
        const float s = dot(qv, kv, d) * scale;
        if (srow) srow[j] = s;
        if (j < visible) {
          p[j] = s;
          mx = std::max(mx, s);
        }
      }
      if (no_max) mx = 0.0f;
      double sum = 0.0;
      for (int j = 0; j < visible; ++j) {
        p[j] = std::exp(p[j] - mx);
        sum += p[j];
      }
      const float inv = static_cast<float>(1.0 / sum);
      for (int j = 0; j < visible; ++j) p[j] *= inv;
      if (prow) {
        std::copy(p.begin(), p.begin() + visible, prow);
        std::fill(prow + visible, prow + n_ctx, 0.0f);
      }

      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int j = 0; j < visible; ++j) {
        const float* vv = v_cache + j * kv_stride + static_cast<size_t>(kvh) * d;
        const float pj = p[j];
        for (int i = 0; i < d; ++i) acc[i] += pj * vv[i];
      }
      std::copy(acc.begin(), acc.end(), out + t * q_stride + static_cast<size_t>(h) * d);
    }
  }
}

}  // namespace pv::kernels::cpu
