// Falsifiers of contracts/model-loader-v1.yaml, GGUF YaRN part: a GGUF's
// `<arch>.rope.scaling.*` yarn keys, read as llama.cpp reads them, give the RoPE table (and
// logits) transformers gives for the HF config the converter wrote them from; the yarn keys
// llama.cpp and transformers read differently are refused naming the file and the key.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "falsifiers/support/scratch_files.h"
#include "harness/testing/pv_test.h"
#include "kernels/cpu/cpu_backend.h"
#include "model/fixtures/fixture_gen.h"
#include "model/formats/gguf_writer.h"
#include "model/formats/mapped_file.h"
#include "model/forward.h"
#include "model/loading/loader.h"
#include "model/rope.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using pv::model::GgufValue;
using pv::model::GgufWriter;
using pv::model::RopeScalingKind;

const std::vector<int32_t> kPrompt = {1, 17, 42, 99, 7, 3, 250, 11, 400, 64, 5, 300};

// The fixture's yarn: factor 4 over an original context of 64 (the fixture's context_length
// is 256 = 4 x 64, so max_position_embeddings / original equals the factor and every
// transformers release reads the HF form alike). With head_dim 32 and base 1e6 the ramp
// spans pairs 0..3 and pairs 3.. are interpolated: the scaling changes this small model.
constexpr double kFactor = 4.0;
constexpr int kOriginal = 64;

pv::model::FixtureSpec fixture(const std::string& name) {
  for (const auto& s : pv::model::default_fixtures())
    if (s.name == name) return s;
  ADD_FAILURE() << "no fixture " << name;
  return {};
}

// The fixture as an HF directory whose config.json carries `rope_scaling` (4.x) or the
// same keys in `rope_parameters` (5.x).
pv::model::LoadedModel hf_model(const pv::model::FixtureSpec& spec, const json& rope_scaling,
                                const std::string& tag) {
  const fs::path dir = pv::testing::make_temp_dir(tag);
  pv::model::fixture_safetensors(spec).write((dir / "model.safetensors").string());
  json cfg = json::parse(pv::model::fixture_config_json(spec, nullptr));
  EXPECT_EQ(cfg.at("max_position_embeddings").get<int>(), kOriginal * kFactor);
  // A 5.x config (qwen3-gqa's) keeps the scaling next to its rope base in rope_parameters.
  if (cfg.contains("rope_parameters")) {
    cfg["rope_parameters"].update(rope_scaling);
  } else {
    cfg["rope_scaling"] = rope_scaling;
  }
  pv::testing::write_text(dir / "config.json", cfg.dump(2));
  return pv::model::load_model(dir.string());
}

// The fixture's F32 GGUF, plus `extra` applied to the writer, read from memory as `name`.
pv::model::LoadedModel gguf_model(const pv::model::FixtureSpec& spec,
                                  const std::function<void(GgufWriter&)>& extra,
                                  const std::string& name = "yarn.gguf") {
  GgufWriter w = pv::model::fixture_gguf(spec, pv::kernels::GgmlType::F32, nullptr);
  extra(w);
  return pv::model::load_gguf_model(pv::model::MappedFile::from_bytes(name, w.serialize()));
}

// The keys convert_hf_to_gguf.py writes for an HF rope_scaling {yarn, factor, original}.
void add_yarn(GgufWriter& w, const std::string& arch) {
  w.add(arch + ".rope.scaling.type", GgufValue::make_string("yarn"));
  w.add(arch + ".rope.scaling.factor", GgufValue::make_f32(static_cast<float>(kFactor)));
  w.add(arch + ".rope.scaling.original_context_length", GgufValue::make_u32(kOriginal));
}

std::vector<float> logits(const pv::model::LoadedModel& m) {
  pv::kernels::CpuBackend be(1);
  pv::model::Forward f(m.config, m.weights, be, 64);
  std::vector<float> out(kPrompt.size() * m.config.vocab);
  f.eval(kPrompt.data(), static_cast<int>(kPrompt.size()), out.data());
  return out;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(double(a[i]) - b[i]));
  return m;
}

