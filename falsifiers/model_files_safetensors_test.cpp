// Falsifiers for contracts/model-files-v1.yaml (safetensors side): header limits, JSON
// errors with byte offsets, exact cover of the buffer, dtype and shape checks against
// config.json, missing tensors, sharded directories.
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "falsifiers/support/model_files_util.h"

namespace {

using namespace pv::model_files_test;
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
  // A number nlohmann cannot hold is no syntax error: still a FormatError at its text.
  const std::string h3 = R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,2176e6272]}})";
  expect_names(st_error(raw_safetensors(h3, 4)), "bad.safetensors", 8 + h3.find("2176e6272"), "",
               "unusable value");
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

// Random byte mutations of a valid safetensors header (and its length field): the reader
// either accepts the file or throws FormatError naming it; never a crash or another error.
TEST(ModelFiles, SafetensorsHeaderFuzzNeverCrashes) {
  const uint64_t seed = pv::testing::seed();
  FixtureSpec spec = tiny_spec();
  spec.with_tokenizer = false;
  const std::vector<uint8_t> full = fixture_safetensors(spec).serialize();
  uint64_t header_len = 0;
  std::memcpy(&header_len, full.data(), 8);
  uint64_t state = seed;
  int accepted = 0, rejected = 0;
  const int iterations = 3000;
  for (int it = 0; it < iterations; ++it) {
    std::vector<uint8_t> b = full;
    std::string what;
    const int flips = 1 + static_cast<int>(splitmix64(state) % 4);
    for (int k = 0; k < flips; ++k) {
      const uint64_t at = splitmix64(state) % (8 + header_len);
      static const char kTokens[] = "{}[],:\"0123456789-e.x ";
      const uint8_t v =
          splitmix64(state) % 2 == 0
              ? static_cast<uint8_t>(kTokens[splitmix64(state) % (sizeof kTokens - 1)])
              : static_cast<uint8_t>(splitmix64(state));
      b[at] = v;
      what += std::to_string(at) + "=" + std::to_string(v) + " ";
    }
    parse_mutant(
        "fuzz.safetensors",
        [&] { read_safetensors(MappedFile::from_bytes("fuzz.safetensors", std::move(b))); }, what,
        &accepted, &rejected);
    if (::testing::Test::HasFailure()) return;  // the first bad mutation is the counterexample
  }
  pv::testing::record_metric("accepted", accepted);
  pv::testing::record_metric("rejected", rejected);
  EXPECT_GT(rejected, 0);
}

}  // namespace
