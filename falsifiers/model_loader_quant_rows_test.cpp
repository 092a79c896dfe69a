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

#include "falsifiers/support/prompt_logits.h"
#include "harness/testing/pv_test.h"
#include "model/loading/loader.h"

namespace {

using namespace pv::loader_test;

std::string fixture_gguf(const std::string& name, const std::string& tag) {
  return pv::testing::source_dir() + "/model/fixtures/" + name + "/" + name + "-" + tag + ".gguf";
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
    const std::string key = std::string(q.fixture) + "." + q.tag;
    const double bound = pv::testing::threshold(std::string("nmse_max_") + q.tag, q.nmse_fallback);
    const auto c = compare_logit_rows(la, lb, a.config.vocab, bound);
    for (const auto& f : c.failures) ADD_FAILURE() << key << " " << f;
    const double worst = c.worst_nmse;
    const int argmax_differs = c.argmax_differs, argmax_unexplained = c.argmax_unexplained;
    pv::testing::record_metric("nmse_max." + key, worst);
    pv::testing::record_metric("argmax_differs." + key, argmax_differs);
    pv::testing::record_metric("argmax_unexplained." + key, argmax_unexplained);
  }
}

}  // namespace
