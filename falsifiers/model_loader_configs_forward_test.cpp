// Falsifiers of contracts/model-loader-v1.yaml, config part: what the config values do once
// loaded. pv builds the RoPE frequency tables the published configs name (default, linear,
// llama3, yarn), the rope base and scaling a 5.x config states really reach the forward,
// a GGUF's rope scaling keys and rope_freqs.weight are read (and unknown or refused keys
// named), and every eos id a config or GGUF lists ends generation. How config.json is read
// and refused is in model_loader_configs_test.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <numbers>
#include <string>
#include <vector>

#include "falsifiers/support/scratch_files.h"
#include "harness/testing/pv_test.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/ops.h"
#include "model/fixtures/fixture_gen.h"
#include "model/formats/gguf_writer.h"
#include "model/formats/mapped_file.h"
#include "model/forward.h"
#include "model/generate.h"
#include "model/loading/loader.h"
#include "model/rope.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using pv::model::RopeScalingKind;

// ---- RoPE tables: known answers --------------------------------------------------------

// The f32 base frequencies, written out independently of model/rope.cpp: torch's
// 1 / base^(arange(0, d, 2) / d) in float32 (pow correctly rounded).
std::vector<double> base_f32(int d, float theta) {
  std::vector<double> v;
  for (int k = 0; k < d; k += 2) {
    const float e = float(k) / float(d);
    v.push_back(double(1.0f / float(std::pow(double(theta), double(e)))));
  }
  return v;
}

double ulp_diff(float a, double b) {
  return std::fabs(double(a) - b) / std::ldexp(1.0, std::ilogb(b) - 23);
}