// Entries of two tables that are not bit-identical (the attention factor counts as one).
int table_mismatches(const pv::model::RopeTable& a, const pv::model::RopeTable& b) {
  if (a.inv_freq.size() != b.inv_freq.size()) return 1 << 20;
  int n = std::memcmp(&a.attention_factor, &b.attention_factor, sizeof(float)) != 0;
  for (size_t i = 0; i < a.inv_freq.size(); ++i)
    n += std::memcmp(&a.inv_freq[i], &b.inv_freq[i], sizeof(float)) != 0;
  return n;
}

// The same Qwen2.5-style yarn written as HF config.json and as GGUF metadata: one table,
// bit-identical logits (qwen2 and qwen3 GGUF rows are not permuted, so HF and GGUF F32 run
// the same sums), different from the unscaled model. rope.scaling.attn_factor a multiplies
// llama.cpp's cos/sin scale, a x (0.1 ln factor + 1): the HF config with attention_factor
// set to that number (computed here in double) is the same model.
TEST(ModelLoaderGgufYarn, HfConfigAndGgufGiveTheSameYarn) {
  double worst = 0, worst_attn = 0, gap = 1e30, attn_gap = 1e30;
  int mismatches = 0, models = 0;
  for (const std::string name : {"qwen2-gqa4", "qwen3-gqa"}) {
    SCOPED_TRACE(name);
    const auto spec = fixture(name);
    const std::string arch = spec.architecture;
    const json hf_yarn = {{"rope_type", "yarn"},
                          {"factor", kFactor},
                          {"original_max_position_embeddings", kOriginal}};
    const auto hf = hf_model(spec, hf_yarn, "yarn-hf");
    const auto gg = gguf_model(spec, [&](GgufWriter& w) { add_yarn(w, arch); });
    const auto plain = gguf_model(spec, [](GgufWriter&) {});
    ASSERT_EQ(gg.config.rope_scaling.kind, RopeScalingKind::Yarn);
    EXPECT_EQ(gg.config.rope_scaling.factor, kFactor);
    EXPECT_EQ(gg.config.rope_scaling.original_context, kOriginal);
    const auto th = pv::model::rope_table(hf.config), tg = pv::model::rope_table(gg.config);
    mismatches += table_mismatches(th, tg);
    EXPECT_EQ(table_mismatches(th, tg), 0);
    EXPECT_FLOAT_EQ(tg.attention_factor, float(0.1 * std::log(kFactor) + 1.0));
    const auto lh = logits(hf), lg = logits(gg), lp = logits(plain);
    worst = std::max(worst, max_abs_diff(lh, lg));
    EXPECT_EQ(std::memcmp(lh.data(), lg.data(), lh.size() * sizeof(float)), 0)
        << "HF yarn and GGUF yarn logits differ, max |a-b| = " << max_abs_diff(lh, lg);
    gap = std::min(gap, max_abs_diff(lg, lp));
    EXPECT_GT(max_abs_diff(lg, lp), 1e-4) << "GGUF yarn did not change the logits";

    // rope.scaling.attn_factor 1.25: llama.cpp's scale, written as transformers' factor.
    const float a = 1.25f;
    const double want = double(a) * (0.1 * std::log(kFactor) + 1.0);
    json hf_attn = hf_yarn;
    hf_attn["attention_factor"] = want;
    const auto hfa = hf_model(spec, hf_attn, "yarn-hf-attn");
    const auto gga = gguf_model(spec, [&](GgufWriter& w) {
      add_yarn(w, arch);
      w.add(arch + ".rope.scaling.attn_factor", GgufValue::make_f32(a));
    });
    const auto tha = pv::model::rope_table(hfa.config), tga = pv::model::rope_table(gga.config);
    EXPECT_EQ(tga.attention_factor, float(want));
    mismatches += table_mismatches(tha, tga);
    EXPECT_EQ(table_mismatches(tha, tga), 0);
    const auto lha = logits(hfa), lga = logits(gga);
    worst_attn = std::max(worst_attn, max_abs_diff(lha, lga));
    EXPECT_EQ(std::memcmp(lha.data(), lga.data(), lha.size() * sizeof(float)), 0)
        << "attn_factor: HF and GGUF logits differ, max |a-b| = " << max_abs_diff(lha, lga);
    attn_gap = std::min(attn_gap, max_abs_diff(lga, lg));
    EXPECT_GT(max_abs_diff(lga, lg), 1e-4) << "rope.scaling.attn_factor did not reach the forward";

    // The yarn keys at the values llama.cpp runs with are accepted and change nothing.
    const auto explicit_defaults = gguf_model(spec, [&](GgufWriter& w) {
      add_yarn(w, arch);
      w.add(arch + ".rope.scaling.yarn_ext_factor", GgufValue::make_f32(1.0f));
      w.add(arch + ".rope.scaling.yarn_beta_fast", GgufValue::make_f32(32.0f));
      w.add(arch + ".rope.scaling.yarn_beta_slow", GgufValue::make_f32(1.0f));
      w.add(arch + ".rope.scaling.yarn_log_multiplier", GgufValue::make_f32(0.0f));
      w.add(arch + ".rope.scaling.yarn_attn_factor",
            GgufValue::make_f32(float(0.1 * std::log(kFactor) + 1.0)));
      w.add(arch + ".rope.scaling.finetuned", GgufValue::make_bool(true));
    });
    mismatches += table_mismatches(pv::model::rope_table(explicit_defaults.config), tg);
    ++models;
  }
  EXPECT_EQ(models, 2);
  pv::testing::record_metric("yarn_table_mismatches", mismatches);
  pv::testing::record_metric("yarn_hf_vs_gguf_max_abs", worst);
  pv::testing::record_metric("yarn_attn_hf_vs_gguf_max_abs", worst_attn);
  pv::testing::record_metric("yarn_vs_none_max_abs", gap);
  pv::testing::record_metric("yarn_attn_factor_gap_max_abs", attn_gap);
}

