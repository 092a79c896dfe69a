// Shared helpers of the model-files falsifiers (model_files_gguf_test.cpp,
// model_files_safetensors_test.cpp): a tiny generated checkpoint, byte patching, and
// assertions that a FormatError names the file, the byte offset and the tensor/key.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "harness/testing/pv_test.h"
#include "model/fixtures/fixture_gen.h"
#include "model/formats/gguf.h"
#include "model/formats/gguf_writer.h"
#include "model/formats/safetensors.h"
#include "model/loading/loader.h"

namespace pv::model_files_test {

namespace fs = std::filesystem;
using pv::kernels::GgmlType;
using namespace pv::model;

// A tiny qwen2 with a tokenizer: small enough to truncate at every byte.
inline FixtureSpec tiny_spec() {
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

inline TokenizerData tiny_tokenizer() {
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

inline std::vector<uint8_t> tiny_gguf(GgufWriteLayout* layout, GgmlType type = GgmlType::F32) {
  TokenizerData tok = tiny_tokenizer();
  return fixture_gguf(tiny_spec(), type, &tok).serialize(layout);
}

template <typename T>
void patch(std::vector<uint8_t>& b, uint64_t at, T v) {
  ASSERT_LE(at + sizeof(T), b.size());
  std::memcpy(b.data() + at, &v, sizeof(T));
}

// One mutated file through `parse`: counted as accepted, or as rejected when it throws a
// FormatError naming `name`. Any other outcome fails the test with the mutation `what` as
// the counterexample (the fuzz tests' shared step, for GGUF and safetensors alike).
inline void parse_mutant(const std::string& name, const std::function<void()>& parse,
                         const std::string& what, int* accepted, int* rejected) {
  try {
    parse();
    ++*accepted;
  } catch (const FormatError& e) {
    ++*rejected;
    if (e.path() != name) {
      pv::testing::record_counterexample(what);
      ADD_FAILURE() << "error does not name the file: " << e.what();
    }
  } catch (const std::exception& e) {
    pv::testing::record_counterexample(what);
    ADD_FAILURE() << "mutation {" << what << "} threw a non-FormatError: " << e.what();
  }
}

// Runs f, which must throw FormatError; returns it (or fails the test).
inline FormatError expect_format_error(const std::function<void()>& f) {
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

inline FormatError load_bytes_error(std::vector<uint8_t> bytes,
                                    const std::string& name = "bad.gguf") {
  auto file = MappedFile::from_bytes(name, std::move(bytes));
  return expect_format_error([&] { load_gguf_model(file); });
}

inline void expect_names(const FormatError& e, const std::string& file, uint64_t offset,
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

inline const GgufWriteLayout::Tensor& layout_tensor(const GgufWriteLayout& l,
                                                    const std::string& name) {
  for (const auto& t : l.tensors) {
    if (t.name == name) return t;
  }
  throw std::runtime_error("no tensor " + name + " in layout");
}

inline fs::path temp_dir(const std::string& tag) {
  fs::path p =
      fs::temp_directory_path() / ("pv_model_files_" + tag + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

inline std::string fixtures_dir() { return pv::testing::source_dir() + "/model/fixtures"; }

}  // namespace pv::model_files_test