TEST(ModelLoaderConfigs, RopeTablesKnownAnswers) {
  double worst_ulp = 0;
  auto check = [&](const char* what, const pv::model::RopeTable& t,
                   const std::vector<double>& want) {
    ASSERT_EQ(t.inv_freq.size(), want.size()) << what;
    for (size_t i = 0; i < want.size(); ++i) {
      const double u = ulp_diff(t.inv_freq[i], want[i]);
      worst_ulp = std::max(worst_ulp, u);
      EXPECT_LE(u, 0.501) << what << " i=" << i << " got " << t.inv_freq[i] << " want " << want[i];
    }
  };
  // default, d = 128, theta 1e6: the CPU backend's own rope(theta) table, bit for bit.
  {
    pv::model::RopeScaling none;
    const auto t = pv::model::rope_table(128, 1e6f, none, 32768);
    check("default", t, base_f32(128, 1e6f));
    EXPECT_EQ(t.attention_factor, 1.0f);
    std::vector<float> c1, s1, c2, s2;
    pv::kernels::cpu::rope_tables(3, 128, 4000, 1e6f, &c1, &s1);
    pv::kernels::cpu::rope_tables(3, 128, 4000, t.inv_freq.data(), 1.0f, &c2, &s2);
    EXPECT_EQ(c1, c2);
    EXPECT_EQ(s1, s2);
  }
  // linear, factor 4: every frequency divided by 4.
  {
    pv::model::RopeScaling s;
    s.kind = RopeScalingKind::Linear;
    s.factor = 4.0;
    std::vector<double> want = base_f32(64, 1e4f);
    for (double& v : want) v /= 4.0;
    check("linear", pv::model::rope_table(64, 1e4f, s, 2048), want);
  }
  // llama3 as Llama-3.1-8B: theta 5e5, d 128, factor 8, low 1, high 4, 8192 positions.
  // Written as Meta's reference apply_scaling: by wavelength 2*pi/f against 8192/1 and
  // 8192/4; in between, smooth = (8192/wavelen - 1) / (4 - 1).
  {
    pv::model::RopeScaling s;
    s.kind = RopeScalingKind::Llama3;
    s.factor = 8.0;
    s.low_freq_factor = 1.0;
    s.high_freq_factor = 4.0;
    s.original_context = 8192;
    std::vector<double> want;
    int high = 0, low = 0, mid = 0;
    for (double f : base_f32(128, 5e5f)) {
      const double wl = 2 * std::numbers::pi / f;
      if (wl < 8192.0 / 4.0) {
        want.push_back(f);
        ++high;
      } else if (wl > 8192.0 / 1.0) {
        want.push_back(f / 8.0);
        ++low;
      } else {
        const double sm = (8192.0 / wl - 1.0) / 3.0;
        want.push_back((1 - sm) * f / 8.0 + sm * f);
        ++mid;
      }
    }
    EXPECT_GT(high, 0);
    EXPECT_GT(low, 0);
    EXPECT_GT(mid, 0);
    const auto t = pv::model::rope_table(128, 5e5f, s, 131072);
    check("llama3", t, want);
    EXPECT_EQ(t.attention_factor, 1.0f);
    // Published by Meta's reference: the highest frequency is unscaled (1.0) and the
    // lowest is the unscaled one divided by 8.
    EXPECT_EQ(t.inv_freq[0], 1.0f);
    EXPECT_EQ(t.inv_freq[63], float(base_f32(128, 5e5f)[63] / 8.0));
  }
  // yarn, factor 4 over 32768 positions, theta 1e6, d 128, beta 32 / 1, truncated range.
  // The correction range [low, high] in pair indices: where a frequency turns beta_fast
  // (beta_slow) times over the original context; pair i < low keeps its frequency, i >
  // high is divided by 4, a linear ramp in between. Attention factor 0.1 ln 4 + 1.
  {
    pv::model::RopeScaling s;
    s.kind = RopeScalingKind::Yarn;
    s.factor = 4.0;
    const int d = 128;
    auto dim_of = [&](double rot) {
      return d * std::log(32768.0 / (rot * 2 * std::numbers::pi)) / (2 * std::log(1e6));
    };
    const double lo = std::max(std::floor(dim_of(32.0)), 0.0);
    const double hi = std::min(std::ceil(dim_of(1.0)), double(d - 1));
    std::vector<double> want;
    const auto base = base_f32(d, 1e6f);
    for (int i = 0; i < d / 2; ++i) {
      const double ramp = std::min(1.0, std::max(0.0, (i - lo) / (hi - lo)));
      want.push_back(base[i] * (1 - ramp) + base[i] / 4.0 * ramp);
    }
    const auto t = pv::model::rope_table(d, 1e6f, s, 32768);
    check("yarn", t, want);
    EXPECT_EQ(t.attention_factor, float(0.1 * std::log(4.0) + 1.0));
    EXPECT_NEAR(t.attention_factor, 1.1386294, 1e-7);
    // With mscale and mscale_all_dim (DeepSeek's form) the factor is their ratio.
    s.mscale = 1.0;
    s.mscale_all_dim = 0.5;
    EXPECT_EQ(pv::model::rope_table(d, 1e6f, s, 32768).attention_factor,
              float((0.1 * std::log(4.0) + 1.0) / (0.05 * std::log(4.0) + 1.0)));
  }
  // GGUF rope_freqs: each base frequency divided by its factor.
  {
    pv::model::RopeScaling s;
    for (int i = 0; i < 8; ++i) s.freq_factors.push_back(1.0f + i);
    std::vector<double> want = base_f32(16, 1e4f);
    for (int i = 0; i < 8; ++i) want[i] /= 1.0 + i;
    check("rope_freqs", pv::model::rope_table(16, 1e4f, s, 2048), want);
  }
  pv::testing::record_metric("inv_freq_max_ulp", worst_ulp);
}

// ---- the rope base of a 5.x config reaches the forward ---------------------------------

std::string fixture_hf(const std::string& name) {
  return pv::testing::source_dir() + "/model/fixtures/" + name + "/hf";
}

// A model directory whose config.json is `config` and whose weights are the fixture's.
fs::path with_config(const std::string& fixture, const json& config, const std::string& tag) {
  const fs::path dir = pv::testing::make_temp_dir(tag);
  fs::create_symlink(fs::absolute(fixture_hf(fixture) + "/model.safetensors"),
                     dir / "model.safetensors");
  pv::testing::write_text(dir / "config.json", config.dump(2));
  return dir;
}

const std::vector<int32_t> kPrompt = {1, 17, 42, 99, 7, 3, 250, 11, 400, 64, 5, 300};

