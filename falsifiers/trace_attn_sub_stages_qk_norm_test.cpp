// Falsifier of contracts/trace-attn-sub-stages-v1.yaml, q_norm / k_norm part: the rows of
// q_norm and k_norm follow the same per-head order as q and k. A per-head RMSNorm's RMS is
// a sum over the head's values (order-free) and its weight multiplies each value by the
// weight of its row, so a model whose q/k rows are permuted within each head (llama.cpp's
// converter order) emits its norm output permuted the same way. Comparing such a trace with
// an HF-order one must undo that permutation on q_norm / k_norm too, or bisect blames the
// norm for a difference that is only the row order.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "falsifiers/support/trace_helpers.h"
#include "harness/testing/pv_test.h"
#include "kernels/cpu/cpu_backend.h"
#include "model/fixtures/fixture_gen.h"
#include "model/trace/aprt.h"
#include "model/trace/bisect.h"
#include "model/trace/trace_compare.h"
#include "model/trace/trace_dir.h"

namespace {

using pv::model::Stage;

// convert_hf_to_gguf's permute() per head: the value at HF row s*D/2 + j goes to 2j + s.
// Written from that recipe, independently of the library's inverse.
void permute_heads(float* row, int64_t col0, int heads, int head_dim) {
  const int half = head_dim / 2;
  for (int h = 0; h < heads; ++h) {
    float* p = row + col0 + int64_t{h} * head_dim;
    const std::vector<float> hf(p, p + head_dim);
    for (int s = 0; s < 2; ++s)
      for (int j = 0; j < half; ++j) p[2 * j + s] = hf[size_t(s * half + j)];
  }
}

// The stage bisect names, "" when none.
std::string bisect_first(const pv::model::TraceDiff& d) {
  const auto r = pv::model::bisect(d, pv::model::BisectCriterion{});
  if (!r.first) return "";
  const auto& row = r.rows[*r.first];
  return pv::model::entry_label(row.stage, row.layer);
}

TEST(TraceAttnSubStagesQkNorm, QkNormRowsNormalisedLikeQk) {
  std::unique_ptr<pv::model::SyntheticModel> m;
  for (const auto& s : pv::model::default_fixtures())
    if (s.name == "qwen3-gqa")
      m = pv::model::make_synthetic_model(pv::model::fixture_config(s), s.seed);
  ASSERT_NE(m, nullptr);
  ASSERT_TRUE(m->config.qk_norm);
  pv::testing::TempDir tmp("qk-norm-rows");
  pv::kernels::CpuBackend cpu(1);
  const std::vector<int32_t> tokens = {1, 17, 42, 99, 7, 3, 250};
  const std::string hf = tmp.sub("hf"), gguf = tmp.sub("gguf");
  pv::testing::trace_all(m->config, m->weights, cpu, tokens, hf, 0);
  pv::testing::trace_all(m->config, m->weights, cpu, tokens, gguf, 0);

  // The trace a converter-permuted copy of the model would write: every stage whose rows
  // are per-head q or k, permuted per head (listed here stage by stage).
  auto meta = pv::model::read_trace_meta(gguf);
  ASSERT_EQ(meta.qk_rows, pv::model::kQkRowsHf);
  const int H = meta.n_heads, Hkv = meta.n_kv_heads, D = meta.head_dim;
  ASSERT_GT(D, 0);
  int permuted_norms = 0;
  for (const auto& e : meta.entries) {
    std::vector<std::pair<int64_t, int>> blocks;  // (first column, heads)
    switch (e.stage) {
      case Stage::qkv_matmul:
      case Stage::qkv_bias:
        blocks = {{0, H}, {int64_t{H} * D, Hkv}};
        break;
      case Stage::q_norm:
      case Stage::q_post_rope:
        blocks = {{0, H}};
        break;
      case Stage::k_norm:
      case Stage::k_post_rope:
        blocks = {{0, Hkv}};
        break;
      default:
        continue;
    }
    permuted_norms += e.stage == Stage::q_norm || e.stage == Stage::k_norm;
    const std::string f = gguf + "/" + e.file;
    auto t = pv::model::read_aprt(f);
    for (int64_t r = 0; r < e.shape[0]; ++r)
      for (const auto& [col0, heads] : blocks)
        permute_heads(t.data.data() + r * e.shape[1], col0, heads, D);
    pv::model::write_aprt(f, t.layer, t.data.data(), t.data.size());
  }
  ASSERT_EQ(permuted_norms, 2 * m->config.n_layers);
  meta.qk_rows = pv::model::kQkRowsGgufLlama;
  pv::model::write_trace_meta(gguf, meta);

  // Normalised: every stage bit-identical, q_norm / k_norm among the normalised ones.
  const auto d = pv::model::diff_trace_dirs(hf, gguf, 5, true);
  int norms_normalised = 0;
  double worst = 0;
  for (const auto& s : d.stages) {
    const std::string where = pv::model::stage_diff_label(s);
    EXPECT_EQ(s.stats.max_abs, 0.0) << where;
    worst = std::max(worst, s.stats.max_abs);
    if (s.stage == Stage::q_norm || s.stage == Stage::k_norm) {
      EXPECT_TRUE(s.qk_normalised) << where;
      norms_normalised += s.qk_normalised;
    }
  }
  EXPECT_EQ(norms_normalised, 2 * m->config.n_layers);
  EXPECT_NE(d.qk_note.find("q_norm/k_norm"), std::string::npos) << d.qk_note;
  EXPECT_EQ(bisect_first(d), "");

  // As stored, the permutation alone makes q_norm differ (the test has teeth).
  const auto raw = pv::model::diff_trace_dirs(hf, gguf, 5, true, pv::model::QkRows::AsIs);
  double raw_qnorm = 0;
  for (const auto& s : raw.stages)
    if (s.stage == Stage::q_norm && s.layer == 0) raw_qnorm = s.stats.max_abs;
  EXPECT_GT(raw_qnorm, 1e-3);
  pv::testing::record_metric("qk_norm_normalised_stages", norms_normalised);
  pv::testing::record_metric("qk_norm_normalised_max_abs", worst);
  pv::testing::record_metric("qk_norm_as_is_l0_max_abs", raw_qnorm);
}

}  // namespace
