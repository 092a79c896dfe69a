// Falsifiers of contracts/model-loader-v1.yaml: the same checkpoint through different file
// formats and weight types gives the logits it should, and the KV cache gives the same
// logits as recomputing the whole sequence.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "falsifiers/support/pv_test.h"
#include "kernels/cpu/cpu_backend.h"
#include "model/forward.h"
#include "model/generate.h"
#include "model/synthetic_model.h"

namespace {

using pv::kernels::GgmlType;

struct Agreement {
  double cosine = 1.0;   // over all compared logits, accumulated in double
  double max_abs = 0.0;  // max |a - b|
  double max_ref = 0.0;  // max |a|, for scale
};

Agreement compare(const float* a, const float* b, size_t n) {
  double ab = 0, aa = 0, bb = 0;
  Agreement r;
  for (size_t i = 0; i < n; ++i) {
    ab += double(a[i]) * b[i];
    aa += double(a[i]) * a[i];
    bb += double(b[i]) * b[i];
    r.max_abs = std::max(r.max_abs, std::fabs(double(a[i]) - b[i]));
    r.max_ref = std::max(r.max_ref, std::fabs(double(a[i])));
  }
  r.cosine = (aa == 0 || bb == 0) ? (aa == bb ? 1.0 : 0.0) : ab / std::sqrt(aa * bb);
  return r;
}

std::vector<int32_t> random_tokens(uint64_t seed, int n, int vocab) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> d(0, vocab - 1);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = d(rng);
  return t;
}

// Prefill `prompt`, then feed `more` one token at a time; every step's logits must equal
// the matching row of one full prefill of prompt + more. Returns the worst agreement.
Agreement kv_cache_consistency(pv::model::Forward& f, const std::vector<int32_t>& prompt,
                               const std::vector<int32_t>& more) {
  const int V = f.config().vocab;
  std::vector<int32_t> all = prompt;
  all.insert(all.end(), more.begin(), more.end());
  std::vector<float> full(all.size() * V);
  f.reset();
  f.eval(all.data(), static_cast<int>(all.size()), full.data());

  f.reset();
  std::vector<float> step(prompt.size() * V);
  f.eval(prompt.data(), static_cast<int>(prompt.size()), step.data());
  Agreement worst = compare(full.data(), step.data(), step.size());
  for (size_t i = 0; i < more.size(); ++i) {
    f.eval(&more[i], 1, step.data(), nullptr, nullptr, pv::model::LogitRows::Last);
    const Agreement a = compare(full.data() + (prompt.size() + i) * V, step.data(), V);
    worst.cosine = std::min(worst.cosine, a.cosine);
    worst.max_abs = std::max(worst.max_abs, a.max_abs);
    worst.max_ref = std::max(worst.max_ref, a.max_ref);
  }
  return worst;
}

// PARTIAL level: synthetic in-memory weights (F32 and Q8_0), GQA 2:1 and 7:1.
TEST(ModelLoader, Falsify003_KvCacheConsistencySynthetic) {
  const uint64_t seed = pv::testing::seed();
  double cos_min = 1.0, rel_max = 0.0;
  for (auto [H, Hkv] : {std::pair{4, 2}, std::pair{7, 1}}) {
    for (GgmlType type : {GgmlType::F32, GgmlType::Q8_0}) {
      pv::model::ModelConfig c = pv::model::tiny_qwen2_config(H, Hkv, 32, 2);
      pv::model::SyntheticTypes types;
      types.matrix = types.embedding = types.output = type;
      auto m = pv::model::make_synthetic_model(c, seed, types);
      pv::kernels::CpuBackend be(2);
      pv::model::Forward f(m->config, m->weights, be, 64);
      const auto prompt = random_tokens(seed + 1, 7, c.vocab);
      const auto more = random_tokens(seed + 2, 5, c.vocab);
      const Agreement a = kv_cache_consistency(f, prompt, more);
      cos_min = std::min(cos_min, a.cosine);
      rel_max = std::max(rel_max, a.max_abs / a.max_ref);
      EXPECT_GE(a.cosine, 0.99999) << "GQA " << H << ":" << Hkv << " " << type_name(type);
      EXPECT_LE(a.max_abs, 1e-4 * a.max_ref) << "GQA " << H << ":" << Hkv << " " << type_name(type);
    }
  }
  pv::testing::record_metric("cosine_min", cos_min);
  pv::testing::record_metric("max_abs_rel", rel_max);
}

}  // namespace
