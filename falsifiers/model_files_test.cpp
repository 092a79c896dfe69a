// Falsifiers for contracts/model-files-v1.yaml: the GGUF and safetensors readers and the
// loader reject every kind of bad input with a FormatError naming the file, the place
// (byte offset) and the tensor or key — never a crash, never an allocation sized by an
// unchecked header field — and the committed fixtures load and regenerate byte-identically.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "falsifiers/support/pv_test.h"
#include "kernels/cpu/quant.h"
#include "model/fixture_gen.h"
#include "model/gguf.h"
#include "model/gguf_writer.h"
#include "model/loader.h"
#include "model/safetensors.h"

namespace {

namespace fs = std::filesystem;
using pv::kernels::GgmlType;
using namespace pv::model;

// A tiny qwen2 with a tokenizer: small enough to truncate at every byte.
FixtureSpec tiny_spec() {
  FixtureSpec s;
  s.name = "tiny";
  s.n_layers = 1;
  s.hidden = 32;
  s.n_heads = 2;
  s.n_kv_heads = 1;
  s.ffn = 64;
  s.vocab = 16;
  s.seed = 5;
  s.with_tokenizer = true;
  return s;
}

TokenizerData tiny_tokenizer() {
  TokenizerData t;
  t.present = true;
  t.model = "gpt2";
  t.pre = "qwen2";
  for (int i = 0; i < 16; ++i) t.tokens.push_back(std::string(1, static_cast<char>('a' + i)));
  t.token_types.assign(16, 1);
  t.merges = {"a b", "c d"};
  t.bos = 0;
  t.eos = 1;
  return t;
}

std::vector<uint8_t> tiny_gguf(GgufWriteLayout* layout, GgmlType type = GgmlType::F32) {
  TokenizerData tok = tiny_tokenizer();
  return fixture_gguf(tiny_spec(), type, &tok).serialize(layout);
}

template <typename T>
void patch(std::vector<uint8_t>& b, uint64_t at, T v) {
  ASSERT_LE(at + sizeof(T), b.size());
  std::memcpy(b.data() + at, &v, sizeof(T));
}

// Runs f, which must throw FormatError; returns it (or fails the test).
FormatError expect_format_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const FormatError& e) {
    std::printf("  error: %s\n", e.what());
    return e;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw a non-FormatError: " << e.what();
    return FormatError("", 0, "", "wrong exception");
  }
  ADD_FAILURE() << "no error was raised";
  return FormatError("", 0, "", "no exception");
}

FormatError load_bytes_error(std::vector<uint8_t> bytes, const std::string& name = "bad.gguf") {
  auto file = MappedFile::from_bytes(name, std::move(bytes));
  return expect_format_error([&] { load_gguf_model(file); });
}

void expect_names(const FormatError& e, const std::string& file, uint64_t offset,
                  const std::string& subject, const std::string& detail_part) {
  EXPECT_EQ(e.path(), file);
  EXPECT_EQ(e.offset(), offset);
  EXPECT_EQ(e.subject(), subject);
  EXPECT_NE(e.detail().find(detail_part), std::string::npos) << e.detail();
  const std::string what = e.what();
  EXPECT_NE(what.find(file), std::string::npos);
  EXPECT_NE(what.find("byte " + std::to_string(offset)), std::string::npos) << what;
  if (!subject.empty()) {
    EXPECT_NE(what.find(subject), std::string::npos) << what;
  }
}

const GgufWriteLayout::Tensor& layout_tensor(const GgufWriteLayout& l, const std::string& name) {
  for (const auto& t : l.tensors) {
    if (t.name == name) return t;
  }
  throw std::runtime_error("no tensor " + name + " in layout");
}

