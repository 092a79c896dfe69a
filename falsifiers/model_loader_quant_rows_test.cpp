// FALSIFY-LOADER-008: every prompt row of a quantized GGUF copy stays within an NMSE
// bound of the F32 copy's logits and picks the same greedy token unless F32 itself has a
// near-tie there (margin within twice the row's largest logit error). Cosine alone ignores
// scale, and one row's argmax says nothing of the others; NMSE per row catches both a
// wrong scale (a sub-block scale misread) and a row that drifts.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "harness/testing/pv_test.h"
#include "kernels/cpu/cpu_backend.h"
#include "model/forward.h"
#include "model/generate.h"
#include "model/loading/loader.h"

namespace {

std::string fixture_gguf(const std::string& name, const std::string& tag) {
  return pv::testing::source_dir() + "/model/fixtures/" + name + "/" + name + "-" + tag + ".gguf";
}

// The fixture prompt of the loader's other falsifiers: ids inside every fixture's vocab.
const std::vector<int32_t> kPrompt = {1, 17, 42, 99, 7, 3, 250, 11, 400, 64};

std::vector<float> prompt_logits(const pv::model::LoadedModel& m) {
  pv::kernels::CpuBackend be(1);
  pv::model::Forward f(m.config, m.weights, be, 64);
  std::vector<float> logits(kPrompt.size() * m.config.vocab);
  f.eval(kPrompt.data(), static_cast<int>(kPrompt.size()), logits.data());
  return logits;
}

struct QuantRowsCase {
  const char* fixture;
  const char* tag;
  double nmse_fallback;  // used outside pv validate; the contract's threshold otherwise
};
const QuantRowsCase kCases[] = {
    {"qwen2-gqa7-tied", "q8_0", 1e-3}, {"qwen2-gqa4", "q8_0", 1e-3}, {"qwen2-gqa4", "q6_k", 5e-3},
    {"qwen2-gqa4", "q4_k", 5e-2},      {"llama-gqa8", "q8_0", 1e-3},
};

TEST(ModelLoader, QuantizedEveryRowNmseAndArgmax) {
  for (const auto& q : kCases) {
    for (const char* tag : {"f32", q.tag}) {
      if (!std::filesystem::exists(fixture_gguf(q.fixture, tag))) {
        PV_SKIP_FIXTURE_ABSENT(std::string("model:") + q.fixture + "-" + tag);
      }
    }
  }
  for (const auto& q : kCases) {
    const auto a = pv::model::load_model(fixture_gguf(q.fixture, "f32"));
    const auto b = pv::model::load_model(fixture_gguf(q.fixture, q.tag));
    const auto la = prompt_logits(a), lb = prompt_logits(b);
    const int V = a.config.vocab;
    const std::string key = std::string(q.fixture) + "." + q.tag;
    const double bound = pv::testing::threshold(std::string("nmse_max_") + q.tag, q.nmse_fallback);
    double worst = 0;
    int argmax_differs = 0, argmax_unexplained = 0;
    for (size_t t = 0; t < kPrompt.size(); ++t) {
      const float* ra = la.data() + t * V;
      const float* rb = lb.data() + t * V;
      double num = 0, den = 0, max_abs = 0;
      for (int i = 0; i < V; ++i) {
        num += (double(ra[i]) - rb[i]) * (double(ra[i]) - rb[i]);
        den += double(ra[i]) * ra[i];
        max_abs = std::max(max_abs, std::fabs(double(ra[i]) - rb[i]));
      }
      const double nmse = den > 0 ? num / den : num;
      worst = std::max(worst, nmse);
      EXPECT_LE(nmse, bound) << key << " row " << t;
      // A different greedy token is explained only by a near-tie in F32: the two tokens'
      // F32 logits closer than twice this row's largest logit error.
      const int ta = pv::model::argmax(ra, V), tb = pv::model::argmax(rb, V);
      if (ta != tb) {
        ++argmax_differs;
        const double margin = double(ra[ta]) - ra[tb];
        if (margin > 2 * max_abs) {
          ++argmax_unexplained;
          ADD_FAILURE() << key << " row " << t << ": greedy token " << tb << " vs F32's " << ta
                        << ", F32 margin " << margin << " > 2 * max|a-b| " << max_abs;
        }
      }
    }
    pv::testing::record_metric("nmse_max." + key, worst);
    pv::testing::record_metric("argmax_differs." + key, argmax_differs);
    pv::testing::record_metric("argmax_unexplained." + key, argmax_unexplained);
  }
}

}  // namespace
