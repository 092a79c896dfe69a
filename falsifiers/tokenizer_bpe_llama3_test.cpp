// Falsifier of contracts/tokenizer-bpe-v1.yaml for the Llama 3 (GGUF tokenizer.ggml.pre
// "llama-bpe") pre-tokenizer against an oracle nobody here wrote: HF tokenizers' own
// Split(Regex(cl100k pattern), isolated) + ByteLevel, as Llama 3's tokenizer.json states it,
// run by tools/tokenizer_oracle.py pretok-llama3 on the GPU machine over every text of the
// Qwen2 oracle (cases.json, fuzz_inputs.json) plus digit-heavy texts. The hand-written
// expectations of TokenizerPretokenize.Llama3RegexSemantics share their author's reading of
// the regex; this one does not.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "harness/testing/pv_test.h"
#include "model/tokenizer/pretokenize.h"

namespace pv::model {
namespace {

using json = nlohmann::json;

std::vector<std::string> llama3_pieces(std::string_view text) {
  std::vector<DecodedChar> chars;
  std::vector<Piece> ps;
  pretokenize(PreTokenizerKind::kLlama3, text, chars, ps);
  std::vector<std::string> out;
  for (const Piece& p : ps) out.emplace_back(text.substr(p.begin, p.end - p.begin));
  return out;
}

// Control bytes as \xNN so a failure message shows where pieces differ.
std::string escape(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7F || c == '\\') {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string pieces_text(const std::vector<std::string>& ps) {
  std::string s;
  for (const auto& p : ps) s += " [" + escape(p) + "]";
  return s;
}

TEST(TokenizerLlama3, PiecesMatchHfPreTokenizer) {
  // Committed: a missing or unreadable oracle is a failure, not a skip.
  const std::string path =
      pv::testing::source_dir() + "/model/fixtures/tokenizer/pretok-llama3-hf.json";
  ASSERT_TRUE(std::filesystem::exists(path)) << path << " is missing (it is committed)";
  std::ifstream in(path, std::ios::binary);
  const json oracle = json::parse(in, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(oracle.is_discarded()) << path << ": not valid JSON";
  ASSERT_TRUE(oracle.contains("cases") && oracle["cases"].is_array()) << path << ": no cases";

  // The oracle ran the regex pv declares for llama-bpe, and HF's whole Sequence (Split then
  // ByteLevel) produced exactly the byte-level images of the Split pieces compared here.
  EXPECT_EQ(oracle.value("pattern", ""), pretokenizer_regex(PreTokenizerKind::kLlama3))
      << path << ": oracle pattern differs from pv's llama-bpe regex";
  EXPECT_EQ(oracle.value("sequence_disagreements", -1), 0)
      << path << ": HF's Split + ByteLevel disagreed with ByteLevel(Split pieces)";

  size_t n = 0, mismatches = 0;
  for (const json& c : oracle["cases"]) {
    const std::string text = c["text"].get<std::string>();
    const auto want = c["pieces"].get<std::vector<std::string>>();
    const auto got = llama3_pieces(text);
    ++n;
    if (got != want) {
      const std::string msg =
          "text \"" + escape(text) + "\": pv" + pieces_text(got) + " vs HF" + pieces_text(want);
      if (mismatches++ == 0) pv::testing::record_counterexample(msg);
      if (mismatches <= 20) ADD_FAILURE() << msg;
    }
  }
  // cases.json (798) + fuzz_inputs.json (3000) + the script's digit-heavy texts (49).
  EXPECT_GE(n, 3847u) << path << " covers fewer texts than the oracle inputs";
  std::printf("llama-bpe pieces vs %s: %zu texts, %zu mismatches\n",
              oracle.value("oracle", "?").c_str(), n, mismatches);
  pv::testing::record_metric("llama3_split_cases", static_cast<double>(n));
  pv::testing::record_metric("mismatches", static_cast<double>(mismatches));
}

}  // namespace
}  // namespace pv::model