fs::path temp_dir(const std::string& tag) {
  fs::path p =
      fs::temp_directory_path() / ("pv_model_files_" + tag + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

std::string fixtures_dir() { return pv::testing::source_dir() + "/model/fixtures"; }

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
    pv::kernels::cpu::quantize_row(GgmlType::Q8_0, row.data(), q.data() + r * 68, 64);
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
  patch<uint32_t>(b, t.type_offset, 13);  // Q5_K: a real ggml type pv does not implement
  expect_names(load_bytes_error(b), "bad.gguf", t.type_offset, "tensor 'blk.0.attn_k.weight'",
               "ggml type Q5_K (id 13) is not supported");
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
  auto next = [&] {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  };
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
    try {
      load_gguf_model(MappedFile::from_bytes("fuzz.gguf", std::move(b)));
      ++accepted;
    } catch (const FormatError& e) {
      ++rejected;
      if (e.path() != "fuzz.gguf") {
        pv::testing::record_counterexample(what);
        FAIL() << "error does not name the file: " << e.what();
      }
    } catch (const std::exception& e) {
      pv::testing::record_counterexample(what);
      FAIL() << "mutation {" << what << "} threw a non-FormatError: " << e.what();
    }
  }
  pv::testing::record_metric("accepted", accepted);
  pv::testing::record_metric("rejected", rejected);
  EXPECT_EQ(accepted + rejected, iterations);
  EXPECT_GT(rejected, 0);
}

// ---- safetensors ----

std::vector<uint8_t> raw_safetensors(const std::string& header, size_t buffer_bytes) {
  std::vector<uint8_t> b(8 + header.size() + buffer_bytes, 0);
  uint64_t n = header.size();
  std::memcpy(b.data(), &n, 8);
  std::memcpy(b.data() + 8, header.data(), header.size());
  return b;
}

FormatError st_error(std::vector<uint8_t> b) {
  auto f = MappedFile::from_bytes("bad.safetensors", std::move(b));
  return expect_format_error([&] { read_safetensors(f); });
}

TEST(ModelFiles, SafetensorsHeaderOverLimit) {
  std::vector<uint8_t> b(64, ' ');
  patch<uint64_t>(b, 0, kSafetensorsMaxHeader + 1);
  expect_names(st_error(b), "bad.safetensors", 0, "",
               "header length 100000001 exceeds the limit of 100000000 bytes");
  patch<uint64_t>(b, 0, 1000);  // under the limit but beyond the file
  expect_names(st_error(b), "bad.safetensors", 0, "",
               "header length 1000 exceeds the 56 bytes left in the file");
}

TEST(ModelFiles, SafetensorsOverlappingOffsets) {
  const std::string h = R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                        R"("b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})";
  const uint64_t buf = 8 + h.size();
  expect_names(st_error(raw_safetensors(h, 24)), "bad.safetensors", buf + 8, "tensor 'b'",
               "data_offsets [8, 24) overlap tensor 'a' at [0, 16)");
}

TEST(ModelFiles, SafetensorsGapAndTrailingBytes) {
  const std::string h = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})";
  const uint64_t buf = 8 + h.size();
  expect_names(st_error(raw_safetensors(h, 16)), "bad.safetensors", buf, "tensor 'a'",
               "a gap of 8 bytes");
  const std::string h2 = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  expect_names(st_error(raw_safetensors(h2, 12)), "bad.safetensors", 8 + h2.size() + 8, "",
               "4 bytes after the last tensor are covered by no tensor");
}

TEST(ModelFiles, SafetensorsOffsetsBeyondFileAndWrongSize) {
  const std::string h = R"({"w":{"dtype":"F32","shape":[8],"data_offsets":[0,32]}})";
  const uint64_t entry = 8 + h.find("\"w\"");
  expect_names(st_error(raw_safetensors(h, 16)), "bad.safetensors", 8 + h.size(), "tensor 'w'",
               "data_offsets [0, 32) run past the end of the file");
  const std::string h2 = R"({"w":{"dtype":"BF16","shape":[3,3],"data_offsets":[0,16]}})";
  expect_names(st_error(raw_safetensors(h2, 16)), "bad.safetensors", entry, "tensor 'w'",
               "hold 16 bytes but 9 x 2 BF16 needs 18");
}