std::vector<float> logits_of(const fs::path& dir) {
  const auto m = pv::model::load_model(dir.string());
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

// transformers 5.x moves the rope base into rope_parameters. The same weights under a
// 4.x config (rope_theta 1e6) and its 5.x rewrite give bit-identical logits, and those
// differ from the logits under rope base 1e4 — the value pv ran with when it ignored
// rope_parameters. Likewise for llama3 scaling: the 4.x rope_scaling and the 5.x
// rope_parameters forms agree bit for bit, and differ from no scaling.
TEST(ModelLoaderConfigs, RopeParametersReachTheForward) {
  const std::string fx = "qwen2-gqa4";
  if (!fs::exists(fixture_hf(fx) + "/config.json")) PV_SKIP_FIXTURE_ABSENT("model:qwen2-gqa4");
  const json v4 = json::parse(std::ifstream(fixture_hf(fx) + "/config.json"));
  ASSERT_EQ(v4.at("rope_theta").get<double>(), 1e6);

  json v5 = v4;
  v5.erase("rope_theta");
  v5.erase("rope_scaling");
  v5["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 1e6}};
  v5["dtype"] = v5["torch_dtype"];
  v5.erase("torch_dtype");
  json v4_1e4 = v4;
  v4_1e4["rope_theta"] = 1e4;

  const auto l4 = logits_of(with_config(fx, v4, "cfg-v4"));
  const auto l5 = logits_of(with_config(fx, v5, "cfg-v5"));
  const auto l4_1e4 = logits_of(with_config(fx, v4_1e4, "cfg-1e4"));
  ASSERT_EQ(l4.size(), l5.size());
  EXPECT_EQ(std::memcmp(l4.data(), l5.data(), l4.size() * sizeof(float)), 0)
      << "5.x rope_parameters config gives other logits than its 4.x form, max |a-b| = "
      << max_abs_diff(l4, l5);
  const double base_gap = max_abs_diff(l4, l4_1e4);
  EXPECT_GT(base_gap, 1e-3) << "rope base 1e4 and 1e6 give the same logits";

  // llama3 scaling, short original context so it bends this small model's frequencies.
  json s4 = v4;
  s4["rope_scaling"] = {{"rope_type", "llama3"},
                        {"factor", 8.0},
                        {"low_freq_factor", 1.0},
                        {"high_freq_factor", 4.0},
                        {"original_max_position_embeddings", 64}};
  json s5 = v5;
  s5["rope_parameters"] = {{"rope_type", "llama3"},   {"rope_theta", 1e6},
                           {"factor", 8.0},           {"low_freq_factor", 1.0},
                           {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 64}};
  const auto ls4 = logits_of(with_config(fx, s4, "cfg-l3-v4"));
  const auto ls5 = logits_of(with_config(fx, s5, "cfg-l3-v5"));
  EXPECT_EQ(std::memcmp(ls4.data(), ls5.data(), ls4.size() * sizeof(float)), 0)
      << "llama3 scaling differs between dialects, max |a-b| = " << max_abs_diff(ls4, ls5);
  const double scaling_gap = max_abs_diff(l4, ls4);
  EXPECT_GT(scaling_gap, 1e-4) << "llama3 scaling did not change the logits";

  pv::testing::record_metric("dialect_max_abs", max_abs_diff(l4, l5));
  pv::testing::record_metric("theta_1e4_vs_1e6_max_abs", base_gap);
  pv::testing::record_metric("llama3_vs_none_max_abs", scaling_gap);
}

// ---- GGUF: rope scaling keys, rope_freqs.weight, unknown and refused keys --------------

// The llama-gqa8 fixture as an in-memory F32 GGUF, plus `extra` applied to the writer.
pv::model::LoadedModel llama_gguf(const std::function<void(pv::model::GgufWriter&)>& extra) {
  pv::model::FixtureSpec spec;
  for (const auto& s : pv::model::default_fixtures())
    if (s.name == "llama-gqa8") spec = s;
  pv::model::GgufWriter w = pv::model::fixture_gguf(spec, pv::kernels::GgmlType::F32, nullptr);
  extra(w);
  return pv::model::load_gguf_model(
      pv::model::MappedFile::from_bytes("llama-gguf.gguf", w.serialize()));
}

std::vector<float> gguf_logits(const pv::model::LoadedModel& m) {
  pv::kernels::CpuBackend be(1);
  pv::model::Forward f(m.config, m.weights, be, 64);
  std::vector<float> out(kPrompt.size() * m.config.vocab);
  f.eval(kPrompt.data(), static_cast<int>(kPrompt.size()), out.data());
  return out;
}

TEST(ModelLoaderConfigs, GgufRopeScalingAndKeyTable) {
  using pv::model::GgufValue;
  const auto base = llama_gguf([](pv::model::GgufWriter&) {});
  EXPECT_EQ(base.config.rope_scaling.kind, RopeScalingKind::None);
  EXPECT_TRUE(base.config.rope_scaling.freq_factors.empty());
  const int half = base.config.head_dim / 2;

  // linear x4 by metadata, and the same frequencies as a rope_freqs.weight tensor of 4s:
  // both must give bit-identical logits, different from the unscaled model.
  const auto linear = llama_gguf([](pv::model::GgufWriter& w) {
    w.add("llama.rope.scaling.type", GgufValue::make_string("linear"));
    w.add("llama.rope.scaling.factor", GgufValue::make_f32(4.0f));
  });
  EXPECT_EQ(linear.config.rope_scaling.kind, RopeScalingKind::Linear);
  EXPECT_EQ(linear.config.rope_scaling.factor, 4.0);
  const auto freqs = llama_gguf([&](pv::model::GgufWriter& w) {
    std::vector<float> f(half, 4.0f);
    std::vector<uint8_t> bytes(f.size() * sizeof(float));
    std::memcpy(bytes.data(), f.data(), bytes.size());
    w.add_tensor("rope_freqs.weight", {static_cast<uint64_t>(half)}, pv::kernels::GgmlType::F32,
                 bytes);
  });
  EXPECT_EQ(freqs.config.rope_scaling.freq_factors, std::vector<float>(half, 4.0f));
  const auto lb = gguf_logits(base), ll = gguf_logits(linear), lf = gguf_logits(freqs);
  EXPECT_EQ(std::memcmp(ll.data(), lf.data(), ll.size() * sizeof(float)), 0)
      << "rope_freqs of 4 and linear x4 differ, max |a-b| = " << max_abs_diff(ll, lf);
  const double gap = max_abs_diff(lb, ll);
  EXPECT_GT(gap, 1e-4) << "GGUF rope scaling did not change the logits";

  struct Case {
    const char* what;
    std::function<void(pv::model::GgufWriter&)> add;
    const char* key;
  };
  const std::vector<Case> cases = {
      {"yarn without a factor",
       [](auto& w) { w.add("llama.rope.scaling.type", GgufValue::make_string("yarn")); },
       "llama.rope.scaling.factor"},
      {"unknown key", [](auto& w) { w.add("llama.rope.magic", GgufValue::make_u32(1)); },
       "llama.rope.magic"},
      {"unknown top-level key", [](auto& w) { w.add("mystery.key", GgufValue::make_u32(1)); },
       "mystery.key"},
      {"experts", [](auto& w) { w.add("llama.expert_count", GgufValue::make_u32(8)); },
       "llama.expert_count"},
      {"sliding window",
       [](auto& w) { w.add("llama.attention.sliding_window", GgufValue::make_u32(4)); },
       "llama.attention.sliding_window"},
      {"vocab mismatch", [](auto& w) { w.add("llama.vocab_size", GgufValue::make_u32(7)); },
       "llama.vocab_size"},
      {"attn factor",
       [](auto& w) { w.add("llama.rope.scaling.attn_factor", GgufValue::make_f32(1.2f)); },
       "llama.rope.scaling.attn_factor"},
      {"factor < 1",
       [](auto& w) {
         w.add("llama.rope.scaling.type", GgufValue::make_string("linear"));
         w.add("llama.rope.scaling.factor", GgufValue::make_f32(0.5f));
       },
       "llama.rope.scaling.factor"},
  };
  int refused = 0;
  for (const Case& c : cases) {
    try {
      llama_gguf(c.add);
      ADD_FAILURE() << c.what << ": loaded";
    } catch (const pv::model::FormatError& e) {
      EXPECT_EQ(e.path(), "llama-gguf.gguf") << c.what;
      EXPECT_EQ(e.subject(), std::string("key '") + c.key + "'") << c.what << ": " << e.detail();
      EXPECT_NE(e.offset(), pv::model::FormatError::kNoOffset) << c.what;
      ++refused;
    }
  }
  // A rope_freqs tensor of the wrong length is refused naming the tensor.
  try {
    llama_gguf([&](pv::model::GgufWriter& w) {
      std::vector<uint8_t> bytes(4 * (half + 1), 0);
      w.add_tensor("rope_freqs.weight", {static_cast<uint64_t>(half + 1)},
                   pv::kernels::GgmlType::F32, bytes);
    });
    ADD_FAILURE() << "rope_freqs of the wrong length loaded";
  } catch (const pv::model::FormatError& e) {
    EXPECT_EQ(e.subject(), "tensor 'rope_freqs.weight'") << e.detail();
    ++refused;
  }
  pv::testing::record_metric("gguf_refusals", refused);
  pv::testing::record_metric("gguf_linear_vs_none_max_abs", gap);
  pv::testing::record_metric("gguf_linear_vs_rope_freqs_max_abs", max_abs_diff(ll, lf));
}

}  // namespace

// Every eos id a config lists ends generation, not only the first: Llama 3 instruct ends a
// turn with <|eot_id|>, the second of its eos_token_id list. The greedy ids of the unstopped
// run pick the stop ids, so whichever listed id comes first must end the run right there.
TEST(ModelLoaderConfigs, GenerationStopsAtAnyListedEos) {
  const auto m = llama_gguf([](pv::model::GgufWriter&) {});
  pv::kernels::CpuBackend be(1);
  pv::model::Forward f(m.config, m.weights, be, 64);
  pv::model::GenerateOptions free_run;
  free_run.max_new = 8;
  const auto all = pv::model::generate_greedy(f, kPrompt, free_run).tokens;
  ASSERT_EQ(all.size(), 8u);
  // The first position whose id does not occur earlier: the stop must land exactly there.
  size_t k = 1;
  while (k < all.size() && std::find(all.begin(), all.begin() + k, all[k]) != all.begin() + k) ++k;
  ASSERT_LT(k, all.size()) << "greedy ids repeat from the start; no distinct stop id";
  pv::model::GenerateOptions stop = free_run;
  // The stop id second in the list, after an id the run never emits before it.
  int32_t unseen = 0;
  while (std::find(all.begin(), all.begin() + k + 1, unseen) != all.begin() + k + 1) ++unseen;
  stop.eos = {unseen, all[k]};
  const auto r = pv::model::generate_greedy(f, kPrompt, stop);
  EXPECT_TRUE(r.stopped_at_eos);
  ASSERT_EQ(r.tokens.size(), k + 1) << "generation did not stop at the listed eos id " << all[k];
  EXPECT_TRUE(std::equal(r.tokens.begin(), r.tokens.end(), all.begin()));

  // A GGUF's eot and eom ids (Llama 3 instruct: <|eot_id|>, <|eom_id|>) are stop ids too,
  // as llama.cpp ends generation at any of them; one outside the vocabulary is refused
  // naming its key.
  using pv::model::GgufValue;
  const auto eog = llama_gguf([](pv::model::GgufWriter& w) {
    w.add("tokenizer.ggml.eot_token_id", GgufValue::make_u32(7));
    w.add("tokenizer.ggml.eom_token_id", GgufValue::make_u32(9));
  });
  EXPECT_EQ(eog.config.eos_tokens, (std::vector<int>{7, 9}));
  try {
    llama_gguf([&](pv::model::GgufWriter& w) {
      w.add("tokenizer.ggml.eot_token_id",
            GgufValue::make_u32(static_cast<uint32_t>(eog.config.vocab)));
    });
    ADD_FAILURE() << "an eot id outside the vocabulary was accepted";
  } catch (const pv::model::FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer.ggml.eot_token_id"), std::string::npos)
        << e.what();
  }
}
