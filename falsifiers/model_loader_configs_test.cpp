// Falsifiers of contracts/model-loader-v1.yaml, config part: pv reads config.json as
// transformers 4.x and 5.x write it (the published configs under model/loading/testdata/)
// and refuses by name what it cannot compute. What the values do once loaded (the RoPE
// tables, the rope base and scaling reaching the forward, GGUF rope keys, eos ids) is in
// model_loader_configs_forward_test.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "falsifiers/support/scratch_files.h"
#include "harness/testing/pv_test.h"
#include "model/formats/mapped_file.h"
#include "model/loading/config_keys.h"
#include "model/loading/loader.h"
#include "model/rope.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using pv::model::ModelConfig;
using pv::model::RopeScalingKind;

std::string testdata(const std::string& name) {
  return pv::testing::source_dir() + "/model/loading/testdata/" + name;
}

json read_json_file(const std::string& path) {
  std::ifstream f(path);
  return json::parse(f);
}

// What a published config must parse to (the model card's values).
struct Published {
  const char* stem;  // testdata/<stem>.v4.json and .v5.json
  const char* arch;
  int layers, hidden, ffn, heads, kv_heads, head_dim, vocab, context;
  float rms_eps, theta;
  RopeScalingKind scaling;
  double factor;
  bool tied;
  int bos;
  std::vector<int> eos;
};

const std::vector<Published> kLoadable = {
    {"qwen2.5-0.5b",
     "qwen2",
     24,
     896,
     4864,
     14,
     2,
     64,
     151936,
     32768,
     1e-6f,
     1e6f,
     RopeScalingKind::None,
     1.0,
     true,
     151643,
     {151643}},
    {"qwen2.5-7b",
     "qwen2",
     28,
     3584,
     18944,
     28,
     4,
     128,
     152064,
     131072,
     1e-6f,
     1e6f,
     RopeScalingKind::None,
     1.0,
     false,
     151643,
     {151643}},
    // Qwen3: head_dim 128 while hidden / heads is 64 (0.6B) and 128 (8B).
    {"qwen3-0.6b",
     "qwen3",
     28,
     1024,
     3072,
     16,
     8,
     128,
     151936,
     40960,
     1e-6f,
     1e6f,
     RopeScalingKind::None,
     1.0,
     true,
     151643,
     {151645}},
    {"qwen3-8b",
     "qwen3",
     36,
     4096,
     12288,
     32,
     8,
     128,
     151936,
     40960,
     1e-6f,
     1e6f,
     RopeScalingKind::None,
     1.0,
     false,
     151643,
     {151645}},
    {"llama-3.1-8b-instruct",
     "llama",
     32,
     4096,
     14336,
     32,
     8,
     128,
     128256,
     131072,
     1e-5f,
     5e5f,
     RopeScalingKind::Llama3,
     8.0,
     false,
     128000,
     {128001, 128008, 128009}},
    {"llama-3.2-1b",
     "llama",
     16,
     2048,
     8192,
     32,
     8,
     64,
     128256,
     131072,
     1e-5f,
     5e5f,
     RopeScalingKind::Llama3,
     32.0,
     true,
     128000,
     {128001}},
    // Mistral v0.3: no sliding window, so llama's math.
    {"mistral-7b-v0.3",
     "llama",
     32,
     4096,
     14336,
     32,
     8,
     128,
     32768,
     32768,
     1e-5f,
     1e6f,
     RopeScalingKind::None,
     1.0,
     false,
     1,
     {2}},
};

void expect_published(const ModelConfig& c, const Published& p, const std::string& file) {
  SCOPED_TRACE(file);
  EXPECT_EQ(c.architecture, p.arch);
  EXPECT_EQ(c.n_layers, p.layers);
  EXPECT_EQ(c.hidden, p.hidden);
  EXPECT_EQ(c.ffn, p.ffn);
  EXPECT_EQ(c.n_heads, p.heads);
  EXPECT_EQ(c.n_kv_heads, p.kv_heads);
  EXPECT_EQ(c.head_dim, p.head_dim);
  EXPECT_EQ(c.vocab, p.vocab);
  EXPECT_EQ(c.context_length, p.context);
  EXPECT_EQ(c.rms_eps, p.rms_eps);
  EXPECT_EQ(c.rope_theta, p.theta);
  EXPECT_EQ(c.rope_scaling.kind, p.scaling);
  EXPECT_EQ(c.rope_scaling.factor, p.factor);
  if (p.scaling == RopeScalingKind::Llama3) {
    EXPECT_EQ(c.rope_scaling.low_freq_factor, 1.0);
    EXPECT_EQ(c.rope_scaling.high_freq_factor, 4.0);
    EXPECT_EQ(c.rope_scaling.original_context, 8192);
  }
  EXPECT_EQ(c.tied_embeddings, p.tied);
  EXPECT_EQ(c.qkv_bias, std::string(p.arch) == "qwen2");
  EXPECT_EQ(c.bos_token, p.bos);
  EXPECT_EQ(c.eos_tokens, p.eos);
  EXPECT_EQ(c.eos_token, p.eos.front());
  EXPECT_EQ(c.rope_style, pv::kernels::RopeStyle::HalfSplit);
}