TEST(ModelFiles, SafetensorsBadJsonNamesTheByte) {
  const std::string h = R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},,})";
  auto e = st_error(raw_safetensors(h, 4));
  EXPECT_EQ(e.offset(), 8 + h.find(",,") + 1);
  EXPECT_NE(e.detail().find("not valid JSON"), std::string::npos);
  const std::string h2 = R"({"w":{"dtype":"Q4","shape":[1],"data_offsets":[0,4]}})";
  expect_names(st_error(raw_safetensors(h2, 4)), "bad.safetensors", 8 + h2.find("\"w\""),
               "tensor 'w'", "unknown dtype \"Q4\"");
}

// Writes a tiny HF directory; edit() may change the config text or the writer.
fs::path write_hf(const std::string& tag, const std::function<void(std::string&)>& edit_config,
                  const std::function<void(SafetensorsWriter&)>& edit_tensors = nullptr) {
  fs::path dir = temp_dir(tag);
  FixtureSpec s = tiny_spec();
  s.with_tokenizer = false;
  std::string cfg = fixture_config_json(s, nullptr);
  if (edit_config) edit_config(cfg);
  std::ofstream(dir / "config.json") << cfg;
  SafetensorsWriter st = fixture_safetensors(s);
  if (edit_tensors) edit_tensors(st);
  st.write((dir / "model.safetensors").string());
  return dir;
}

TEST(ModelFiles, SafetensorsShapeMismatchAgainstConfig) {
  fs::path dir = write_hf("shape", [](std::string& c) {
    c.replace(c.find("\"num_key_value_heads\": 1"), 24, "\"num_key_value_heads\": 2");
  });
  const std::string file = (dir / "model.safetensors").string();
  SafetensorsFile st = read_safetensors(file);
  const uint64_t at = st.find("model.layers.0.self_attn.k_proj.weight")->header_offset;
  auto e = expect_format_error([&] { load_model(dir.string()); });
  expect_names(e, file, at, "tensor 'model.layers.0.self_attn.k_proj.weight'",
               "shape [16, 32] does not match the config: expected [32, 32] (n_kv_heads 2 x "
               "head_dim 16, hidden 32)");
  fs::remove_all(dir);
}

TEST(ModelFiles, SafetensorsMissingTensorAndBadDtype) {
  // Rebuild the tensors without one of them.
  fs::path dir = temp_dir("missing");
  {
    FixtureSpec s = tiny_spec();
    s.with_tokenizer = false;
    std::ofstream(dir / "config.json") << fixture_config_json(s, nullptr);
    SafetensorsFile full =
        read_safetensors(MappedFile::from_bytes("x", fixture_safetensors(s).serialize()));
    SafetensorsWriter w;
    for (const auto& t : full.tensors) {
      if (t.name == "model.layers.0.mlp.down_proj.weight") continue;
      std::vector<uint8_t> bytes(t.data, t.data + t.nbytes());
      if (t.name == "model.norm.weight") {
        w.add_tensor(t.name, "I32", t.shape, bytes);  // a non-float dtype for a weight
      } else {
        w.add_tensor(t.name, t.dtype, t.shape, bytes);
      }
    }
    w.write((dir / "model.safetensors").string());
  }
  const std::string file = (dir / "model.safetensors").string();
  auto e = expect_format_error([&] { load_model(dir.string()); });
  SafetensorsFile st = read_safetensors(file);
  expect_names(e, file, st.find("model.norm.weight")->header_offset, "tensor 'model.norm.weight'",
               "dtype I32 is not a weight type pv can use (F32, F16, BF16)");
  // With the dtype fixed, the missing tensor is next.
  {
    SafetensorsWriter w;
    for (const auto& t : st.tensors) {
      w.add_tensor(t.name, t.name == "model.norm.weight" ? "F32" : t.dtype, t.shape,
                   std::vector<uint8_t>(t.data, t.data + t.nbytes()));
    }
    std::vector<uint8_t> bytes = w.serialize();
    st = SafetensorsFile{};
    write_file_atomic(file, bytes);
  }
  auto e2 = expect_format_error([&] { load_model(dir.string()); });
  expect_names(e2, file, 8, "tensor 'model.layers.0.mlp.down_proj.weight'",
               "required tensor is missing (expected shape [32, 64]: hidden 32, ffn 64)");
  fs::remove_all(dir);
}

