// contracts/trace-save-tensor-v1.yaml: the APRT byte format, the stage names and their
// order, the trace.json schema, clear errors for bad files, and capture is additive
// (traced and untraced runs give bit-identical logits and tokens).
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <random>

#include "falsifiers/support/trace_helpers.h"
#include "harness/testing/pv_test.h"
#include "kernels/cpu/cpu_backend.h"
#include "model/forward.h"
#include "model/generate.h"
#include "model/loading/loader.h"
#include "model/trace/aprt.h"
#include "model/trace/trace_compare.h"
#include "model/trace/trace_dir.h"

namespace {

namespace fs = std::filesystem;
using pv::model::Stage;

uint32_t u32_at(const std::vector<uint8_t>& b, size_t off) {
  return uint32_t(b[off]) | uint32_t(b[off + 1]) << 8 | uint32_t(b[off + 2]) << 16 |
         uint32_t(b[off + 3]) << 24;
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// Byte layout (magic, u32 LE layer, u32 LE count, f32 LE data, size 12 + 4n) and the
// round trip through the file writer/reader, over random layers and contents.
TEST(TraceSaveTensor, Falsify001_AprtByteFormatProperty) {
  pv::testing::seed();
  const bool ok = rc::check("APRT bytes", [](uint32_t layer, const std::vector<float>& data) {
    const auto bytes = pv::model::aprt_encode(layer, data.data(), data.size());
    RC_ASSERT(bytes.size() == 12 + 4 * data.size());
    RC_ASSERT(std::memcmp(bytes.data(), "APRT", 4) == 0);
    RC_ASSERT(u32_at(bytes, 4) == layer);
    RC_ASSERT(u32_at(bytes, 8) == data.size());
    for (size_t i = 0; i < data.size(); ++i) {
      uint32_t bits;
      std::memcpy(&bits, &data[i], 4);
      RC_ASSERT(u32_at(bytes, 12 + 4 * i) == bits);
    }
    const auto back = pv::model::aprt_decode(bytes.data(), bytes.size(), "mem");
    RC_ASSERT(back.layer == layer);
    RC_ASSERT(back.data.size() == data.size());
    // An empty vector's data() may be null, which memcmp must not see even for 0 bytes;
    // computed outside RC_ASSERT, whose expression capture would not short-circuit `||`.
    const bool same_bytes =
        data.empty() || std::memcmp(back.data.data(), data.data(), 4 * data.size()) == 0;
    RC_ASSERT(same_bytes);
  });
  EXPECT_TRUE(ok);
}

// Every file pv trace writes for a fixture is a valid APRT whose layer field matches its
// folder (0xFFFFFFFF for whole-model stages) and whose count matches trace.json's shape.
TEST(TraceSaveTensor, Falsify001_AprtFilesOfFixtureTrace) {
  const std::string model = pv::testing::source_dir() + "/model/fixtures/qwen2-gqa4/hf";
  if (!fs::exists(model + "/config.json")) PV_SKIP_FIXTURE_ABSENT("model:qwen2-gqa4");
  pv::testing::TempDir tmp("aprt-files");
  std::string out;
  ASSERT_EQ(pv::testing::run_pv({"trace", "--model", model, "--tokens", "5,9,100,3", "--max-new",
                                 "2", "--out", tmp.path()},
                                &out),
            0)
      << out;
  const auto meta = pv::model::read_trace_meta(tmp.path());
  ASSERT_EQ(meta.entries.size(), 3u + 17u * 2u);
  for (const auto& e : meta.entries) {
    const auto bytes = read_bytes(tmp.path() + "/" + e.file);
    int64_t n = 1;
    for (auto d : e.shape) n *= d;
    ASSERT_EQ(bytes.size(), size_t(12 + 4 * n)) << e.file;
    EXPECT_EQ(std::memcmp(bytes.data(), "APRT", 4), 0) << e.file;
    EXPECT_EQ(u32_at(bytes, 4), e.layer < 0 ? 0xFFFFFFFFu : uint32_t(e.layer)) << e.file;
    EXPECT_EQ(u32_at(bytes, 8), uint32_t(n)) << e.file;
  }
  pv::testing::record_metric("stage_files", double(meta.entries.size()));
}

// Bad files: each is refused with the path and the byte offset of the problem.
TEST(TraceSaveTensor, Falsify002_BadAprtNamesPathAndOffset) {
  pv::testing::TempDir tmp("aprt-bad");
  const std::vector<float> v = {1, 2, 3};
  auto good = pv::model::aprt_encode(2, v.data(), v.size());
  struct Case {
    std::string name;
    std::vector<uint8_t> bytes;
    uint64_t offset;
    std::string says;
  };
  auto magic = good;
  magic[1] = 'X';
  auto longer = good;
  longer.push_back(0);
  auto count = good;
  count[8] = 200;  // claims 200 elements in a 24-byte file
  const std::vector<Case> cases = {
      {"magic.bin", magic, 0, "bad magic"},
      {"short.bin", {'A', 'P', 'R'}, 3, "truncated APRT header"},
      {"count.bin", count, 8, "element count 200"},
      {"trailing.bin", longer, 8, "file has 25 bytes"},
  };
  for (const auto& c : cases) {
    const std::string path = tmp.sub(c.name);
    write_bytes(path, c.bytes);
    try {
      pv::model::read_aprt(path);
      ADD_FAILURE() << c.name << " was accepted";
    } catch (const pv::model::AprtError& e) {
      EXPECT_EQ(e.offset(), c.offset) << c.name;
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(c.says), std::string::npos) << e.what();
    }
  }
  // Through the CLI: exit 2 and the same message.
  write_bytes(tmp.sub("ok.bin"), good);
  std::string out;
  EXPECT_EQ(pv::testing::run_pv({"diff", tmp.sub("ok.bin"), tmp.sub("count.bin")}, &out), 2);
}

// Stage names, in DESIGN.md's computation order, and trace.json's schema.
TEST(TraceSaveTensor, Falsify003_StageNamesOrderAndSchema) {
  const char* expected[] = {"embedding",   "attn_norm",          "qkv_matmul", "qkv_bias",
                            "q_norm",      "k_norm",             "q_post_rope", "k_post_rope",
                            "attn_scores", "attn_softmax",       "attention",  "attn_out",
                            "post_attn_residual", "ffn_norm",    "ffn_gate",   "ffn_up",
                            "ffn_silu",    "ffn_swigl",          "ffn_out",    "post_ffn_residual",
                            "final_norm",  "lm_head"};
  static_assert(std::size(expected) == pv::model::kStageCount);
  for (int i = 0; i < pv::model::kStageCount; ++i) {
    EXPECT_EQ(pv::model::stage_name(static_cast<Stage>(i)), expected[i]);
    EXPECT_EQ(pv::model::stage_from_name(expected[i]), static_cast<Stage>(i));
  }
  EXPECT_EQ(pv::model::stage_from_name("layer_output"), Stage::post_ffn_residual);
  // A synthetic trace: entries in computation order, per-token shapes as DESIGN.md says.
  const uint64_t seed = pv::testing::seed();
  auto m = pv::testing::trace_model(seed, pv::kernels::GgmlType::F32);
  pv::testing::TempDir tmp("schema");
  pv::kernels::CpuBackend cpu(1);
  const std::vector<int32_t> tokens = {1, 2, 3, 4, 5};
  pv::testing::trace_all(m->config, m->weights, cpu, tokens, tmp.path());
  const auto meta = pv::model::read_trace_meta(tmp.path());
  const auto& c = m->config;
  std::vector<std::pair<int, Stage>> want;
  want.push_back({-1, Stage::embedding});
  for (int l = 0; l < c.n_layers; ++l) {
    for (int s = 1; s <= static_cast<int>(Stage::post_ffn_residual); ++s) {
      // q_norm / k_norm exist only in families that compute them (not this qwen2).
      if (!pv::model::family_has_stage(static_cast<Stage>(s), c.qk_norm)) continue;
      want.push_back({l, static_cast<Stage>(s)});
    }
  }
  want.push_back({-1, Stage::final_norm});
  want.push_back({-1, Stage::lm_head});
  ASSERT_EQ(meta.entries.size(), want.size());
  const int64_t T = 5, q = c.n_heads * c.head_dim, kv = c.n_kv_heads * c.head_dim;
  for (size_t i = 0; i < want.size(); ++i) {
    const auto& e = meta.entries[i];
    EXPECT_EQ(e.layer, want[i].first);
    EXPECT_EQ(e.stage, want[i].second);
    std::vector<int64_t> shape;
    switch (e.stage) {
      case Stage::qkv_matmul:
      case Stage::qkv_bias:
        shape = {T, q + 2 * kv};
        break;
      case Stage::q_post_rope:
      case Stage::attention:
        shape = {T, q};
        break;
      case Stage::k_post_rope:
        shape = {T, kv};
        break;
      case Stage::attn_scores:
      case Stage::attn_softmax:
        shape = {c.n_heads, T, T};
        break;
      case Stage::ffn_gate:
      case Stage::ffn_up:
      case Stage::ffn_silu:
      case Stage::ffn_swigl:
        shape = {T, c.ffn};
        break;
      case Stage::lm_head:
        shape = {T, c.vocab};
        break;
      default:
        shape = {T, c.hidden};
    }
    EXPECT_EQ(e.shape, shape) << pv::model::entry_label(e.stage, e.layer);
  }
  EXPECT_EQ(meta.tokens, tokens);
  // The q/k row order and head geometry come from the config (half-split RoPE: HF order).
  EXPECT_EQ(meta.qk_rows, pv::model::kQkRowsHf);
  EXPECT_FALSE(meta.qk_rows_inferred);
  EXPECT_EQ(meta.n_heads, c.n_heads);
  EXPECT_EQ(meta.n_kv_heads, c.n_kv_heads);
  EXPECT_EQ(meta.head_dim, c.head_dim);
  // Schema violations are named with the file and the key.
  nlohmann::json j = nlohmann::json::parse(std::ifstream(tmp.path() + "/trace.json"));
  auto broken = [&](nlohmann::json bad, const std::string& says) {
    std::ofstream(tmp.path() + "/trace.json") << bad.dump();
    try {
      pv::model::read_trace_meta(tmp.path());
      ADD_FAILURE() << "accepted a trace.json that should say: " << says;
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("trace.json"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
    }
  };
  auto b1 = j;
  b1["schema"] = "pv-trace-v0";
  broken(b1, "schema");
  auto b2 = j;
  b2["stages"][3]["stage"] = "attn_nrom";
  broken(b2, "unknown stage \"attn_nrom\"");
  auto b3 = j;
  b3["stages"][1]["layer"] = 7;
  broken(b3, "needs a layer in [0, 2)");
  auto b4 = j;
  b4.erase("tokens");
  broken(b4, "missing key \"tokens\"");
  auto b5 = j;
  b5["stages"][2]["file"] = "layer-0/x.bin";
  broken(b5, "should be");
  auto b6 = j;
  b6["qk_rows"] = "interleaved";
  broken(b6, "\"qk_rows\" is \"interleaved\"");
  auto b7 = j;
  b7["qk_rows"] = pv::model::kQkRowsGgufLlama;
  b7.erase("head_dim");
  broken(b7, "needs \"n_heads\", \"n_kv_heads\" and \"head_dim\"");
  // Without the key the order is unknown unless tools/hf_oracle.py wrote the trace.
  auto old = j;
  old.erase("qk_rows");
  std::ofstream(tmp.path() + "/trace.json") << old.dump();
  EXPECT_EQ(pv::model::read_trace_meta(tmp.path()).qk_rows, "");
  old["backend"] = "hf-transformers";
  std::ofstream(tmp.path() + "/trace.json") << old.dump();
  const auto hf = pv::model::read_trace_meta(tmp.path());
  EXPECT_EQ(hf.qk_rows, pv::model::kQkRowsHf);
  EXPECT_TRUE(hf.qk_rows_inferred);
}

// Capture is additive: every stage traced or nothing traced, the logits and the greedy
// tokens are bit-identical.
void expect_additive(const pv::model::ModelConfig& c, const pv::model::ModelWeights& w,
                     const std::vector<int32_t>& tokens, const std::string& what) {
  pv::kernels::CpuBackend cpu(2);
  pv::model::Forward f(c, w, cpu, 64);
  std::vector<float> plain(tokens.size() * size_t(c.vocab));
  f.eval(tokens.data(), int(tokens.size()), plain.data());
  pv::model::GenerateOptions g;
  g.max_new = 6;
  const auto gen_plain = pv::model::generate_greedy(f, tokens, g).tokens;
  pv::testing::TempDir tmp("additive");
  const auto traced = pv::testing::trace_all(c, w, cpu, tokens, tmp.path(), 6);
  ASSERT_EQ(traced.logits.size(), plain.size());
  EXPECT_EQ(std::memcmp(traced.logits.data(), plain.data(), 4 * plain.size()), 0)
      << what << ": traced logits differ from untraced";
  EXPECT_EQ(traced.meta.greedy_tokens, gen_plain) << what;
  // A partial plan too (one stage of one layer): still identical.
  pv::model::Forward f2(c, w, cpu, 64);
  pv::testing::TempDir tmp2("additive-partial");
  pv::model::TraceMeta meta;
  const auto r = pv::model::run_trace(
      f2, tokens, pv::model::parse_plan("attn_softmax", "1", c.n_layers), tmp2.path(), meta, 0);
  EXPECT_EQ(r.meta.entries.size(), 1u);
  EXPECT_EQ(std::memcmp(r.logits.data(), plain.data(), 4 * plain.size()), 0) << what;
}

TEST(TraceSaveTensor, Falsify004_CaptureIsAdditiveSynthetic) {
  const uint64_t seed = pv::testing::seed();
  for (auto type : {pv::kernels::GgmlType::F32, pv::kernels::GgmlType::Q4_K}) {
    auto m = pv::testing::trace_model(seed, type);
    std::mt19937_64 rng(seed);
    std::vector<int32_t> tokens(9);
    for (auto& t : tokens) t = int32_t(rng() % uint64_t(m->config.vocab));
    expect_additive(m->config, m->weights, tokens, std::string(pv::kernels::type_name(type)));
  }
}

TEST(TraceSaveTensor, Falsify004_CaptureIsAdditiveFixtures) {
  const std::string root = pv::testing::source_dir() + "/model/fixtures/";
  const std::vector<std::pair<std::string, std::string>> files = {
      {"model:qwen2-gqa4-q4_k", root + "qwen2-gqa4/qwen2-gqa4-q4_k.gguf"},
      {"model:qwen2-gqa7-tied", root + "qwen2-gqa7-tied/hf"},
      {"model:llama-gqa8", root + "llama-gqa8/llama-gqa8-f32.gguf"}};
  for (const auto& [fixture, path] : files) {
    if (!fs::exists(path)) PV_SKIP_FIXTURE_ABSENT(fixture);
  }
  for (const auto& [fixture, path] : files) {
    auto lm = pv::model::load_model(path);
    expect_additive(lm.config, lm.weights, {17, 101, 3, 250, 42, 499, 7}, fixture);
  }
}

// pv diff refuses traces of different shapes or layer counts, naming both files.
TEST(TraceSaveTensor, Falsify005_DiffRefusesMismatchedTraces) {
  const std::string root = pv::testing::source_dir() + "/model/fixtures/";
  if (!fs::exists(root + "qwen2-gqa4/hf")) PV_SKIP_FIXTURE_ABSENT("model:qwen2-gqa4");
  if (!fs::exists(root + "llama-gqa8/hf")) PV_SKIP_FIXTURE_ABSENT("model:llama-gqa8");
  pv::testing::TempDir tmp("mismatch");
  std::string out;
  ASSERT_EQ(pv::testing::run_pv({"trace", "--model", root + "qwen2-gqa4/hf", "--tokens", "1,2,3",
                                 "--out", tmp.sub("a")},
                                &out),
            0)
      << out;
  ASSERT_EQ(pv::testing::run_pv({"trace", "--model", root + "llama-gqa8/hf", "--tokens", "1,2,3",
                                 "--out", tmp.sub("b")},
                                &out),
            0)
      << out;
  ASSERT_EQ(pv::testing::run_pv({"trace", "--model", root + "qwen2-gqa4/hf", "--tokens", "1,2,3",
                                 "--layers", "0", "--out", tmp.sub("c")},
                                &out),
            0)
      << out;
  try {
    pv::model::diff_trace_dirs(tmp.sub("a"), tmp.sub("b"), 5, true);
    ADD_FAILURE() << "different models compared";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("shape mismatch"), std::string::npos) << msg;
    EXPECT_NE(msg.find(tmp.sub("a")), std::string::npos) << msg;
    EXPECT_NE(msg.find("[3, 256]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[3, 128]"), std::string::npos) << msg;
  }
  try {
    pv::model::diff_trace_dirs(tmp.sub("a"), tmp.sub("c"), 5, true);
    ADD_FAILURE() << "different stage sets compared";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("only in " + tmp.sub("a") + ": L1 attn_norm"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(pv::testing::run_pv({"diff", tmp.sub("a"), tmp.sub("b")}, &out), 2);
  EXPECT_EQ(pv::testing::run_pv({"diff", tmp.sub("a"), tmp.sub("c"), "--common", "--json"}, &out),
            0);
  EXPECT_EQ(nlohmann::json::parse(out)["stages"].size(), 3u + 17u);
}

}  // namespace
