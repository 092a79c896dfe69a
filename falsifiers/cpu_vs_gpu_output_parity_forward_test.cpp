// cpu-vs-gpu-output-parity-v1, model level: every fixture file (each architecture, GQA
// ratio and weight type) runs through the same model/forward.cpp on the CPU backend and
// on the CUDA backend; every stage of every layer is captured on both (q_norm / k_norm for
// qwen3 only) and
// compared (cosine, NMSE), for the first token (empty cache) and the second token (one
// cached position); then a 32-token greedy decode must give identical tokens. On a
// failure the per-stage table (the CPU-vs-CUDA bisection: the first stage past its bound)
// is printed and the first broken stage is recorded as the counterexample.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "falsifiers/support/op_reference.h"
#include "harness/testing/pv_test.h"
#include "kernels/cpu/cpu_backend.h"
#include "model/forward.h"
#include "model/generate.h"
#include "model/loading/loader.h"
#include "model/stages.h"

namespace pv::optest {
namespace {

// Per-stage bound, one for every weight type: both backends compute in f32 and, for block
// weights, both round the activations to the same int8 codes per activation block
// (kernels/cpu quantize_act_block, kernels/cuda act_quant.cuh) and sum the same integers,
// so only the order of f32 sums differs. (With f32 activations on CUDA alone the quantized
// fixtures needed NMSE 1e-3 / 1e-2 here and still broke 1e-3; kernels/cuda/NOTES.md keeps
// that run's numbers. With the same codes on both, H200 and H100 measure <= 3.1e-13.)
struct Bounds {
  double nmse, cosine;
};
constexpr Bounds kBound{1e-8, 0.99999999};

struct Fixture {
  std::string name, file;
};
const std::vector<Fixture>& fixtures() {
  static const std::vector<Fixture> v = {
      {"qwen2-gqa7-tied", "qwen2-gqa7-tied-f32.gguf"},
      {"qwen2-gqa7-tied", "qwen2-gqa7-tied-q8_0.gguf"},
      {"qwen2-gqa4", "qwen2-gqa4-f32.gguf"},
      {"qwen2-gqa4", "qwen2-gqa4-q8_0.gguf"},
      {"qwen2-gqa4", "qwen2-gqa4-q4_k.gguf"},
      {"qwen2-gqa4", "qwen2-gqa4-q6_k.gguf"},
      {"qwen2-gqa4", "hf"},
      {"llama-gqa8", "llama-gqa8-f32.gguf"},
      {"llama-gqa8", "llama-gqa8-q8_0.gguf"},
      {"qwen3-gqa", "qwen3-gqa-f32.gguf"},
      {"qwen3-gqa", "qwen3-gqa-q8_0.gguf"},
      {"qwen3-gqa", "hf"},
      {"llama31-gqa", "llama31-gqa-f32.gguf"},
      {"llama31-gqa", "hf"},
  };
  return v;
}

class CaptureSink : public model::StageSink {
 public:
  void on_stage(model::Stage stage, int layer, const float* data,
                const std::vector<int64_t>& shape) override {
    size_t n = 1;
    for (int64_t d : shape) n *= static_cast<size_t>(d);
    got[{layer, static_cast<int>(stage)}].assign(data, data + n);
  }
  // Keyed (layer, stage) so iteration runs in computation order (-1 = whole model first;
  // final_norm and lm_head sort after the layers by their stage index below).
  std::map<std::pair<int, int>, std::vector<float>> got;
};

model::StagePlan all_stages() {
  model::StagePlan p;
  p.stages.fill(true);
  p.all_layers = true;
  return p;
}

struct StepReport {
  double worst_nmse = 0, min_cosine = 1;
  size_t nonfinite = 0, stages = 0;
  std::string first_break;  // "<layer> <stage>: cosine .., nmse .."
  bool argmax_equal = true;
};

// Compares two captures stage by stage in computation order and prints the table.
StepReport compare_steps(const CaptureSink& cpu, const CaptureSink& gpu, const Bounds& b,
                         const std::string& title) {
  StepReport r;
  std::vector<std::pair<std::pair<int, int>, const std::vector<float>*>> order;
  for (const auto& [key, v] : cpu.got) order.push_back({key, &v});
  // Whole-model stages (layer -1): embedding first, final_norm / lm_head last.
  std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& c) {
    auto rank = [](const std::pair<int, int>& k) {
      if (k.first >= 0) return std::pair<int, int>{k.first, k.second};
      return k.second == static_cast<int>(model::Stage::embedding)
                 ? std::pair<int, int>{-1, 0}
                 : std::pair<int, int>{1 << 20, k.second};
    };
    return rank(a.first) < rank(c.first);
  });
  std::printf("%s\n  %-6s %-20s %14s %12s\n", title.c_str(), "layer", "stage", "cosine", "nmse");
  for (const auto& [key, ref] : order) {
    const auto it = gpu.got.find(key);
    const std::string stage(model::stage_name(static_cast<model::Stage>(key.second)));
    const std::string layer = key.first < 0 ? "-" : std::to_string(key.first);
    if (it == gpu.got.end() || it->second.size() != ref->size()) {
      r.first_break = r.first_break.empty() ? layer + " " + stage + ": missing or shape differs"
                                            : r.first_break;
      ++r.nonfinite;
      continue;
    }
    const Compare c = compare(ref->data(), it->second.data(), ref->size());
    ++r.stages;
    r.worst_nmse = std::max(r.worst_nmse, c.nmse);
    r.min_cosine = std::min(r.min_cosine, c.cosine);
    r.nonfinite += c.nonfinite;
    const bool broken = c.nmse > b.nmse || c.cosine < b.cosine || c.nonfinite > 0;
    std::printf("  %-6s %-20s %14.10f %12.3g%s\n", layer.c_str(), stage.c_str(), c.cosine, c.nmse,
                broken ? "  <-- beyond bound" : "");
    if (broken && r.first_break.empty())
      r.first_break = "layer " + layer + " " + stage + ": cosine " + std::to_string(c.cosine) +
                      ", nmse " + std::to_string(c.nmse);
  }
  return r;
}

