// Falsifier of contracts/trace-save-tensor-v1.yaml, qk-norm alias part: llama.cpp's qwen3
// graph names q and k after their per-head RMSNorm "Qcur_normed" / "Kcur_normed"
// (src/models/qwen3.cpp, cb(Qcur, "Qcur_normed", il) before ggml_rope_ext); a trace using
// those names reads them as pv's q_norm / k_norm, not as another stage.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "falsifiers/support/trace_helpers.h"
#include "harness/testing/pv_test.h"
#include "kernels/cpu/cpu_backend.h"
#include "model/fixtures/fixture_gen.h"
#include "model/trace/trace_compare.h"
#include "model/trace/trace_dir.h"
#include "model/trace/trace_store.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using pv::model::Stage;

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// The qwen3-gqa fixture's weights, built in memory (q_norm / k_norm present).
std::unique_ptr<pv::model::SyntheticModel> qwen3_model() {
  for (const auto& s : pv::model::default_fixtures()) {
    if (s.name == "qwen3-gqa") {
      return pv::model::make_synthetic_model(pv::model::fixture_config(s), s.seed);
    }
  }
  return nullptr;
}

TEST(TraceSaveTensorQkNorm, LlamaCppNormedNamesAreQkNorm) {
  EXPECT_EQ(pv::model::resolve_stage_name("Qcur_normed", false, "x"), Stage::q_norm);
  EXPECT_EQ(pv::model::resolve_stage_name("Kcur_normed", false, "x"), Stage::k_norm);
  EXPECT_EQ(pv::model::parse_safetensors_key("Qcur_normed-3"),
            (std::pair<std::string, int>{"Qcur_normed", 3}));
  EXPECT_EQ(pv::model::parse_safetensors_key("Kcur_normed-0"),
            (std::pair<std::string, int>{"Kcur_normed", 0}));

  auto m = qwen3_model();
  ASSERT_NE(m, nullptr);
  ASSERT_TRUE(m->config.qk_norm);
  pv::testing::TempDir tmp("qk-norm-aliases");
  pv::kernels::CpuBackend cpu(1);
  const std::vector<int32_t> tokens = {1, 17, 42, 99, 7, 3};
  pv::testing::trace_all(m->config, m->weights, cpu, tokens, tmp.sub("pv"), 0);
  // The same trace as llama.cpp names it: q/k after the norm and after RoPE renamed.
  fs::copy(tmp.sub("pv"), tmp.sub("al"), fs::copy_options::recursive);
  json j = json::parse(slurp(tmp.sub("al") + "/trace.json"));
  const std::map<std::string, std::string> rename = {{"q_norm", "Qcur_normed"},
                                                     {"k_norm", "Kcur_normed"},
                                                     {"q_post_rope", "Qcur"},
                                                     {"k_post_rope", "Kcur"}};
  int renamed = 0, normed = 0;
  for (auto& e : j["stages"]) {
    auto it = rename.find(e["stage"].get<std::string>());
    if (it == rename.end()) continue;
    const std::string file = pv::model::stage_file(it->second, e["layer"].get<int>());
    fs::rename(tmp.sub("al") + "/" + e["file"].get<std::string>(), tmp.sub("al") + "/" + file);
    e["stage"] = it->second;
    e["file"] = file;
    ++renamed;
    normed += it->first == "q_norm" || it->first == "k_norm";
  }
  std::ofstream(tmp.sub("al") + "/trace.json") << j.dump(1);
  EXPECT_EQ(renamed, 4 * m->config.n_layers);
  EXPECT_EQ(normed, 2 * m->config.n_layers);

  const auto meta = pv::model::read_trace_meta(tmp.sub("al"));
  for (const auto& e : meta.entries) EXPECT_TRUE(e.user.empty()) << pv::model::entry_label(e);
  // Every stage matched by name and layer (none only on one side), all bit-identical.
  const auto d = pv::model::diff_trace_dirs(tmp.sub("pv"), tmp.sub("al"), 5, true);
  int qk_norm_compared = 0;
  double worst = 0;
  for (const auto& s : d.stages) {
    worst = std::max(worst, s.stats.max_abs);
    EXPECT_EQ(s.stats.max_abs, 0.0) << pv::model::stage_diff_label(s);
    qk_norm_compared += s.stage == Stage::q_norm || s.stage == Stage::k_norm;
  }
  EXPECT_EQ(qk_norm_compared, 2 * m->config.n_layers);
  EXPECT_EQ(d.stages.size(), meta.entries.size());

  // The safetensors form carries llama.cpp's "<name>-<N>" keys for the same stages.
  pv::model::write_safetensors_trace(pv::model::open_trace(tmp.sub("al")),
                                     tmp.sub("al.safetensors"));
  const auto st = pv::model::diff_trace_dirs(tmp.sub("pv"), tmp.sub("al.safetensors"), 5, true);
  EXPECT_EQ(st.stages.size(), d.stages.size());
  pv::testing::record_metric("qk_norm_alias_stages", qk_norm_compared);
  pv::testing::record_metric("qk_norm_alias_max_abs", worst);
}

}  // namespace
