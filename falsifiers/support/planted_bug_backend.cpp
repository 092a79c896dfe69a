#include "falsifiers/support/planted_bug_backend.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <vector>

namespace pv::testing {
namespace {

using kernels::AttentionShape;
using kernels::Backend;
using kernels::RopeStyle;
using kernels::TensorView;
using kernels::Weight;

class PlantedBugBackend final : public Backend {
 public:
  PlantedBugBackend(Backend& inner, PlantedBug bug) : in_(inner), bug_(bug) {}

  std::string_view name() const override { return in_.name(); }
  std::string device_description() const override {
    return in_.device_description() + " + planted bug " + std::string(planted_bug_name(bug_));
  }
  float* alloc(size_t n) override { return in_.alloc(n); }
  void free(float* p) override { in_.free(p); }
  void upload(float* d, const float* h, size_t n) override { in_.upload(d, h, n); }
  void download(float* h, const float* s, size_t n) override { in_.download(h, s, n); }
  void copy(float* d, const float* s, size_t n) override { in_.copy(d, s, n); }
  void synchronize() override { in_.synchronize(); }
  const Weight& prepare_weight(const TensorView& v) override { return in_.prepare_weight(v); }
  void embed(const Weight& w, const int32_t* t, int T, float* out) override {
    in_.embed(w, t, T, out);
  }
  void matmul(const Weight& w, const float* x, int T, float* y) override { in_.matmul(w, x, T, y); }
  void add_bias(float* y, const Weight& b, int T) override { in_.add_bias(y, b, T); }
  void rmsnorm(const float* x, const Weight& w, int T, int n, float eps, float* y) override {
    in_.rmsnorm(x, w, T, n, eps, y);
  }
  void rope(float* x, int T, int n_heads, int head_dim, int pos0, float theta,
            RopeStyle style) override {
    if (bug_ == PlantedBug::RopePairing) {
      style = style == RopeStyle::HalfSplit ? RopeStyle::Interleaved : RopeStyle::HalfSplit;
    }
    in_.rope(x, T, n_heads, head_dim, pos0, theta, style);
  }
  void rope_table(float* x, int T, int n_heads, int head_dim, int pos0, const float* inv_freq,
                  float attention_factor, RopeStyle style) override {
    if (bug_ == PlantedBug::RopePairing) {
      style = style == RopeStyle::HalfSplit ? RopeStyle::Interleaved : RopeStyle::HalfSplit;
    }
    in_.rope_table(x, T, n_heads, head_dim, pos0, inv_freq, attention_factor, style);
  }
  void attention(const float* q, const float* k, const float* v, const AttentionShape& shape, int T,
                 int pos0, float* out, float* scores, float* probs) override {
    if (bug_ == PlantedBug::RopePairing) {
      in_.attention(q, k, v, shape, T, pos0, out, scores, probs);
      return;
    }
    naive_attention(q, k, v, shape, T, pos0, out, scores, probs);
  }
  void add(float* x, const float* y, size_t n) override { in_.add(x, y, n); }
  void silu(const float* x, size_t n, float* y) override { in_.silu(x, n, y); }
  void mul(const float* a, const float* b, size_t n, float* y) override { in_.mul(a, b, n, y); }
  void softmax(float* x, int rows, int n) override { in_.softmax(x, rows, n); }

 private:
  // Plain causal GQA attention written from the definition (host memory: the decorator
  // is only used over the CPU backend), with the planted bug switched in.
  void naive_attention(const float* q, const float* k, const float* v, const AttentionShape& s,
                       int T, int pos0, float* out, float* scores, float* probs) const {
    const int H = s.n_heads, Hkv = s.n_kv_heads, d = s.head_dim, n_ctx = pos0 + T;
    const size_t qs = size_t(H) * d, kvs = size_t(Hkv) * d;
    const double scale = bug_ == PlantedBug::MissingScale ? 1.0 : 1.0 / std::sqrt(double(d));
    std::vector<double> sc(static_cast<size_t>(n_ctx)), p(static_cast<size_t>(n_ctx));
    for (int h = 0; h < H; ++h) {
      const int right = kernels::kv_head_of(h, H, Hkv);
      const int wrong = h % Hkv;
      const int k_head = bug_ == PlantedBug::KvHeadScores ? wrong : right;
      const int v_head = bug_ == PlantedBug::KvHeadValues ? wrong : right;
      for (int t = 0; t < T; ++t) {
        int visible = pos0 + t + 1;
        if (bug_ == PlantedBug::MaskOffByOne) visible = std::min(visible + 1, n_ctx);
        const float* qv = q + t * qs + size_t(h) * d;
        for (int j = 0; j < n_ctx; ++j) {
          const float* kv = k + j * kvs + size_t(k_head) * d;
          double dot = 0;
          for (int i = 0; i < d; ++i) dot += double(qv[i]) * kv[i];
          sc[j] = dot * scale;
        }
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j < visible; ++j) mx = std::max(mx, sc[j]);
        for (int j = 0; j < n_ctx; ++j) {
          p[j] = j < visible ? std::exp(sc[j] - mx) : 0.0;
          sum += p[j];
        }
        const size_t row = (size_t(h) * T + t) * n_ctx;
        for (int j = 0; j < n_ctx; ++j) {
          p[j] /= sum;
          if (scores) scores[row + j] = float(sc[j]);
          if (probs) probs[row + j] = float(p[j]);
        }
        float* o = out + t * qs + size_t(h) * d;
        for (int i = 0; i < d; ++i) {
          double acc = 0;
          for (int j = 0; j < visible; ++j) acc += p[j] * v[j * kvs + size_t(v_head) * d + i];
          o[i] = float(acc);
        }
      }
    }
  }

  Backend& in_;
  PlantedBug bug_;
};

// Each bug's name and the stage it first shows in, in PlantedBug order.
struct BugInfo {
  PlantedBug bug;
  std::string_view name, stage;
};
constexpr BugInfo kBugInfo[] = {
    {PlantedBug::None, "none", ""},
    {PlantedBug::RopePairing, "rope-pairing", "q_post_rope"},
    {PlantedBug::MissingScale, "missing-scale", "attn_scores"},
    {PlantedBug::KvHeadScores, "wrong-kv-head-scores", "attn_scores"},
    {PlantedBug::MaskOffByOne, "mask-off-by-one", "attn_softmax"},
    {PlantedBug::KvHeadValues, "wrong-kv-head-values", "attention"},
};

constexpr bool in_bug_order() {
  for (size_t i = 0; i < std::size(kBugInfo); ++i) {
    if (static_cast<size_t>(kBugInfo[i].bug) != i) return false;
  }
  return std::size(kBugInfo) == static_cast<size_t>(PlantedBug::KvHeadValues) + 1;
}
static_assert(in_bug_order(), "kBugInfo lists every PlantedBug, in order");

const BugInfo& bug_info(PlantedBug bug) { return kBugInfo[static_cast<size_t>(bug)]; }

}  // namespace

std::string_view planted_bug_name(PlantedBug bug) { return bug_info(bug).name; }

std::string_view planted_bug_stage(PlantedBug bug) { return bug_info(bug).stage; }

std::unique_ptr<Backend> make_planted_bug_backend(Backend& inner, PlantedBug bug) {
  return std::make_unique<PlantedBugBackend>(inner, bug);
}

}  // namespace pv::testing