struct Loaded {
  model::LoadedModel m;
  std::string tag;
};

// Loads a fixture; false (with the name of the absent fixture in *absent) when missing.
bool load_fixture(const Fixture& f, Loaded* out, std::string* absent) {
  const std::string path = testing::source_dir() + "/model/fixtures/" + f.name + "/" + f.file;
  if (!std::filesystem::exists(path)) {
    *absent = "model:" + f.name;
    return false;
  }
  out->m = model::load_model(path);
  out->tag = f.file == "hf" ? f.name + "-hf" : f.file.substr(0, f.file.size() - 5);
  return true;
}

// Runs `steps` single-token evals on both backends (tokens[0..steps)), comparing the
// captures of the last one; records metrics under `what`.
void check_step(int steps, const char* what) {
  PV_REQUIRE_CUDA_BACKEND(gpu);
  const std::vector<int32_t> tokens = {1, 7, 42};
  double worst_nmse = 0, min_cos = 1;
  std::string first_failure;
  for (const Fixture& f : fixtures()) {
    Loaded L;
    std::string absent;
    if (!load_fixture(f, &L, &absent)) PV_SKIP_FIXTURE_ABSENT(absent);
    kernels::CpuBackend cpu(4);
    model::Forward fc(L.m.config, L.m.weights, cpu, 64);
    model::Forward fg(L.m.config, L.m.weights, *gpu, 64);
    const model::StagePlan plan = all_stages();
    CaptureSink sc, sg;
    const int vocab = L.m.config.vocab;
    std::vector<float> lc(vocab), lg(vocab);
    for (int s = 0; s < steps; ++s) {
      const bool last = s == steps - 1;
      fc.eval(&tokens[s], 1, lc.data(), last ? &plan : nullptr, last ? &sc : nullptr);
      fg.eval(&tokens[s], 1, lg.data(), last ? &plan : nullptr, last ? &sg : nullptr);
    }
    StepReport r = compare_steps(sc, sg, kBound, L.tag + " " + what);
    r.argmax_equal = model::argmax(lc.data(), vocab) == model::argmax(lg.data(), vocab);
    testing::record_metric(L.tag + ".nmse_max", r.worst_nmse);
    testing::record_metric(L.tag + ".cosine_min", r.min_cosine);
    worst_nmse = std::max(worst_nmse, r.worst_nmse);
    min_cos = std::min(min_cos, r.min_cosine);
    const size_t per_layer = L.m.config.qk_norm ? 19 : 17;  // + q_norm, k_norm
    EXPECT_EQ(r.stages, static_cast<size_t>(L.m.config.n_layers) * per_layer + 3) << L.tag;
    EXPECT_TRUE(r.first_break.empty()) << L.tag << ": first stage beyond bound: " << r.first_break;
    EXPECT_TRUE(r.argmax_equal) << L.tag << ": CPU and CUDA pick different next tokens";
    if (!r.first_break.empty() && first_failure.empty())
      first_failure = L.tag + " " + what + ": " + r.first_break;
  }
  testing::record_metric("nmse_max", worst_nmse);
  testing::record_metric("cosine_min", min_cos);
  if (!first_failure.empty()) testing::record_counterexample(first_failure);
}

