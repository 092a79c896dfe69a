// contracts/families-cpu-vs-hf-oracle-v1.yaml: the Qwen3 and Llama-3.1 families. Every
// stage of the qwen3-gqa and llama31-gqa fixtures traced by the CPU forward (q_norm /
// k_norm included for qwen3, absent for llama) stays within stated thresholds of the trace
// HF transformers wrote for the same weights and tokens (tools/hf_oracle.py, committed
// under evidence/oracle/), with identical greedy continuations; pv's RoPE tables equal
// transformers' rotary inv_freq; the F32 GGUF computes what the HF directory computes; the
// loaders bind (and name, when absent or out of place) the q/k norm weights.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "falsifiers/support/hf_oracle.h"
#include "falsifiers/support/temp_dir.h"
#include "falsifiers/support/trace_helpers.h"
#include "harness/testing/pv_test.h"
#include "kernels/cpu/cpu_backend.h"
#include "model/fixtures/fixture_gen.h"
#include "model/formats/mapped_file.h"
#include "model/forward.h"
#include "model/generate.h"
#include "model/loading/loader.h"
#include "model/rope.h"
#include "model/trace/bisect.h"
#include "model/trace/trace_compare.h"
#include "model/trace/trace_report.h"
#include "model/trace/trace_run.h"

