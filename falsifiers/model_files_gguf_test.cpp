// Falsifiers for contracts/model-files-v1.yaml (GGUF side and the committed fixtures): the
// reader and loader reject every kind of bad input with a FormatError naming the file, the
// byte offset and the tensor or key — never a crash, never an allocation sized by an
// unchecked header field — and the fixtures load and regenerate byte-identically.
#include <sys/wait.h>

#include <fstream>

#include "falsifiers/support/model_files_util.h"
#include "kernels/quant/quant.h"

namespace {

using namespace pv::model_files_test;
// ---- GGUF reader ----

TEST(ModelFiles, GgufRoundTripsEveryValueType) {
  GgufWriter w;
  w.add("u8", GgufValue::make_u8(200));
  w.add("i8", GgufValue::make_i8(-100));
  w.add("u16", GgufValue::make_u16(60000));
  w.add("i16", GgufValue::make_i16(-30000));
  w.add("u32", GgufValue::make_u32(4000000000u));
  w.add("i32", GgufValue::make_i32(-2000000000));
  w.add("f32", GgufValue::make_f32(0.15625f));
  w.add("bool", GgufValue::make_bool(true));
  w.add("string", GgufValue::make_string("héllo"));
  w.add("u64", GgufValue::make_u64(1ull << 60));
  w.add("i64", GgufValue::make_i64(-(1ll << 60)));
  w.add("f64", GgufValue::make_f64(-2.5e300));
  w.add("strings", GgufValue::make_string_array({"a", "", "ccc"}));
  w.add("nested", GgufValue::make_array(GgufType::ARRAY, {GgufValue::make_i32_array({1, 2}),
                                                          GgufValue::make_i32_array({}),
                                                          GgufValue::make_i32_array({-3})}));
  std::vector<float> row(64, 0.5f);
  std::vector<uint8_t> q(pv::kernels::row_bytes(GgmlType::Q8_0, 64) * 3);
  for (int r = 0; r < 3; ++r) {
    pv::kernels::quantize_row(GgmlType::Q8_0, row.data(), q.data() + r * 68, 64);
  }
  w.add_tensor("t.q8", {64, 3}, GgmlType::Q8_0, q);
  w.add_tensor("t.f32", {5}, GgmlType::F32, std::vector<uint8_t>(20, 7));
  GgufFile g = read_gguf(MappedFile::from_bytes("rt.gguf", w.serialize()));
  ASSERT_EQ(g.kvs.size(), 14u);
  EXPECT_EQ(g.find_kv("u8")->value.u, 200u);
  EXPECT_EQ(g.find_kv("i8")->value.i, -100);
  EXPECT_EQ(g.find_kv("u16")->value.u, 60000u);
  EXPECT_EQ(g.find_kv("i16")->value.i, -30000);
  EXPECT_EQ(g.find_kv("u32")->value.u, 4000000000u);
  EXPECT_EQ(g.find_kv("i32")->value.i, -2000000000);
  EXPECT_EQ(g.find_kv("f32")->value.f, 0.15625);
  EXPECT_TRUE(g.find_kv("bool")->value.b);
  EXPECT_EQ(g.find_kv("string")->value.str, "héllo");
  EXPECT_EQ(g.find_kv("u64")->value.u, 1ull << 60);
  EXPECT_EQ(g.find_kv("i64")->value.i, -(1ll << 60));
  EXPECT_EQ(g.find_kv("f64")->value.f, -2.5e300);
  const GgufValue& s = g.find_kv("strings")->value;
  ASSERT_EQ(s.items.size(), 3u);
  EXPECT_EQ(s.items[2].str, "ccc");
  const GgufValue& n = g.find_kv("nested")->value;
  ASSERT_EQ(n.items.size(), 3u);
  EXPECT_EQ(n.items[0].items[1].i, 2);
  EXPECT_TRUE(n.items[1].items.empty());
  EXPECT_EQ(n.items[2].items[0].i, -3);
  ASSERT_EQ(g.tensors.size(), 2u);
  EXPECT_EQ(g.tensors[0].type, GgmlType::Q8_0);
  EXPECT_EQ(g.tensors[0].nbytes, q.size());
  EXPECT_EQ(std::memcmp(g.tensors[0].data, q.data(), q.size()), 0);
  EXPECT_EQ(g.tensors[1].offset % 32, 0u);
  EXPECT_EQ(g.data_start % 32, 0u);
}

// Every truncation point of a small GGUF (header, metadata with arrays, tensor infos,
// padding, data) is a FormatError naming the file and a byte inside what is there.
TEST(ModelFiles, GgufTruncatedAtEveryByteIsRejected) {
  GgufWriteLayout lay;
  std::vector<uint8_t> full = tiny_gguf(&lay);
  ASSERT_NO_THROW(load_gguf_model(MappedFile::from_bytes("tiny.gguf", full)));
  uint64_t rejected = 0;
  for (uint64_t len = 0; len < full.size(); ++len) {
    std::vector<uint8_t> cut(full.begin(), full.begin() + static_cast<int64_t>(len));
    try {
      load_gguf_model(MappedFile::from_bytes("tiny.gguf", std::move(cut)));
      ADD_FAILURE() << "a file truncated to " << len << " bytes loaded";
    } catch (const FormatError& e) {
      ++rejected;
      ASSERT_EQ(e.path(), "tiny.gguf");
      ASSERT_NE(e.offset(), FormatError::kNoOffset) << e.what();
      ASSERT_LE(e.offset(), len) << e.what();
      if (len >= lay.data_start) {
        ASSERT_EQ(e.subject().rfind("tensor '", 0), 0u) << "len " << len << ": " << e.what();
      } else if (e.offset() >= lay.kv_offsets[0]) {  // past the fixed header: a named place
        ASSERT_FALSE(e.subject().empty()) << "len " << len << ": " << e.what();
      }
    }
  }
  EXPECT_EQ(rejected, full.size());
  pv::testing::record_metric("truncation_points", static_cast<double>(full.size()));
}

TEST(ModelFiles, GgufTensorCountBeyondFile) {
  GgufWriteLayout lay;
  auto b = tiny_gguf(&lay);
  patch<uint64_t>(b, lay.tensor_count_offset, 1ull << 40);
  expect_names(load_bytes_error(b), "bad.gguf", lay.tensor_count_offset, "",
               "tensor count 1099511627776 cannot fit");
}

TEST(ModelFiles, GgufMetadataCountBeyondFile) {
  GgufWriteLayout lay;
  auto b = tiny_gguf(&lay);
  patch<uint64_t>(b, lay.kv_count_offset, ~0ull);
  expect_names(load_bytes_error(b), "bad.gguf", lay.kv_count_offset, "", "metadata count");
}

TEST(ModelFiles, GgufStringLengthBeyondFile) {
  GgufWriteLayout lay;
  auto b = tiny_gguf(&lay);
  patch<uint64_t>(b, lay.kv_offsets[0], 1ull << 62);  // the first key's length
  expect_names(load_bytes_error(b), "bad.gguf", lay.kv_offsets[0], "metadata entry 0",
               "key length 4611686018427387904 exceeds the");
}

TEST(ModelFiles, GgufArrayCountBeyondFile) {
  GgufWriteLayout lay;
  auto b = tiny_gguf(&lay);
  GgufFile g = read_gguf(MappedFile::from_bytes("ok.gguf", b));
  const GgufKV* tokens = g.find_kv("tokenizer.ggml.tokens");
  ASSERT_NE(tokens, nullptr);
  // key length (8) + key + value type (4) + element type (4), then the u64 count.
  const uint64_t count_at = tokens->offset + 8 + tokens->key.size() + 4 + 4;
  patch<uint64_t>(b, count_at, 1ull << 59);
  expect_names(load_bytes_error(b), "bad.gguf", count_at, "key 'tokenizer.ggml.tokens'",
               "array of 576460752303423488 string elements");
}

TEST(ModelFiles, GgufTensorOffsetBeyondFile) {
  GgufWriteLayout lay;
  auto b = tiny_gguf(&lay);
  const auto& t = layout_tensor(lay, "blk.0.attn_q.weight");
  patch<uint64_t>(b, t.offset_offset, 99968);
  expect_names(load_bytes_error(b), "bad.gguf", t.info_offset, "tensor 'blk.0.attn_q.weight'",
               "offset 99968 + 4096 bytes runs past the end of the file");
}

TEST(ModelFiles, GgufNDimsOver4) {
  GgufWriteLayout lay;
  auto b = tiny_gguf(&lay);
  const auto& t = layout_tensor(lay, "blk.0.ffn_up.weight");
  patch<uint32_t>(b, t.n_dims_offset, 5);
  expect_names(load_bytes_error(b), "bad.gguf", t.n_dims_offset, "tensor 'blk.0.ffn_up.weight'",
               "n_dims 5 is outside 1..4");
}

TEST(ModelFiles, GgufUnknownTensorTypeId) {
  GgufWriteLayout lay;
  auto b = tiny_gguf(&lay);
  const auto& t = layout_tensor(lay, "blk.0.attn_k.weight");
  patch<uint32_t>(b, t.type_offset, 99);
  expect_names(load_bytes_error(b), "bad.gguf", t.type_offset, "tensor 'blk.0.attn_k.weight'",
               "unknown ggml type id 99");
  patch<uint32_t>(b, t.type_offset, 16);  // IQ2_XXS: a real ggml type pv does not implement
  expect_names(load_bytes_error(b), "bad.gguf", t.type_offset, "tensor 'blk.0.attn_k.weight'",
               "ggml type IQ2_XXS (id 16) is not supported");
}

TEST(ModelFiles, GgufUnknownMetadataValueType) {
  GgufWriteLayout lay;
  auto b = tiny_gguf(&lay);
  GgufFile g = read_gguf(MappedFile::from_bytes("ok.gguf", b));
  const GgufKV& kv = g.kvs[3];
  const uint64_t type_at = kv.offset + 8 + kv.key.size();
  patch<uint32_t>(b, type_at, 13);
  expect_names(load_bytes_error(b), "bad.gguf", type_at, key_subject(kv.key),
               "unknown value type id 13");
}

TEST(ModelFiles, GgufMisalignedTensorData) {
  GgufWriteLayout lay;
  auto b = tiny_gguf(&lay);
  const auto& t = layout_tensor(lay, "blk.0.attn_v.weight");
  patch<uint64_t>(b, t.offset_offset, t.data_offset - lay.data_start + 4);
  expect_names(load_bytes_error(b), "bad.gguf", t.info_offset, "tensor 'blk.0.attn_v.weight'",
               "is not a multiple of the alignment 32");
}

TEST(ModelFiles, GgufOverlappingTensorData) {
  GgufWriteLayout lay;
  auto b = tiny_gguf(&lay);
  const auto& a = layout_tensor(lay, "blk.0.attn_q.weight");
  const auto& t = layout_tensor(lay, "blk.0.attn_k.weight");
  patch<uint64_t>(b, t.offset_offset, a.data_offset - lay.data_start + 32);
  expect_names(load_bytes_error(b), "bad.gguf", t.info_offset, "tensor 'blk.0.attn_k.weight'",
               "overlaps tensor 'blk.0.attn_q.weight'");
}

TEST(ModelFiles, GgufRowsNotMultipleOfBlockSize) {
  GgufWriteLayout lay;
  auto b = tiny_gguf(&lay);
  const auto& t = layout_tensor(lay, "blk.0.attn_q.weight");  // rows of 32 values
  patch<uint32_t>(b, t.type_offset, static_cast<uint32_t>(GgmlType::Q4_K));
  expect_names(load_bytes_error(b), "bad.gguf", t.n_dims_offset, "tensor 'blk.0.attn_q.weight'",
               "rows of 32 values are not a multiple of the Q4_K block size 256");
}

// Rewrites a GGUF through the writer with one tensor left out or one key changed.
std::vector<uint8_t> rewrite_gguf(const std::vector<uint8_t>& src, const std::string& drop_tensor,
                                  const std::string& key = "", GgufValue value = {}) {
  GgufFile g = read_gguf(MappedFile::from_bytes("src.gguf", src));
  GgufWriter w(g.alignment);
  for (const auto& kv : g.kvs) {
    if (kv.key == "general.alignment" && g.alignment == 32) continue;
    w.add(kv.key, kv.key == key ? value : kv.value);
  }
  for (const auto& t : g.tensors) {
    if (t.name == drop_tensor) continue;
    w.add_tensor(t.name, t.dims, t.type, std::vector<uint8_t>(t.data, t.data + t.nbytes));
  }
  return w.serialize();
}

TEST(ModelFiles, GgufMissingTensor) {
  auto b = rewrite_gguf(tiny_gguf(nullptr), "blk.0.ffn_up.weight");
  GgufFile g = read_gguf(MappedFile::from_bytes("x", b));
  expect_names(load_bytes_error(b), "bad.gguf", g.tensor_infos_offset,
               "tensor 'blk.0.ffn_up.weight'",
               "required tensor is missing (expected shape [64, 32]");
}

TEST(ModelFiles, GgufShapeMismatchAgainstConfig) {
  auto b =
      rewrite_gguf(tiny_gguf(nullptr), "", "qwen2.feed_forward_length", GgufValue::make_u32(96));
  GgufFile g = read_gguf(MappedFile::from_bytes("x", b));
  expect_names(load_bytes_error(b), "bad.gguf", g.find_tensor("blk.0.ffn_gate.weight")->info_offset,
               "tensor 'blk.0.ffn_gate.weight'",
               "shape [64, 32] does not match the config: expected [96, 32] (ffn 96, hidden 32)");
}

TEST(ModelFiles, GgufMissingArchitectureKey) {
  auto b = rewrite_gguf(tiny_gguf(nullptr), "", "qwen2.block_count", GgufValue::make_string("two"));
  GgufFile g = read_gguf(MappedFile::from_bytes("x", b));
  expect_names(load_bytes_error(b), "bad.gguf", g.find_kv("qwen2.block_count")->offset,
               "key 'qwen2.block_count'", "expected an integer, found string");
}

// Random byte mutations of a valid header: load either succeeds or throws FormatError,
// never crashes (run under ASan/UBSan too) and never throws anything else.
TEST(ModelFiles, GgufHeaderFuzzNeverCrashes) {
  const uint64_t seed = pv::testing::seed();
  GgufWriteLayout lay;
  const std::vector<uint8_t> full = tiny_gguf(&lay);
  uint64_t state = seed;
  auto next = [&] { return splitmix64(state); };
  int accepted = 0, rejected = 0;
  const int iterations = 3000;
  for (int it = 0; it < iterations; ++it) {
    std::vector<uint8_t> b = full;
    const int flips = 1 + static_cast<int>(next() % 4);
    std::string what;
    for (int k = 0; k < flips; ++k) {
      const uint64_t at = next() % lay.data_start;  // header, metadata and tensor infos
      const uint8_t v = next() % 3 == 0 ? 0xFF : static_cast<uint8_t>(next());
      b[at] = v;
      what += std::to_string(at) + "=" + std::to_string(v) + " ";
    }
    parse_mutant(
        "fuzz.gguf", [&] { load_gguf_model(MappedFile::from_bytes("fuzz.gguf", std::move(b))); },
        what, &accepted, &rejected);
    if (::testing::Test::HasFailure()) return;  // the first bad mutation is the counterexample
  }
  pv::testing::record_metric("accepted", accepted);
  pv::testing::record_metric("rejected", rejected);
  EXPECT_EQ(accepted + rejected, iterations);
  EXPECT_GT(rejected, 0);
}

// ---- committed fixtures ----

bool fixtures_present() { return fs::exists(fixtures_dir() + "/SHA256SUMS"); }

TEST(ModelFiles, FixturesLoadIdenticallyFromHfAndGguf) {
  if (!fixtures_present()) PV_SKIP_FIXTURE_ABSENT("model-fixtures");
  for (const FixtureSpec& s : default_fixtures()) {
    SCOPED_TRACE(s.name);
    const std::string root = fixtures_dir() + "/" + s.name;
    LoadedModel hf = load_model(root + "/hf");
    LoadedModel gg = load_model(root + "/" + s.name + "-f32.gguf");
    for (const LoadedModel* m : {&hf, &gg}) {
      const ModelConfig& c = m->config;
      EXPECT_EQ(c.architecture, s.architecture);
      EXPECT_EQ(c.n_layers, s.n_layers);
      EXPECT_EQ(c.hidden, s.hidden);
      EXPECT_EQ(c.ffn, s.ffn);
      EXPECT_EQ(c.n_heads, s.n_heads);
      EXPECT_EQ(c.n_kv_heads, s.n_kv_heads);
      EXPECT_EQ(c.vocab, s.vocab);
      EXPECT_EQ(c.tied_embeddings, s.tied);
      EXPECT_EQ(c.qkv_bias, s.qkv_bias);
      EXPECT_EQ(c.rope_theta, s.rope_theta);
    }
    EXPECT_EQ(hf.config.rope_style, pv::kernels::RopeStyle::HalfSplit);
    EXPECT_EQ(gg.config.rope_style, s.architecture == "llama" ? pv::kernels::RopeStyle::Interleaved
                                                              : pv::kernels::RopeStyle::HalfSplit);
    EXPECT_EQ(gg.tokenizer.present, s.with_tokenizer);
    auto bytes_of = [](const pv::kernels::TensorView& v) {
      const auto* p = static_cast<const uint8_t*>(v.data);
      return std::vector<uint8_t>(p, p + v.nbytes);
    };
    EXPECT_EQ(bytes_of(hf.weights.tok_embd), bytes_of(gg.weights.tok_embd));
    EXPECT_EQ(bytes_of(hf.weights.output), bytes_of(gg.weights.output));
    for (int l = 0; l < s.n_layers; ++l) {
      const auto& a = hf.weights.layers[l];
      const auto& b = gg.weights.layers[l];
      const int hd = s.hidden / s.n_heads;
      auto rope_rows = [&](const pv::kernels::TensorView& v, int heads) {
        std::vector<float> f(static_cast<size_t>(v.numel()));
        std::memcpy(f.data(), v.data, v.nbytes);
        if (s.architecture == "llama") f = permute_rope_rows(f, heads, hd, v.cols);
        return f;
      };
      auto floats = [](const pv::kernels::TensorView& v) {
        std::vector<float> f(static_cast<size_t>(v.numel()));
        std::memcpy(f.data(), v.data, v.nbytes);
        return f;
      };
      EXPECT_EQ(rope_rows(a.wq, s.n_heads), floats(b.wq));
      EXPECT_EQ(rope_rows(a.wk, s.n_kv_heads), floats(b.wk));
      EXPECT_EQ(bytes_of(a.wv), bytes_of(b.wv));
      EXPECT_EQ(bytes_of(a.wo), bytes_of(b.wo));
      EXPECT_EQ(bytes_of(a.w_down), bytes_of(b.w_down));
      EXPECT_EQ(bytes_of(a.attn_norm), bytes_of(b.attn_norm));
      if (s.qkv_bias) {
        EXPECT_EQ(bytes_of(a.bq), bytes_of(b.bq));
      }
    }
    // The model builder, in memory, makes exactly the F32 GGUF's tensors.
    const auto mem = make_synthetic_model(fixture_config(s), s.seed);
    EXPECT_EQ(mem->config.rope_style, gg.config.rope_style);
    auto views = [](const ModelWeights& w) {
      std::vector<const pv::kernels::TensorView*> v = {&w.tok_embd, &w.output_norm, &w.output};
      for (const auto& L : w.layers) {
        for (const auto* t : {&L.attn_norm, &L.wq, &L.bq, &L.wk, &L.bk, &L.wv, &L.bv, &L.wo,
                              &L.ffn_norm, &L.w_gate, &L.w_up, &L.w_down}) {
          v.push_back(t);
        }
      }
      return v;
    };
    const auto built = views(mem->weights), loaded = views(gg.weights);
    ASSERT_EQ(built.size(), loaded.size());
    for (size_t i = 0; i < built.size(); ++i) {
      EXPECT_EQ(built[i]->name, loaded[i]->name);
      EXPECT_EQ(bytes_of(*built[i]), bytes_of(*loaded[i])) << loaded[i]->name;
    }
    for (GgmlType t : s.gguf_types) {
      LoadedModel q = load_model(root + "/" + s.name + "-" + type_tag(t) + ".gguf");
      EXPECT_EQ(q.weights.layers[0].wq.type, t);
      EXPECT_EQ(q.config.hidden, s.hidden);
    }
  }
}

// The committed Q4_K fixture, truncated on disk at sampled points (every block boundary
// region: header, tokenizer-free metadata, tensor infos, data) and loaded by path.
TEST(ModelFiles, TruncatedFixtureFileRejected) {
  if (!fixtures_present()) PV_SKIP_FIXTURE_ABSENT("model-fixtures");
  const uint64_t seed = pv::testing::seed();
  const std::string src = fixtures_dir() + "/qwen2-gqa4/qwen2-gqa4-q4_k.gguf";
  std::ifstream in(src, std::ios::binary);
  const std::vector<uint8_t> full((std::istreambuf_iterator<char>(in)), {});
  ASSERT_GT(full.size(), 4096u);
  GgufFile g = read_gguf(src);
  std::vector<uint64_t> cuts = {
      0, 3, 4, 8, 23, 24, g.tensor_infos_offset, g.data_start - 1, g.data_start, full.size() - 1};
  uint64_t state = seed;
  for (int k = 0; k < 40; ++k) cuts.push_back(splitmix64(state) % full.size());
  fs::path dir = temp_dir("trunc");
  const std::string path = (dir / "cut.gguf").string();
  for (uint64_t len : cuts) {
    write_file_atomic(path, std::vector<uint8_t>(full.begin(), full.begin() + len));
    FormatError e = expect_format_error([&] { load_model(path); });
    EXPECT_EQ(e.path(), path) << "cut at " << len;
    EXPECT_LE(e.offset(), len) << e.what();
  }
  pv::testing::record_metric("truncation_points", static_cast<double>(cuts.size()));
  fs::remove_all(dir);
}

TEST(ModelFiles, RegenerationIsByteIdentical) {
  if (!fixtures_present()) PV_SKIP_FIXTURE_ABSENT("model-fixtures");
  fs::path out = temp_dir("regen");
  TokenizerData tok = read_tokenizer_vocab(fixtures_dir() + "/tokenizer/vocab.json");
  uint64_t files = 0, bytes = 0;
  for (const FixtureSpec& s : default_fixtures()) {
    for (const std::string& f : generate_fixture(s, out.string(), &tok)) {
      std::ifstream a(out / f, std::ios::binary), b(fixtures_dir() + "/" + f, std::ios::binary);
      ASSERT_TRUE(b.good()) << "committed fixture missing: " << f;
      std::string x((std::istreambuf_iterator<char>(a)), {}),
          y((std::istreambuf_iterator<char>(b)), {});
      EXPECT_TRUE(x == y) << f << " differs from its regeneration (" << x.size() << " vs "
                          << y.size() << " bytes)";
      ++files;
      bytes += x.size();
    }
  }
  pv::testing::record_metric("files", static_cast<double>(files));
  pv::testing::record_metric("bytes", static_cast<double>(bytes));
  fs::remove_all(out);
}

TEST(ModelFiles, InspectOnBadFileExits2NamingThePlace) {
  const std::string pv = std::string(PV_BINARY_DIR) + "/bin/pv";
  if (!fs::exists(pv)) PV_SKIP_FIXTURE_ABSENT("pv-binary");
  GgufWriteLayout lay;
  auto b = tiny_gguf(&lay);
  const auto& t = layout_tensor(lay, "blk.0.ffn_up.weight");
  patch<uint32_t>(b, t.n_dims_offset, 7);
  fs::path dir = temp_dir("inspect");
  write_file_atomic((dir / "bad.gguf").string(), b);
  const std::string cmd = pv + " inspect " + (dir / "bad.gguf").string() + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  int status = pclose(p);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2) << out;
  EXPECT_NE(out.find("bad.gguf: byte " + std::to_string(t.n_dims_offset) +
                     ": tensor 'blk.0.ffn_up.weight': n_dims 7 is outside 1..4"),
            std::string::npos)
      << out;
  fs::remove_all(dir);
}

}  // namespace