TEST(ModelFiles, SafetensorsConfigJsonErrorsNameLineAndColumn) {
  fs::path dir =
      write_hf("cfg", [](std::string& c) { c.replace(c.find("\"hidden_size\""), 1, ""); });
  auto e = expect_format_error([&] { load_model(dir.string()); });
  EXPECT_EQ(e.path(), (dir / "config.json").string());
  EXPECT_NE(e.detail().find("config.json:"), std::string::npos) << e.what();
  fs::remove_all(dir);
}

TEST(ModelFiles, ShardedDirectoryLoadsLikeSingleFile) {
  FixtureSpec s = tiny_spec();
  s.with_tokenizer = false;
  fs::path single = write_hf("single", nullptr);
  fs::path dir = temp_dir("sharded");
  std::ofstream(dir / "config.json") << fixture_config_json(s, nullptr);
  SafetensorsFile full = read_safetensors((single / "model.safetensors").string());
  SafetensorsWriter a, b;
  nlohmann::json map;
  size_t k = 0;
  for (const auto& t : full.tensors) {
    SafetensorsWriter& w = (k++ % 2 == 0) ? a : b;
    w.add_tensor(t.name, t.dtype, t.shape, std::vector<uint8_t>(t.data, t.data + t.nbytes()));
    map[t.name] =
        (&w == &a) ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  a.write((dir / "model-00001-of-00002.safetensors").string());
  b.write((dir / "model-00002-of-00002.safetensors").string());
  std::ofstream(dir / "model.safetensors.index.json")
      << nlohmann::json{{"metadata", nlohmann::json::object()}, {"weight_map", map}}.dump();
  LoadedModel m1 = load_model(single.string());
  LoadedModel m2 = load_model(dir.string());
  EXPECT_EQ(m2.mappings.size(), 2u);
  ASSERT_EQ(m1.weights.layers.size(), m2.weights.layers.size());
  auto same = [](const pv::kernels::TensorView& x, const pv::kernels::TensorView& y) {
    return x.nbytes == y.nbytes && x.rows == y.rows && x.cols == y.cols &&
           std::memcmp(x.data, y.data, x.nbytes) == 0;
  };
  EXPECT_TRUE(same(m1.weights.tok_embd, m2.weights.tok_embd));
  EXPECT_TRUE(same(m1.weights.layers[0].w_down, m2.weights.layers[0].w_down));
  EXPECT_TRUE(same(m1.weights.layers[0].bk, m2.weights.layers[0].bk));
  // An index naming the wrong shard for a tensor is an error naming the tensor.
  map["model.norm.weight"] = map["model.norm.weight"] == "model-00001-of-00002.safetensors"
                                 ? "model-00002-of-00002.safetensors"
                                 : "model-00001-of-00002.safetensors";
  std::ofstream(dir / "model.safetensors.index.json", std::ios::trunc)
      << nlohmann::json{{"weight_map", map}}.dump();
  auto e = expect_format_error([&] { load_model(dir.string()); });
  EXPECT_EQ(e.subject(), "tensor 'model.norm.weight'");
  fs::remove_all(dir);
  fs::remove_all(single);
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
    for (GgmlType t : s.gguf_types) {
      LoadedModel q = load_model(root + "/" + s.name + "-" + type_tag(t) + ".gguf");
      EXPECT_EQ(q.weights.layers[0].wq.type, t);
      EXPECT_EQ(q.config.hidden, s.hidden);
    }
  }
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