// The error a config gives, or "" when it parses.
struct Refusal {
  std::string path, subject, detail;
};
bool parse_or_refuse(const std::string& path, ModelConfig* c, Refusal* r) {
  try {
    *c = pv::model::parse_hf_config_file(path);
    return true;
  } catch (const pv::model::FormatError& e) {
    *r = {e.path(), e.subject(), e.detail()};
    return false;
  }
}

// ---- published configs, both dialects ---------------------------------------------------

TEST(ModelLoaderConfigs, PublishedConfigsBothDialects) {
  int parsed = 0, refused = 0;
  for (const Published& p : kLoadable) {
    ModelConfig v4, v5;
    Refusal r;
    for (auto [dialect, c] : {std::pair{".v4.json", &v4}, std::pair{".v5.json", &v5}}) {
      const std::string file = testdata(std::string(p.stem) + dialect);
      ASSERT_TRUE(parse_or_refuse(file, c, &r)) << file << ": " << r.subject << ": " << r.detail;
      expect_published(*c, p, file);
      ++parsed;
    }
    // The two dialects describe one model: every field the forward reads is equal.
    EXPECT_EQ(v4.rope_theta, v5.rope_theta) << p.stem;
    EXPECT_EQ(v4.rope_scaling.kind, v5.rope_scaling.kind) << p.stem;
    EXPECT_EQ(pv::model::rope_table(v4).inv_freq, pv::model::rope_table(v5).inv_freq) << p.stem;
    EXPECT_EQ(v4.eos_tokens, v5.eos_tokens) << p.stem;
  }
  // Published configs pv must refuse, each naming the key it cannot compute.
  struct Refused {
    const char* file;
    const char* key;
  };
  const Refused kRefused[] = {
      // A 4096-token window on every layer of a 32768-position model.
      {"mistral-7b-v0.1.v4.json", "key 'sliding_window'"},
      {"mistral-7b-v0.1.v5.json", "key 'sliding_window'"},
      // Qwen's model-card YaRN block: factor 4 but max_position_embeddings /
      // original_max_position_embeddings = 1, which later transformers use instead.
      {"qwen2.5-7b-instruct-yarn.v4.json", "key 'rope_scaling.original_max_position_embeddings'"},
  };
  for (const Refused& x : kRefused) {
    ModelConfig c;
    Refusal r;
    const std::string file = testdata(x.file);
    EXPECT_FALSE(parse_or_refuse(file, &c, &r)) << file << " parsed";
    EXPECT_EQ(r.path, file);
    EXPECT_EQ(r.subject, x.key) << r.detail;
    EXPECT_NE(r.detail.find(":"), std::string::npos) << "no line:col in " << r.detail;
    ++refused;
  }
  pv::testing::record_metric("configs_parsed", parsed);
  pv::testing::record_metric("configs_refused", refused);
}

// A published qwen3 config is accepted for loading: the loader goes past the config and
// the architecture table to the weights (here absent, and named), and the qwen3 fixture
// loads with its per-head q/k norms.
TEST(ModelLoaderConfigs, Qwen3LoadReachesTheWeights) {
  const fs::path dir = pv::testing::make_temp_dir("qwen3-cfg");
  fs::copy_file(testdata("qwen3-0.6b.v5.json"), dir / "config.json");
  try {
    pv::model::load_model(dir.string());
    FAIL() << "a config without weights loaded";
  } catch (const pv::model::FormatError& e) {
    EXPECT_EQ(e.detail().find("architecture"), std::string::npos) << e.detail();
    EXPECT_NE(e.detail().find("model.safetensors"), std::string::npos) << e.detail();
  }
  const std::string fixture = pv::testing::source_dir() + "/model/fixtures/qwen3-gqa/hf";
  if (!fs::exists(fixture + "/config.json")) PV_SKIP_FIXTURE_ABSENT("model:qwen3-gqa");
  const auto m = pv::model::load_model(fixture);
  EXPECT_EQ(m.config.architecture, "qwen3");
  EXPECT_TRUE(m.config.qk_norm);
  EXPECT_EQ(m.weights.layers.at(0).q_norm.numel(), m.config.head_dim);
}