TEST(CudaOutputParity, FirstTokenEveryStageEveryFixture) {
  check_step(1, "first token (no cache)");
}

TEST(CudaOutputParity, SecondTokenOneCachedPositionEveryStage) {
  check_step(2, "second token (one cached position)");
}

// The 32 greedy tokens must be identical on both backends for every fixture, weight type
// included (both dot the same int8 activation codes with block weights). On a difference
// the CPU's logit margin between the two choices at that position (teacher-forced along the
// CPU's sequence) and the backends' logit disagreement there are reported, which tells a
// near-tie flipped by rounding from a real GPU error.
TEST(CudaOutputParity, Greedy32TokensIdenticalEveryFixture) {
  PV_REQUIRE_CUDA_BACKEND(gpu);
  const std::vector<int32_t> prompt = {1, 7, 42, 5};
  constexpr int kNew = 32;
  int mismatched_fixtures = 0;
  double worst_logit_drift = 0.0;
  for (const Fixture& f : fixtures()) {
    Loaded L;
    std::string absent;
    if (!load_fixture(f, &L, &absent)) PV_SKIP_FIXTURE_ABSENT(absent);
    kernels::CpuBackend cpu(4);
    model::GenerateOptions opt;
    opt.max_new = kNew;
    opt.eos.clear();  // always 32 tokens: an early eos would shorten the comparison
    model::Forward fc(L.m.config, L.m.weights, cpu, 64);
    model::Forward fg(L.m.config, L.m.weights, *gpu, 64);
    const auto rc = model::generate_greedy(fc, prompt, opt);
    const auto rg = model::generate_greedy(fg, prompt, opt);
    ASSERT_EQ(rc.tokens.size(), static_cast<size_t>(kNew)) << L.tag;
    ASSERT_EQ(rg.tokens.size(), static_cast<size_t>(kNew)) << L.tag;
    int first_diff = -1;
    for (int i = 0; i < kNew && first_diff < 0; ++i)
      if (rc.tokens[static_cast<size_t>(i)] != rg.tokens[static_cast<size_t>(i)]) first_diff = i;

    // Teacher-forced logits of the CPU's sequence on both backends: the drift metric, and
    // the margin that explains a difference.
    std::vector<int32_t> seq = prompt;
    seq.insert(seq.end(), rc.tokens.begin(), rc.tokens.end());
    const int T = static_cast<int>(seq.size()), V = L.m.config.vocab;
    std::vector<float> lc(static_cast<size_t>(T) * V), lg(lc.size());
    model::Forward fc2(L.m.config, L.m.weights, cpu, 64);
    model::Forward fg2(L.m.config, L.m.weights, *gpu, 64);
    fc2.eval(seq.data(), T, lc.data());
    fg2.eval(seq.data(), T, lg.data());
    double drift_here = 0.0;
    for (int i = 0; i < kNew; ++i) {
      const size_t row = static_cast<size_t>(prompt.size()) - 1 + static_cast<size_t>(i);
      double drift = 0.0;
      for (int v = 0; v < V; ++v)
        drift = std::max(drift, std::fabs(static_cast<double>(lc[row * V + v]) - lg[row * V + v]));
      worst_logit_drift = std::max(worst_logit_drift, drift);
      if (i == first_diff) drift_here = drift;
    }
    testing::record_metric(L.tag + ".first_difference", first_diff);
    if (first_diff < 0) {
      std::printf("%s greedy %d: identical\n", L.tag.c_str(), kNew);
      continue;
    }
    const size_t row = static_cast<size_t>(prompt.size()) - 1 + static_cast<size_t>(first_diff);
    const int32_t ct = rc.tokens[static_cast<size_t>(first_diff)];
    const int32_t gt = rg.tokens[static_cast<size_t>(first_diff)];
    const double margin = std::fabs(static_cast<double>(lc[row * V + ct]) - lc[row * V + gt]);
    const std::string why = "token " + std::to_string(first_diff) + ": cpu " + std::to_string(ct) +
                            ", cuda " + std::to_string(gt) + ", cpu logit margin " +
                            std::to_string(margin) + ", logit disagreement " +
                            std::to_string(drift_here);
    std::printf("%s greedy %d: differ at %s\n", L.tag.c_str(), kNew, why.c_str());
    if (mismatched_fixtures++ == 0) testing::record_counterexample(L.tag + ": " + why);
    ADD_FAILURE() << L.tag << ": the greedy sequences differ at " << why;
  }
  testing::record_metric("fixtures_mismatched", mismatched_fixtures);
  testing::record_metric("logit_drift_max", worst_logit_drift);
}

}  // namespace
}  // namespace pv::optest