// What pv cannot compute as both llama.cpp and transformers would is refused, naming the
// file and exactly the key; `pv inspect` of such a file exits 2 saying the same.
TEST(ModelLoaderGgufYarn, RefusesYarnKeysItCannotCompute) {
  const auto spec = fixture("qwen2-gqa4");
  const std::string a = spec.architecture + ".";
  struct Case {
    const char* what;
    std::function<void(GgufWriter&)> add;
    std::string key;
  };
  auto yarn_without = [&](const std::string& skip) {
    return [=](GgufWriter& w) {
      w.add(a + "rope.scaling.type", GgufValue::make_string("yarn"));
      if (skip != "factor") w.add(a + "rope.scaling.factor", GgufValue::make_f32(4.0f));
      if (skip != "original")
        w.add(a + "rope.scaling.original_context_length", GgufValue::make_u32(kOriginal));
    };
  };
  auto yarn_plus = [&](const std::string& key, GgufValue v) {
    return [=](GgufWriter& w) {
      yarn_without("")(w);
      w.add(a + key, v);
    };
  };
  const std::vector<Case> cases = {
      {"no factor", yarn_without("factor"), a + "rope.scaling.factor"},
      {"no original context", yarn_without("original"), a + "rope.scaling.original_context_length"},
      {"factor < 1",
       [&](GgufWriter& w) {
         w.add(a + "rope.scaling.type", GgufValue::make_string("yarn"));
         w.add(a + "rope.scaling.factor", GgufValue::make_f32(0.5f));
         w.add(a + "rope.scaling.original_context_length", GgufValue::make_u32(kOriginal));
       },
       a + "rope.scaling.factor"},
      {"original context 0",
       [&](GgufWriter& w) {
         w.add(a + "rope.scaling.type", GgufValue::make_string("yarn"));
         w.add(a + "rope.scaling.factor", GgufValue::make_f32(4.0f));
         w.add(a + "rope.scaling.original_context_length", GgufValue::make_u32(0));
       },
       a + "rope.scaling.original_context_length"},
      {"inverted correction range (original context 1)",
       [&](GgufWriter& w) {
         w.add(a + "rope.scaling.type", GgufValue::make_string("yarn"));
         w.add(a + "rope.scaling.factor", GgufValue::make_f32(4.0f));
         w.add(a + "rope.scaling.original_context_length", GgufValue::make_u32(1));
       },
       a + "rope.scaling.original_context_length"},
      {"ext_factor 0.5", yarn_plus("rope.scaling.yarn_ext_factor", GgufValue::make_f32(0.5f)),
       a + "rope.scaling.yarn_ext_factor"},
      {"beta_fast 16", yarn_plus("rope.scaling.yarn_beta_fast", GgufValue::make_f32(16.0f)),
       a + "rope.scaling.yarn_beta_fast"},
      {"beta_slow 2", yarn_plus("rope.scaling.yarn_beta_slow", GgufValue::make_f32(2.0f)),
       a + "rope.scaling.yarn_beta_slow"},
      {"log multiplier 0.1",
       yarn_plus("rope.scaling.yarn_log_multiplier", GgufValue::make_f32(0.1f)),
       a + "rope.scaling.yarn_log_multiplier"},
      {"yarn_attn_factor 1.5",
       yarn_plus("rope.scaling.yarn_attn_factor", GgufValue::make_f32(1.5f)),
       a + "rope.scaling.yarn_attn_factor"},
      {"attn_factor 0", yarn_plus("rope.scaling.attn_factor", GgufValue::make_f32(0.0f)),
       a + "rope.scaling.attn_factor"},
      {"yarn key under linear",
       [&](GgufWriter& w) {
         w.add(a + "rope.scaling.type", GgufValue::make_string("linear"));
         w.add(a + "rope.scaling.factor", GgufValue::make_f32(4.0f));
         w.add(a + "rope.scaling.yarn_beta_fast", GgufValue::make_f32(32.0f));
       },
       a + "rope.scaling.yarn_beta_fast"},
      {"attn_factor under linear",
       [&](GgufWriter& w) {
         w.add(a + "rope.scaling.type", GgufValue::make_string("linear"));
         w.add(a + "rope.scaling.factor", GgufValue::make_f32(4.0f));
         w.add(a + "rope.scaling.attn_factor", GgufValue::make_f32(1.2f));
       },
       a + "rope.scaling.attn_factor"},
      {"unknown scaling kind",
       [&](GgufWriter& w) { w.add(a + "rope.scaling.type", GgufValue::make_string("longrope")); },
       a + "rope.scaling.type"},
  };
  int refused = 0;
  for (const Case& c : cases) {
    try {
      gguf_model(spec, c.add);
      ADD_FAILURE() << c.what << ": loaded";
    } catch (const pv::model::FormatError& e) {
      EXPECT_EQ(e.path(), "yarn.gguf") << c.what;
      EXPECT_EQ(e.subject(), "key '" + c.key + "'") << c.what << ": " << e.detail();
      EXPECT_NE(e.offset(), pv::model::FormatError::kNoOffset) << c.what;
      ++refused;
    }
  }
  pv::testing::record_metric("yarn_refusals", refused);

  // The CLI: pv inspect of a file with beta_fast 16 exits 2 naming the file and the key.
  const std::string pv = std::string(PV_BINARY_DIR) + "/bin/pv";
  if (!fs::exists(pv)) PV_SKIP_FIXTURE_ABSENT("pv-binary");
  const fs::path dir = pv::testing::make_temp_dir("yarn-inspect");
  GgufWriter w = pv::model::fixture_gguf(spec, pv::kernels::GgmlType::F32, nullptr);
  yarn_plus("rope.scaling.yarn_beta_fast", GgufValue::make_f32(16.0f))(w);
  const std::string file = (dir / "beta.gguf").string();
  w.write(file);
  FILE* p = popen((pv + " inspect " + file + " 2>&1").c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int status = pclose(p);
  ASSERT_TRUE(WIFEXITED(status)) << out;
  EXPECT_EQ(WEXITSTATUS(status), 2) << out;
  EXPECT_NE(out.find(file), std::string::npos) << out;
  EXPECT_NE(out.find("key '" + a + "rope.scaling.yarn_beta_fast'"), std::string::npos) << out;
}

}  // namespace
