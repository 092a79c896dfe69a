// Falsifier of contracts/model-files-v1.yaml, inspect part: `pv inspect` (the real binary)
// says whether a model applies the per-head q/k RMSNorm (qwen3's q_norm / k_norm), in text
// and JSON, for the HF directory and the GGUF file alike, and says "no" for a model without.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "falsifiers/support/trace_helpers.h"
#include "harness/testing/pv_test.h"

namespace {

namespace fs = std::filesystem;

std::string fixture(const std::string& rel) {
  return pv::testing::source_dir() + "/model/fixtures/" + rel;
}

TEST(ModelFilesInspect, ShowsQkNorm) {
  struct Case {
    std::string path;
    bool qk_norm;
  };
  const Case cases[] = {
      {fixture("qwen3-gqa/hf"), true},
      {fixture("qwen3-gqa/qwen3-gqa-f32.gguf"), true},
      {fixture("qwen2-gqa4/hf"), false},
      {fixture("qwen2-gqa4/qwen2-gqa4-f32.gguf"), false},
  };
  for (const Case& c : cases) {
    if (!fs::exists(c.path)) PV_SKIP_FIXTURE_ABSENT("model:qwen3-gqa");
  }
  int checked = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.path);
    std::string out;
    ASSERT_EQ(pv::testing::run_pv({"inspect", c.path}, &out), 0) << out;
    const std::string want =
        c.qk_norm ? "qk_norm yes (per-head RMSNorm of q and k before RoPE)" : "qk_norm no";
    EXPECT_NE(out.find(want), std::string::npos) << out;
    ASSERT_EQ(pv::testing::run_pv({"inspect", "--json", c.path}, &out), 0) << out;
    const auto j = nlohmann::json::parse(out);
    ASSERT_TRUE(j.at("config").contains("qk_norm")) << out;
    EXPECT_EQ(j.at("config").at("qk_norm").get<bool>(), c.qk_norm);
    ++checked;
  }
  pv::testing::record_metric("inspect_qk_norm_checked", checked);
}

}  // namespace