// ---- refusals: one mutation of a published config each ---------------------------------

TEST(ModelLoaderConfigs, RefusesWhatItCannotComputeNamingTheKey) {
  const json base4 = read_json_file(testdata("llama-3.2-1b.v4.json"));
  const json base5 = read_json_file(testdata("qwen2.5-0.5b.v5.json"));
  struct Case {
    const char* what;
    bool v5;
    std::function<void(json&)> mutate;
    const char* key;
  };
  const std::vector<Case> cases = {
      {"unknown key", false, [](json& j) { j["rope_magic"] = 1; }, "rope_magic"},
      {"dynamic rope", false,
       [](json& j) {
         j["rope_scaling"] = {{"type", "dynamic"}, {"factor", 2.0}};
       },
       "rope_scaling.type"},
      {"longrope", true, [](json& j) { j["rope_parameters"]["rope_type"] = "longrope"; },
       "rope_parameters.rope_type"},
      {"unknown rope key", true, [](json& j) { j["rope_parameters"]["alpha"] = 2.0; },
       "rope_parameters.alpha"},
      {"per-layer-type rope", true,
       [](json& j) {
         j["rope_parameters"] = {
             {"full_attention", {{"rope_type", "default"}, {"rope_theta", 1e6}}}};
       },
       "rope_parameters.full_attention"},
      {"llama3 without low_freq_factor", false,
       [](json& j) { j["rope_scaling"].erase("low_freq_factor"); }, "rope_scaling.low_freq_factor"},
      {"factor < 1", false, [](json& j) { j["rope_scaling"]["factor"] = 0.5; },
       "rope_scaling.factor"},
      {"both dialects", false,
       [](json& j) {
         j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 5e5}};
       },
       "rope_scaling"},
      {"contradicting rope_theta", true, [](json& j) { j["rope_theta"] = 1e4; },
       "rope_parameters.rope_theta"},
      {"no rope base", true, [](json& j) { j["rope_parameters"].erase("rope_theta"); },
       "rope_theta"},
      {"rope base 1", false, [](json& j) { j["rope_theta"] = 1.0; }, "rope_theta"},
      {"rope base 1 (5.x)", true, [](json& j) { j["rope_parameters"]["rope_theta"] = 0.5; },
       "rope_parameters.rope_theta"},
      {"rms eps 0", false, [](json& j) { j["rms_norm_eps"] = 0.0; }, "rms_norm_eps"},
      {"rms eps 1", false, [](json& j) { j["rms_norm_eps"] = 1.0; }, "rms_norm_eps"},
      {"rms eps missing", false, [](json& j) { j.erase("rms_norm_eps"); }, "rms_norm_eps"},
      {"odd head_dim", false, [](json& j) { j["head_dim"] = 63; }, "head_dim"},
      {"huge head_dim", false, [](json& j) { j["head_dim"] = 4096; }, "head_dim"},
      {"kv heads", false, [](json& j) { j["num_key_value_heads"] = 5; }, "num_key_value_heads"},
      {"zero layers", false, [](json& j) { j["num_hidden_layers"] = 0; }, "num_hidden_layers"},
      {"absurd vocab", false, [](json& j) { j["vocab_size"] = int64_t{1} << 40; }, "vocab_size"},
      {"eos outside vocab", false,
       [](json& j) {
         j["eos_token_id"] = {128001, 128256};
       },
       "eos_token_id"},
      {"bos negative", false, [](json& j) { j["bos_token_id"] = -1; }, "bos_token_id"},
      {"mlp bias", false, [](json& j) { j["mlp_bias"] = true; }, "mlp_bias"},
      {"attention bias", false, [](json& j) { j["attention_bias"] = true; }, "attention_bias"},
      {"gelu", false, [](json& j) { j["hidden_act"] = "gelu"; }, "hidden_act"},
      {"partial rotary", false, [](json& j) { j["partial_rotary_factor"] = 0.5; },
       "partial_rotary_factor"},
      {"quantized", false,
       [](json& j) {
         j["quantization_config"] = {{"quant_method", "gptq"}};
       },
       "quantization_config"},
      {"mrope", true, [](json& j) { j["use_mrope"] = true; }, "use_mrope"},
      {"qwen sliding window on", true,
       [](json& j) {
         j["use_sliding_window"] = true;
         j["sliding_window"] = 4096;
         j["layer_types"][23] = "sliding_attention";
       },
       "sliding_window"},
      {"unknown layer type", true, [](json& j) { j["layer_types"][0] = "chunked_attention"; },
       "layer_types"},
      {"unsupported family", false, [](json& j) { j["model_type"] = "gemma2"; }, "model_type"},
  };
  const fs::path dir = pv::testing::make_temp_dir("cfg-refuse");
  int refused = 0;
  for (const Case& c : cases) {
    json j = c.v5 ? base5 : base4;
    c.mutate(j);
    const fs::path file = dir / (std::to_string(refused) + ".json");
    pv::testing::write_text(file, j.dump(2));
    ModelConfig cfg;
    Refusal r;
    EXPECT_FALSE(parse_or_refuse(file.string(), &cfg, &r)) << c.what << ": parsed";
    EXPECT_EQ(r.path, file.string()) << c.what;
    EXPECT_EQ(r.subject, std::string("key '") + c.key + "'") << c.what << ": " << r.detail;
    ++refused;
  }
  // Mutations that must still parse: explicit no-ops a config may carry.
  {
    json j = base5;
    j["sliding_window"] = 4096;  // present but use_sliding_window false: no window
    j["use_sliding_window"] = false;
    pv::testing::write_text(dir / "ok-window.json", j.dump(2));
    ModelConfig cfg;
    Refusal r;
    EXPECT_TRUE(parse_or_refuse((dir / "ok-window.json").string(), &cfg, &r)) << r.detail;
  }
  pv::testing::record_metric("refusals", refused);
}