namespace {

namespace fs = std::filesystem;
using pv::model::Stage;

// FALSIFY-FAM-001/002's thresholds (families-cpu-vs-hf-oracle-v1.yaml), the same as the
// qwen2 oracle contract's; pv validate hands them to the test.
constexpr double kCosineFloor = 1.0 - 1e-10;
constexpr double kNmseMax = 1e-10;

std::string fixtures_root() { return pv::testing::source_dir() + "/model/fixtures"; }

pv::model::FixtureSpec spec_of(const std::string& name) {
  for (const auto& s : pv::model::default_fixtures())
    if (s.name == name) return s;
  ADD_FAILURE() << "no default fixture " << name;
  return {};
}

using pv::testing::cpu_trace;

// Every stage of `name`'s HF directory on the CPU against the oracle trace of `dtype`.
void check_against_oracle(const std::string& name, const std::string& dtype) {
  const std::string root = pv::testing::source_dir();
  const std::string oracle = root + "/evidence/oracle/" + name + "/" + dtype;
  const std::string model_dir = fixtures_root() + "/" + name + "/hf";
  if (!fs::exists(oracle + "/trace.json")) PV_SKIP_FIXTURE_ABSENT("oracle:" + name);
  if (!fs::exists(model_dir + "/config.json")) PV_SKIP_FIXTURE_ABSENT("model:" + name);
  const double cosine_floor = pv::testing::threshold("cosine_min", kCosineFloor);
  const double nmse_bound = pv::testing::threshold("nmse_max", kNmseMax);
  const auto ometa = pv::model::read_trace_meta(oracle);
  pv::testing::TempDir tmp("fam-oracle-" + name);
  const auto run = cpu_trace(model_dir, name, ometa.tokens,
                             static_cast<int>(ometa.greedy_tokens.size()), tmp.path());
  const auto cfg = pv::model::load_model(model_dir).config;
  // Both sides must hold the family's stages: q_norm / k_norm per layer for qwen3 (the
  // sub-stage is compared, not skipped), none for llama (absent, not zero).
  const auto d = pv::model::diff_trace_dirs(oracle, tmp.path(), 5, true);
  const size_t per_layer = cfg.qk_norm ? 19 : 17;
  ASSERT_EQ(d.stages.size(), 3 + per_layer * cfg.n_layers) << name;
  size_t qk_norm_stages = 0;
  for (const auto& s : d.stages)
    qk_norm_stages += s.stage == Stage::q_norm || s.stage == Stage::k_norm;
  EXPECT_EQ(qk_norm_stages, cfg.qk_norm ? size_t(2 * cfg.n_layers) : 0u) << name;
  pv::testing::OracleWorst worst;
  pv::testing::expect_matches_oracle(name, dtype, d, run, ometa.greedy_tokens, cosine_floor,
                                     nmse_bound, worst);
  pv::testing::record_oracle_metrics(worst, cosine_floor, nmse_bound);
}

TEST(FamiliesCpuVsHfOracle, Falsify001_Qwen3VsHfFloat32) {
  check_against_oracle("qwen3-gqa", "f32");
}
TEST(FamiliesCpuVsHfOracle, Falsify001_Qwen3VsHfFloat64) {
  check_against_oracle("qwen3-gqa", "f64");
}
TEST(FamiliesCpuVsHfOracle, Falsify002_Llama31VsHfFloat32) {
  check_against_oracle("llama31-gqa", "f32");
}
TEST(FamiliesCpuVsHfOracle, Falsify002_Llama31VsHfFloat64) {
  check_against_oracle("llama31-gqa", "f64");
}

// transformers' rotary inv_freq, as tools/hf_oracle.py records it in trace.json.
std::vector<double> oracle_inv_freq(const std::string& trace_dir) {
  std::ifstream f(trace_dir + "/trace.json");
  const auto j = nlohmann::json::parse(f);
  return j.at("rotary").at("inv_freq").get<std::vector<double>>();
}

// pv's RoPE tables (from config.json, and from the F32 GGUF: rope_freqs.weight for llama3)
// against transformers' own rotary embedding, and the llama3 table's three bands.
TEST(FamiliesCpuVsHfOracle, Falsify003_RopeTablesMatchTransformers) {
  const double rel_bound = pv::testing::threshold("inv_freq_rel_max", 1.2e-7);
  double worst_rel = 0.0;
  for (const std::string name : {"qwen3-gqa", "llama31-gqa"}) {
    const std::string oracle = pv::testing::source_dir() + "/evidence/oracle/" + name + "/f32";
    if (!fs::exists(oracle + "/trace.json")) PV_SKIP_FIXTURE_ABSENT("oracle:" + name);
    if (!fs::exists(fixtures_root() + "/" + name + "/hf/config.json"))
      PV_SKIP_FIXTURE_ABSENT("model:" + name);
    const std::vector<double> hf = oracle_inv_freq(oracle);
    for (const std::string& file : {std::string("/hf"), "/" + name + "-f32.gguf"}) {
      const auto cfg = pv::model::load_model(fixtures_root() + "/" + name + file).config;
      const auto table = pv::model::rope_table(cfg);
      ASSERT_EQ(table.inv_freq.size(), hf.size()) << name << file;
      EXPECT_EQ(table.attention_factor, 1.0f) << name << file;
      for (size_t i = 0; i < hf.size(); ++i) {
        const double rel = std::abs(table.inv_freq[i] - hf[i]) / hf[i];
        worst_rel = std::max(worst_rel, rel);
        // Transformers scales in f32, pv in double rounded once: at most an ulp apart.
        EXPECT_LE(rel, rel_bound) << name << file << " inv_freq[" << i << "] pv "
                                  << table.inv_freq[i] << " vs transformers " << hf[i];
      }
    }
  }
  // The llama3 table: pairs with wavelength < 64/4 untouched, > 64/1 divided by 8, and the
  // ones between smoothed strictly in between: 1, 2 and 5 pairs at head_dim 16, theta 1e4.
  const auto cfg = pv::model::load_model(fixtures_root() + "/llama31-gqa/hf").config;
  ASSERT_EQ(cfg.rope_scaling.kind, pv::model::RopeScalingKind::Llama3);
  const auto scaled = pv::model::rope_table(cfg).inv_freq;
  const auto base = pv::model::rope_base_inv_freq(cfg.head_dim, cfg.rope_theta);
  int same = 0, divided = 0, between = 0;
  for (size_t i = 0; i < base.size(); ++i) {
    const double ratio = base[i] / scaled[i];
    if (std::abs(ratio - 1.0) < 1e-6) {
      ++same;
    } else if (std::abs(ratio - 8.0) < 8e-6) {
      ++divided;
    } else if (ratio > 1.0 && ratio < 8.0) {
      ++between;
    }
  }
  EXPECT_EQ(same, 1);
  EXPECT_EQ(between, 2);
  EXPECT_EQ(divided, 5);
  pv::testing::record_metric("inv_freq_rel_max", worst_rel);
}

// The F32 GGUF of each fixture computes the HF directory's function: every stage of the CPU
// traces (llama's q/k rows put back in HF order) within the oracle thresholds, greedy
// tokens identical; qwen3's GGUF (same row order, same RoPE) bit for bit.
TEST(FamiliesCpuVsHfOracle, Falsify004_GgufF32MatchesHfDir) {
  const std::vector<int32_t> tokens = {17, 101, 3, 250, 42, 499, 7};
  const double cosine_floor = pv::testing::threshold("cosine_min", kCosineFloor);
  const double nmse_bound = pv::testing::threshold("nmse_max", kNmseMax);
  double cos_min = 1.0, nmse_max = 0.0;
  for (const std::string name : {"qwen3-gqa", "llama31-gqa"}) {
    const std::string dir = fixtures_root() + "/" + name;
    if (!fs::exists(dir + "/" + name + "-f32.gguf")) PV_SKIP_FIXTURE_ABSENT("model:" + name);
    pv::testing::TempDir tmp("fam-gguf-" + name);
    const auto hf = cpu_trace(dir + "/hf", name, tokens, 8, tmp.sub("hf"));
    const auto gg = cpu_trace(dir + "/" + name + "-f32.gguf", name, tokens, 8, tmp.sub("gguf"));
    const auto d = pv::model::diff_trace_dirs(tmp.sub("hf"), tmp.sub("gguf"), 5, true);
    std::cout << name << " F32 GGUF vs HF dir (CPU):\n" << pv::model::diff_table(d);
    const bool bitwise = name == "qwen3-gqa";
    for (const auto& s : d.stages) {
      const std::string where = name + " " + pv::model::entry_label(s.stage, s.layer);
      cos_min = std::min(cos_min, s.stats.cosine);
      nmse_max = std::max(nmse_max, s.stats.nmse);
      EXPECT_GE(s.stats.cosine, cosine_floor) << where;
      EXPECT_LE(s.stats.nmse, nmse_bound) << where;
      if (bitwise) {
        EXPECT_EQ(s.stats.max_abs, 0.0) << where;
      }
    }
    EXPECT_EQ(hf.meta.greedy_tokens, gg.meta.greedy_tokens) << name;
    ASSERT_EQ(hf.logits.size(), gg.logits.size());
    if (bitwise) {
      EXPECT_TRUE(hf.logits == gg.logits) << name << ": logits differ";
    }
  }
  pv::testing::record_metric("cosine_min", cos_min);
  pv::testing::record_metric("nmse_max", nmse_max);
}

// Writes `spec`'s config.json next to the safetensors of `weights_spec` into a temp dir.
std::string hf_dir_with(const pv::testing::TempDir& tmp, const pv::model::FixtureSpec& spec,
                        pv::model::SafetensorsWriter st) {
  const std::string text = pv::model::fixture_config_json(spec, nullptr);
  pv::model::write_file_atomic(tmp.sub("config.json"),
                               std::vector<uint8_t>(text.begin(), text.end()));
  st.write(tmp.sub("model.safetensors"));
  return tmp.path();
}

std::string load_error(const std::string& path) {
  try {
    pv::model::load_model(path);
  } catch (const pv::model::FormatError& e) {
    return e.what();
  }
  return "";
}

std::string load_error_bytes(const std::vector<uint8_t>& bytes) {
  try {
    pv::model::load_gguf_model(pv::model::MappedFile::from_bytes("mem.gguf", bytes));
  } catch (const pv::model::FormatError& e) {
    return e.what();
  }
  return "";
}

// The qwen3 loaders: explicit head_dim, no bias, q_norm/k_norm bound from both formats;
// missing norm weights, and norm weights in a family without them, refused by name.
TEST(FamiliesCpuVsHfOracle, Falsify005_Qwen3QkNormWeightsBoundAndNamed) {
  const auto spec = spec_of("qwen3-gqa");
  const std::string dir = fixtures_root() + "/qwen3-gqa";
  if (!fs::exists(dir + "/hf/config.json")) PV_SKIP_FIXTURE_ABSENT("model:qwen3-gqa");
  for (const std::string file : {"/hf", "/qwen3-gqa-f32.gguf", "/qwen3-gqa-q8_0.gguf"}) {
    const auto m = pv::model::load_model(dir + file);
    SCOPED_TRACE(file);
    EXPECT_EQ(m.config.architecture, "qwen3");
    EXPECT_TRUE(m.config.qk_norm);
    EXPECT_FALSE(m.config.qkv_bias);
    EXPECT_EQ(m.config.head_dim, 32);
    EXPECT_NE(m.config.head_dim * m.config.n_heads, m.config.hidden);
    EXPECT_EQ(m.config.rope_style, pv::kernels::RopeStyle::HalfSplit);
    for (const auto& L : m.weights.layers) {
      EXPECT_EQ(L.q_norm.numel(), 32);
      EXPECT_EQ(L.k_norm.numel(), 32);
      EXPECT_EQ(L.bq.data, nullptr);
    }
  }
  EXPECT_EQ(pv::model::gguf_tensor_name(pv::model::TensorRole::kQNorm, 3),
            "blk.3.attn_q_norm.weight");
  EXPECT_EQ(pv::model::hf_tensor_name(pv::model::TensorRole::kKNorm, 3),
            "model.layers.3.self_attn.k_norm.weight");

  // qwen3 config.json over weights without q_norm/k_norm.
  {
    pv::testing::TempDir tmp("qwen3-no-qnorm");
    auto plain = spec;
    plain.architecture = "llama";  // same HF names and shapes, no q/k norm
    const std::string msg =
        load_error(hf_dir_with(tmp, spec, pv::model::fixture_safetensors(plain)));
    EXPECT_NE(msg.find("model.layers.0.self_attn.q_norm.weight"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[32]"), std::string::npos) << msg;
  }
  // qwen3 GGUF whose layer-0 q norm is renamed away (same byte length).
  {
    auto bytes = pv::model::fixture_gguf(spec, pv::kernels::GgmlType::F32, nullptr).serialize();
    const std::string name = "blk.0.attn_q_norm.weight";
    auto it = std::search(bytes.begin(), bytes.end(), name.begin(), name.end());
    ASSERT_NE(it, bytes.end());
    *(it + 16) = 'X';  // blk.0.attn_q_norX.weight
    const std::string msg = load_error_bytes(bytes);
    EXPECT_NE(msg.find(name), std::string::npos) << msg;
    EXPECT_NE(msg.find("missing"), std::string::npos) << msg;
  }
  // q/k norm weights in a qwen2 checkpoint (which never applies them): refused.
  {
    pv::testing::TempDir tmp("qwen2-with-qnorm");
    auto q2 = spec;
    q2.architecture = "qwen2";
    q2.qkv_bias = true;
    auto st = pv::model::fixture_safetensors(q2);
    std::vector<uint8_t> ones(32 * sizeof(float));
    const float one = 1.0f;
    for (size_t i = 0; i < 32; ++i) std::memcpy(ones.data() + i * 4, &one, 4);
    st.add_tensor("model.layers.0.self_attn.q_norm.weight", "F32", {32}, ones);
    const std::string msg = load_error(hf_dir_with(tmp, q2, std::move(st)));
    EXPECT_NE(msg.find("model.layers.0.self_attn.q_norm.weight"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'qwen2'"), std::string::npos) << msg;

    auto w = pv::model::fixture_gguf(q2, pv::kernels::GgmlType::F32, nullptr);
    w.add_tensor("blk.0.attn_k_norm.weight", {32}, pv::kernels::GgmlType::F32, ones);
    const std::string gmsg = load_error_bytes(w.serialize());
    EXPECT_NE(gmsg.find("blk.0.attn_k_norm.weight"), std::string::npos) << gmsg;
  }
}

}  // namespace

namespace {

// `pv gen-model --custom` builds a qwen3 of an explicit head_dim (the real binary), and
// both written formats load with that head_dim and the q/k norms.
TEST(FamiliesCpuVsHfOracle, Falsify005_GenModelCustomQwen3HeadDim) {
  const std::string pv = std::string(PV_BINARY_DIR) + "/bin/pv";
  if (!fs::exists(pv)) PV_SKIP_FIXTURE_ABSENT("pv-binary");
  pv::testing::TempDir tmp("gen-qwen3");
  std::string out;
  ASSERT_EQ(pv::testing::run_pv({"gen-model", "--custom", "q3", "--arch", "qwen3", "--hidden", "64",
                                 "--heads", "4", "--kv-heads", "2", "--head-dim", "48", "--ffn",
                                 "64", "--vocab", "64", "--out", tmp.path()},
                                &out),
            0)
      << out;
  for (const std::string file : {"/q3/hf", "/q3/q3-f32.gguf"}) {
    const auto m = pv::model::load_model(tmp.path() + file);
    EXPECT_EQ(m.config.head_dim, 48) << file;
    EXPECT_TRUE(m.config.qk_norm) << file;
    EXPECT_FALSE(m.config.qkv_bias) << file;
    EXPECT_EQ(m.weights.layers.at(1).k_norm.numel(), 48) << file;
  }
}

}  // namespace
