// Falsifiers of contracts/gqa-head-mapping-v1.yaml: the GQA head mapping
// kv(h) = h / (H / H_kv) as arithmetic (properties + edges), the CPU attention kernel
// against a naive repeat-KV reference written here independently (prefill and one
// incremental step over a KV cache), and a live 7:1 fixture model run.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "harness/testing/pv_test.h"
#include "kernels/backend.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/ops.h"
#include "model/forward.h"
#include "model/loading/loader.h"
#include "model/stages.h"

namespace {

using pv::kernels::AttentionShape;
using pv::kernels::kv_head_of;

// Records the seeds of a rapidcheck property: pv's (PV_SEED) and rapidcheck's own
// (RC_PARAMS="seed=N"; the harness sets both to the same N), then runs it so a failure
// reports rapidcheck's shrunk counterexample through GoogleTest.
template <typename Property>
void check_property(Property&& property) {
  pv::testing::seed();
  // As a string: a 64-bit seed does not survive a metric's double.
  ::testing::Test::RecordProperty("rc_seed",
                                  std::to_string(rc::detail::configuration().testParams.seed));
  rc::detail::checkGTest(std::forward<Property>(property));
}

// ---- FALSIFY-GQA-001: the mapping itself -----------------------------------------

// Each query head maps to exactly one KV head in range; the heads reading KV head g are
// exactly the contiguous run [g*G, (g+1)*G) with G = H / H_kv, so groups are equal.
void expect_grouping(int H, int Hkv) {
  const int G = H / Hkv;
  std::vector<int> group_size(Hkv, 0);
  for (int h = 0; h < H; ++h) {
    const int g = kv_head_of(h, H, Hkv);
    RC_ASSERT(g >= 0);
    RC_ASSERT(g < Hkv);
    RC_ASSERT(h >= g * G);  // contiguous: h lies inside its group's run
    RC_ASSERT(h < (g + 1) * G);
    ++group_size[g];
    if (h > 0) {  // monotone, steps of at most one group
      const int prev = kv_head_of(h - 1, H, Hkv);
      RC_ASSERT(g == prev || g == prev + 1);
    }
  }
  for (int g = 0; g < Hkv; ++g) RC_ASSERT(group_size[g] == G);
}

TEST(GqaHeadMapping, Falsify001_GroupsContiguousAndEqual) {
  check_property([] {
    const int Hkv = *rc::gen::inRange(1, 33);
    const int G = *rc::gen::inRange(1, 17);
    expect_grouping(G * Hkv, Hkv);
  });
}

TEST(GqaHeadMapping, Falsify001_MhaAndMqaEdges) {
  check_property([] {
    const int H = *rc::gen::inRange(1, 129);
    for (int h = 0; h < H; ++h) {
      RC_ASSERT(kv_head_of(h, H, H) == h);  // MHA: 1:1
      RC_ASSERT(kv_head_of(h, H, 1) == 0);  // MQA: H:1
    }
  });
}

TEST(GqaHeadMapping, Falsify001_CanonicalShapes) {
  // 28:4 (7:1, Qwen2.5-Coder-7B): heads 0-6 -> 0, 7-13 -> 1, 14-20 -> 2, 21-27 -> 3.
  const int qwen[28] = {0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1,
                        2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3};
  for (int h = 0; h < 28; ++h) EXPECT_EQ(kv_head_of(h, 28, 4), qwen[h]) << "28:4 head " << h;
  // 32:4 (8:1, TinyLlama): head h -> h / 8.
  for (int h = 0; h < 32; ++h) EXPECT_EQ(kv_head_of(h, 32, 4), h / 8) << "32:4 head " << h;
  // Qwen2.5-0.5B 14:2 (7:1).
  for (int h = 0; h < 14; ++h) EXPECT_EQ(kv_head_of(h, 14, 2), h < 7 ? 0 : 1) << "14:2 head " << h;
}

// ---- FALSIFY-GQA-002: CPU attention kernel vs a naive repeat-KV reference ------------

struct Case {
  int Hkv, ratio, d, T, pos0;
};

// The reference expands K and V to one copy per query head (repeat_kv), then runs plain
// causal softmax attention per head in double. Written without the kernel's helpers.
struct Reference {
  std::vector<double> out, scores, probs;  // [T, H*d], [H, T, n_ctx] x2
};

Reference repeat_kv_attention(const std::vector<float>& q, const std::vector<float>& k,
                              const std::vector<float>& v, int H, int Hkv, int d, int T, int pos0) {
  const int n_ctx = pos0 + T;
  const int per_group = H / Hkv;
  // expanded[h][j][i]: KV head (h / per_group) repeated per_group times, as HF repeat_kv.
  std::vector<double> ke(static_cast<size_t>(H) * n_ctx * d), ve(ke.size());
  for (int kvh = 0; kvh < Hkv; ++kvh) {
    for (int r = 0; r < per_group; ++r) {
      const int h = kvh * per_group + r;
      for (int j = 0; j < n_ctx; ++j) {
        for (int i = 0; i < d; ++i) {
          ke[(static_cast<size_t>(h) * n_ctx + j) * d + i] =
              k[(static_cast<size_t>(j) * Hkv + kvh) * d + i];
          ve[(static_cast<size_t>(h) * n_ctx + j) * d + i] =
              v[(static_cast<size_t>(j) * Hkv + kvh) * d + i];
        }
      }
    }
  }
  Reference r;
  r.out.assign(static_cast<size_t>(T) * H * d, 0.0);
  r.scores.assign(static_cast<size_t>(H) * T * n_ctx, 0.0);
  r.probs.assign(r.scores.size(), 0.0);
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  for (int h = 0; h < H; ++h) {
    for (int t = 0; t < T; ++t) {
      const size_t row = (static_cast<size_t>(h) * T + t) * n_ctx;
      for (int j = 0; j < n_ctx; ++j) {
        double s = 0;
        for (int i = 0; i < d; ++i) {
          s += static_cast<double>(q[(static_cast<size_t>(t) * H + h) * d + i]) *
               ke[(static_cast<size_t>(h) * n_ctx + j) * d + i];
        }
        r.scores[row + j] = s * scale;
      }
      const int last = pos0 + t;  // causal: key j visible iff j <= pos0 + t
      double mx = -INFINITY, sum = 0;
      for (int j = 0; j <= last; ++j) mx = std::max(mx, r.scores[row + j]);
      for (int j = 0; j <= last; ++j) sum += std::exp(r.scores[row + j] - mx);
      for (int j = 0; j <= last; ++j) r.probs[row + j] = std::exp(r.scores[row + j] - mx) / sum;
      for (int i = 0; i < d; ++i) {
        double acc = 0;
        for (int j = 0; j <= last; ++j) {
          acc += r.probs[row + j] * ve[(static_cast<size_t>(h) * n_ctx + j) * d + i];
        }
        r.out[(static_cast<size_t>(t) * H + h) * d + i] = acc;
      }
    }
  }
  return r;
}

std::vector<float> random_vec(std::mt19937_64& rng, size_t n, float scale) {
  std::normal_distribution<float> nd(0.0f, scale);
  std::vector<float> x(n);
  for (float& e : x) e = nd(rng);
  return x;
}

double max_abs_diff(const float* a, const std::vector<double>& b) {
  double m = 0;
  for (size_t i = 0; i < b.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

Case gen_case(int max_pos0) {
  Case c;
  c.Hkv = *rc::gen::inRange(1, 5);
  c.ratio = *rc::gen::inRange(1, 9);  // covers MHA (1), 7:1 and 8:1; shrinks toward 1
  c.d = *rc::gen::inRange(1, 33);
  c.T = *rc::gen::inRange(1, 10);
  c.pos0 = max_pos0 > 0 ? *rc::gen::inRange(0, max_pos0 + 1) : 0;
  // Named in the counterexample rapidcheck prints on failure.
  RC_LOG() << "H=" << c.Hkv * c.ratio << " H_kv=" << c.Hkv << " head_dim=" << c.d << " T=" << c.T
           << " pos0=" << c.pos0;
  return c;
}

// Scores are O(1) for unit-variance inputs; float32 kernel vs double reference agrees to
// ~1e-6. 2e-5 absolute leaves margin and still catches any wrong KV row/head (O(1) errors).
constexpr double kTol = 2e-5;
double g_worst = 0;

void check_kernel_case(const Case& c, uint32_t data_seed) {
  const int H = c.Hkv * c.ratio, n_ctx = c.pos0 + c.T;
  std::mt19937_64 rng(data_seed);
  const auto q = random_vec(rng, static_cast<size_t>(c.T) * H * c.d, 1.0f);
  const auto k = random_vec(rng, static_cast<size_t>(n_ctx) * c.Hkv * c.d, 1.0f);
  const auto v = random_vec(rng, static_cast<size_t>(n_ctx) * c.Hkv * c.d, 1.0f);
  std::vector<float> out(q.size()), scores(static_cast<size_t>(H) * c.T * n_ctx),
      probs(scores.size());
  pv::kernels::cpu::attention(q.data(), k.data(), v.data(), AttentionShape{H, c.Hkv, c.d}, c.T,
                              c.pos0, out.data(), scores.data(), probs.data());
  const Reference ref = repeat_kv_attention(q, k, v, H, c.Hkv, c.d, c.T, c.pos0);
  const double e_out = max_abs_diff(out.data(), ref.out);
  const double e_s = max_abs_diff(scores.data(), ref.scores);
  const double e_p = max_abs_diff(probs.data(), ref.probs);
  g_worst = std::max({g_worst, e_out, e_s, e_p});
  RC_ASSERT(e_out < kTol);
  RC_ASSERT(e_s < kTol);
  RC_ASSERT(e_p < kTol);
}

TEST(GqaHeadMapping, Falsify002_CpuAttentionPrefillVsRepeatKv) {
  g_worst = 0;
  check_property([] {
    const Case c = gen_case(0);
    check_kernel_case(c, *rc::gen::arbitrary<uint32_t>());
  });
  pv::testing::record_metric("max_abs", g_worst);
}

// One incremental step: prefill P tokens into a cache, then one new token at position P.
// The step's output must equal the reference for that query over all P+1 cached rows, and
// equal the last row of a single full prefill of P+1 tokens.
TEST(GqaHeadMapping, Falsify002_CpuAttentionIncrementalVsRepeatKv) {
  g_worst = 0;
  check_property([] {
    Case c = gen_case(0);
    const int P = c.T;  // prompt length
    const int H = c.Hkv * c.ratio, d = c.d;
    std::mt19937_64 rng(*rc::gen::arbitrary<uint32_t>());
    const size_t kv_row = static_cast<size_t>(c.Hkv) * d, q_row = static_cast<size_t>(H) * d;
    const auto q_all = random_vec(rng, (P + 1) * q_row, 1.0f);
    const auto k_all = random_vec(rng, (P + 1) * kv_row, 1.0f);
    const auto v_all = random_vec(rng, (P + 1) * kv_row, 1.0f);
    const AttentionShape shape{H, c.Hkv, d};

    // Cache sized for more rows than used: stale garbage beyond pos must never be read.
    std::vector<float> kc((P + 4) * kv_row, 1e6f), vc((P + 4) * kv_row, 1e6f);
    std::copy_n(k_all.begin(), P * kv_row, kc.begin());
    std::copy_n(v_all.begin(), P * kv_row, vc.begin());
    std::vector<float> out_prefill(P * q_row);
    pv::kernels::cpu::attention(q_all.data(), kc.data(), vc.data(), shape, P, 0, out_prefill.data(),
                                nullptr, nullptr);
    std::copy_n(k_all.begin() + P * kv_row, kv_row, kc.begin() + P * kv_row);
    std::copy_n(v_all.begin() + P * kv_row, kv_row, vc.begin() + P * kv_row);
    std::vector<float> out_step(q_row);
    pv::kernels::cpu::attention(q_all.data() + P * q_row, kc.data(), vc.data(), shape, 1, P,
                                out_step.data(), nullptr, nullptr);

    const std::vector<float> q_last(q_all.begin() + P * q_row, q_all.end());
    const Reference ref = repeat_kv_attention(q_last, k_all, v_all, H, c.Hkv, d, 1, P);
    const double e_step = max_abs_diff(out_step.data(), ref.out);
    const Reference ref_pre = repeat_kv_attention(q_all, k_all, v_all, H, c.Hkv, d, P, 0);
    std::vector<double> ref_pre_rows(ref_pre.out.begin(), ref_pre.out.begin() + P * q_row);
    const double e_pre = max_abs_diff(out_prefill.data(), ref_pre_rows);
    g_worst = std::max({g_worst, e_step, e_pre});
    RC_ASSERT(e_step < kTol);
    RC_ASSERT(e_pre < kTol);
  });
  pv::testing::record_metric("max_abs", g_worst);
}

// ---- FUNCTIONAL: a live GQA 7:1 model run ----------------------------------------

// Keeps the stages a test asked for, per layer, in host memory.
class CaptureSink : public pv::model::StageSink {
 public:
  void on_stage(pv::model::Stage stage, int layer, const float* data,
                const std::vector<int64_t>& shape) override {
    size_t n = 1;
    for (int64_t d : shape) n *= static_cast<size_t>(d);
    got[{stage, layer}].assign(data, data + n);
  }
  std::map<std::pair<pv::model::Stage, int>, std::vector<float>> got;
};

// The qwen2-gqa7-tied fixture (14 query heads, 2 KV heads, as Qwen2.5-0.5B) from its F32
// GGUF file: a prefill of 6 tokens, then one incremental step. For every layer, the
// forward's captured `attention` output must equal the repeat-KV reference computed here
// from the same run's captured q_post_rope, k_post_rope and V (qkv_bias's v part), over
// all cached positions.
TEST(GqaHeadMapping, Falsify002_FixtureQwen2Gqa7to1Cpu) {
  const std::string name = "qwen2-gqa7-tied";
  const std::string path =
      pv::testing::source_dir() + "/model/fixtures/" + name + "/" + name + "-f32.gguf";
  if (!std::filesystem::exists(path)) PV_SKIP_FIXTURE_ABSENT("model:" + name);
  const pv::model::LoadedModel m = pv::model::load_model(path);
  const pv::model::ModelConfig& c = m.config;
  ASSERT_EQ(c.n_heads / c.n_kv_heads, 7) << "the fixture is meant to be GQA 7:1";
  const int H = c.n_heads, Hkv = c.n_kv_heads, d = c.head_dim;
  const size_t q_dim = static_cast<size_t>(H) * d, kv_dim = static_cast<size_t>(Hkv) * d;

  pv::model::StagePlan plan;
  for (auto s : {pv::model::Stage::qkv_bias, pv::model::Stage::q_post_rope,
                 pv::model::Stage::k_post_rope, pv::model::Stage::attention}) {
    plan.stages[static_cast<int>(s)] = true;
  }
  pv::kernels::CpuBackend be(2);
  pv::model::Forward f(c, m.weights, be, 16);
  const std::vector<int32_t> tokens = {3, 14, 15, 92, 65, 35, 89};
  const int P = 6;

  std::vector<std::vector<float>> k_all(c.n_layers), v_all(c.n_layers);
  double worst = 0;
  for (int step = 0; step < 2; ++step) {
    const int pos0 = step == 0 ? 0 : P;
    const int T = step == 0 ? P : 1;
    CaptureSink sink;
    f.eval(tokens.data() + pos0, T, nullptr, &plan, &sink);
    for (int l = 0; l < c.n_layers; ++l) {
      using pv::model::Stage;
      const auto& qkv = sink.got.at({Stage::qkv_bias, l});
      const auto& k = sink.got.at({Stage::k_post_rope, l});
      ASSERT_EQ(k.size(), T * kv_dim);
      k_all[l].insert(k_all[l].end(), k.begin(), k.end());
      for (int t = 0; t < T; ++t) {  // v: the last kv_dim of each q|k|v row
        const float* row = qkv.data() + t * (q_dim + 2 * kv_dim) + q_dim + kv_dim;
        v_all[l].insert(v_all[l].end(), row, row + kv_dim);
      }
      const auto& q = sink.got.at({Stage::q_post_rope, l});
      const Reference ref = repeat_kv_attention(q, k_all[l], v_all[l], H, Hkv, d, T, pos0);
      const auto& out = sink.got.at({Stage::attention, l});
      const double e = max_abs_diff(out.data(), ref.out);
      worst = std::max(worst, e);
      EXPECT_LT(e, kTol) << "layer " << l << (step == 0 ? " prefill" : " incremental step");
    }
  }
  pv::testing::record_metric("max_abs", worst);
}

}  // namespace