// The CLI exits 2 and names the file and key for a config it refuses.
TEST(ModelLoaderConfigs, InspectRefusedConfigExits2NamingTheKey) {
  const std::string pv = std::string(PV_BINARY_DIR) + "/bin/pv";
  if (!fs::exists(pv)) PV_SKIP_FIXTURE_ABSENT("pv-binary");
  const fs::path dir = pv::testing::make_temp_dir("cfg-cli");
  json j = read_json_file(testdata("llama-3.2-1b.v5.json"));
  j["rope_parameters"]["rope_type"] = "dynamic";
  pv::testing::write_text(dir / "config.json", j.dump(2));
  const std::string cmd = pv + " inspect " + dir.string() + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int status = pclose(p);
  ASSERT_TRUE(WIFEXITED(status)) << out;
  EXPECT_EQ(WEXITSTATUS(status), 2) << out;
  EXPECT_NE(out.find((dir / "config.json").string()), std::string::npos) << out;
  EXPECT_NE(out.find("rope_parameters.rope_type"), std::string::npos) << out;
  EXPECT_NE(out.find("dynamic"), std::string::npos) << out;
}

// Every key of every published config is in the table (so nothing there is refused as
// unknown by accident), and model/loading/CONFIG_KEYS.md lists every entry with its rule.
TEST(ModelLoaderConfigs, KeyTableCoversPublishedConfigsAndDoc) {
  for (const auto& e : fs::directory_iterator(testdata(""))) {
    const json j = read_json_file(e.path().string());
    for (auto it = j.begin(); it != j.end(); ++it) {
      EXPECT_NE(pv::model::find_config_key(pv::model::hf_config_keys(), it.key()), nullptr)
          << e.path() << ": " << it.key();
    }
  }
  std::ifstream f(pv::testing::source_dir() + "/model/loading/CONFIG_KEYS.md");
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string doc = ss.str();
  int listed = 0;
  for (auto table :
       {pv::model::hf_config_keys(), pv::model::hf_rope_keys(), pv::model::gguf_metadata_keys()}) {
    for (const auto& k : table) {
      const std::string row =
          "| `" + std::string(k.key) + "` | " + pv::model::key_rule_name(k.rule) + " |";
      EXPECT_NE(doc.find(row), std::string::npos) << "CONFIG_KEYS.md lacks the row " << row;
      ++listed;
    }
  }
  pv::testing::record_metric("table_keys", listed);
}

}  // namespace
