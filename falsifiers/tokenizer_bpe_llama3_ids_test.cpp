// Falsifier of contracts/tokenizer-bpe-v1.yaml for Llama 3 token ids: the whole encode path
// (special tokens, the llama-bpe pre-tokenizer, ignore_merges, the byte-level BPE, the
// TemplateProcessing bos) against HF tokenizers on a tokenizer.json built the way Meta's is.
// Meta's vocabulary cannot be committed (Llama 3 Community License), so
// tools/tokenizer_oracle.py oracle-llama3 trained a small byte-level BPE on
// model/fixtures/tokenizer/train.txt with Llama 3's exact pre-tokenizer, post-processor,
// decoder, ignore_merges = true and Llama 3.1's 256 added special tokens, and gave some
// pre-tokens of the test texts vocabulary entries their merges cannot reach (as tiktoken-derived
// vocabularies have): on those, ignore_merges decides the ids. HF's ids with and without the
// bos, its decodes, and its ids with ignore_merges off where they differ, are in
// llama3-bpe/oracle-hf.json.xz. pv reads the tokenizer.json through its real loader.
#include <gtest/gtest.h>
#include <lzma.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "harness/sha256.h"
#include "harness/testing/pv_test.h"
#include "model/tokenizer/hf_tokenizer.h"
#include "model/tokenizer/pretokenize.h"
#include "model/tokenizer/tokenizer.h"

namespace pv::model {
namespace {

using nlohmann::json;
using Ids = std::vector<int32_t>;

std::string fixture(const std::string& name) {
  return pv::testing::source_dir() + "/model/fixtures/tokenizer/llama3-bpe/" + name;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open (the fixture is committed)");
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string xz_decompress(const std::string& path) {
  const std::string in = read_file(path);
  lzma_stream strm = LZMA_STREAM_INIT;
  if (lzma_stream_decoder(&strm, UINT64_MAX, 0) != LZMA_OK) {
    throw std::runtime_error("lzma_stream_decoder failed");
  }
  std::string out;
  std::vector<uint8_t> buf(1 << 20);
  strm.next_in = reinterpret_cast<const uint8_t*>(in.data());
  strm.avail_in = in.size();
  lzma_ret ret = LZMA_OK;
  while (ret == LZMA_OK) {
    strm.next_out = buf.data();
    strm.avail_out = buf.size();
    ret = lzma_code(&strm, LZMA_FINISH);
    out.append(reinterpret_cast<const char*>(buf.data()), buf.size() - strm.avail_out);
  }
  lzma_end(&strm);
  if (ret != LZMA_STREAM_END) throw std::runtime_error(path + ": xz data is corrupt");
  return out;
}

// The oracle, parsed once per process; a missing or unreadable file fails the test.
const json& oracle() {
  static const json j = [] {
    const json o = json::parse(xz_decompress(fixture("oracle-hf.json.xz")), nullptr, false);
    if (o.is_discarded() || !o.contains("cases") || !o["cases"].is_array()) {
      throw std::runtime_error(fixture("oracle-hf.json.xz") + ": not an oracle (no cases)");
    }
    return o;
  }();
  return j;
}

std::string ids_text(const Ids& ids) {
  std::string s = "[";
  for (size_t k = 0; k < ids.size(); ++k) s += (k ? "," : "") + std::to_string(ids[k]);
  return s + "]";
}

// Control bytes as \xNN so a failure message shows the text.
std::string escape(const std::string& s) {
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

TEST(TokenizerLlama3Ids, LoaderReadsLlama3TokenizerJson) {
  const json& o = oracle();
  // The tokenizer.json is the one the oracle encoded with.
  EXPECT_EQ(pv::harness::sha256_hex(read_file(fixture("tokenizer.json"))),
            o.value("tokenizer_sha256", ""))
      << fixture("tokenizer.json") << " is not the file the oracle ran";
  EXPECT_EQ(o.value("pattern", ""), pretokenizer_regex(PreTokenizerKind::kLlama3));

  const TokenizerData d = load_hf_tokenizer(fixture("tokenizer.json"));
  EXPECT_EQ(d.pre, "llama-bpe");
  ASSERT_TRUE(d.ignore_merges.has_value());
  EXPECT_TRUE(*d.ignore_merges) << "model.ignore_merges = true was not read";
  ASSERT_TRUE(d.normalizers.has_value());
  EXPECT_TRUE(d.normalizers->empty()) << "Llama 3's normalizer is null";
  const Tokenizer t(d);
  EXPECT_EQ(t.pretokenizer(), PreTokenizerKind::kLlama3);
  EXPECT_TRUE(t.ignore_merges());
  const auto model_vocab = o.at("model_vocab").get<int32_t>();
  const auto specials = o.at("added_special_tokens").get<int32_t>();
  EXPECT_EQ(t.vocab_size(), static_cast<size_t>(model_vocab + specials));
  EXPECT_EQ(t.merge_count(), o.at("merges").get<size_t>());
  // TemplateProcessing "<|begin_of_text|> $A": bos added by encode(add_special = true).
  EXPECT_EQ(t.bos_id(), o.at("bos_id").get<int32_t>());
  EXPECT_EQ(t.token_id("<|begin_of_text|>"), t.bos_id());
  EXPECT_TRUE(t.add_bos());
  // Every added token is special = true: matched whole, decoded as its text.
  for (int32_t id = model_vocab; id < model_vocab + specials; ++id) {
    EXPECT_EQ(t.token_type(id), TokenType::kControl) << "token " << id << " " << t.token(id);
  }
  EXPECT_EQ(t.token_id("<|eot_id|>"), model_vocab + 9);  // Llama 3.1's order
  EXPECT_EQ(t.token_id("<|reserved_special_token_247|>"), model_vocab + specials - 1);
}

// pv's ids (with and without the bos) and decodes equal HF's on every text; where HF's ids
// depend on ignore_merges, pv with ignore_merges switched off gives HF's other ids too.
TEST(TokenizerLlama3Ids, IdsMatchHfTokenizers) {
  const json& o = oracle();
  TokenizerData d = load_hf_tokenizer(fixture("tokenizer.json"));
  const Tokenizer t(d);
  d.ignore_merges = false;
  const Tokenizer by_merges(d);

  // mismatches counts texts with at least one differing result; failures, the results.
  size_t n = 0, mismatches = 0, failures = 0, depends = 0;
  bool text_failed = false;
  auto fail = [&](const std::string& msg) {
    if (failures++ == 0) pv::testing::record_counterexample(msg);
    if (failures <= 20) ADD_FAILURE() << msg;
    if (!text_failed) ++mismatches;
    text_failed = true;
  };
  for (const json& c : o["cases"]) {
    text_failed = false;
    const std::string text = c.at("text").get<std::string>();
    const Ids ids = c.at("ids").get<Ids>(), ids_special = c.at("ids_special").get<Ids>();
    ++n;
    const Ids got = t.encode(text, /*add_special=*/false);
    const Ids got_special = t.encode(text, /*add_special=*/true);
    if (got != ids) {
      fail("\"" + escape(text) + "\": pv " + ids_text(got) + " vs HF " + ids_text(ids));
    }
    if (got_special != ids_special) {
      fail("\"" + escape(text) + "\" with specials: pv " + ids_text(got_special) + " vs HF " +
           ids_text(ids_special));
    }
    if (t.decode(ids) != c.at("decoded").get<std::string>()) {
      fail("decode " + ids_text(ids) + ": pv \"" + escape(t.decode(ids)) + "\"");
    }
    if (t.decode(ids_special) != c.at("decoded_special").get<std::string>()) {
      fail("decode " + ids_text(ids_special) + ": pv \"" + escape(t.decode(ids_special)) + "\"");
    }
    const Ids want_merges = c.contains("ids_without_ignore_merges")
                                ? c.at("ids_without_ignore_merges").get<Ids>()
                                : ids;
    if (want_merges != ids) ++depends;
    const Ids got_merges = by_merges.encode(text, /*add_special=*/false);
    if (got_merges != want_merges) {
      fail("\"" + escape(text) + "\" with ignore_merges off: pv " + ids_text(got_merges) +
           " vs HF " + ids_text(want_merges));
    }
  }
  // cases.json (798) + fuzz_inputs.json (3000) + digit-heavy (49) + special-token texts (15)
  // + upper-case contractions glued to letters (351) + two texts per unreachable word.
  EXPECT_GE(n, 4213u) << "the oracle covers fewer texts than its inputs";
  // Without texts whose ids depend on ignore_merges the fixture could not see it ignored.
  EXPECT_GT(depends, 0u) << "no text's ids depend on ignore_merges";
  EXPECT_EQ(static_cast<double>(depends), o.value("texts_where_ignore_merges_changes_ids", -1.0));
  // Likewise for a pre-tokenizer whose contraction alternative lost (?i:...): HF counted the
  // texts whose ids that regex changes (most contractions are followed by a space, where
  // the pieces coincide).
  EXPECT_GT(o.value("texts_where_case_sensitive_contractions_change_ids", 0), 0)
      << "no text's ids depend on the contraction alternative's case folding";
  std::printf(
      "llama3 ids vs %s: %zu texts (%zu depend on ignore_merges), %zu mismatching texts "
      "(%zu results)\n",
      o.value("oracle", "?").c_str(), n, depends, mismatches, failures);
  pv::testing::record_metric("llama3_id_cases", static_cast<double>(n));
  pv::testing::record_metric("ignore_merges_cases", static_cast<double>(depends));
  pv::testing::record_metric("mismatches", static_cast<double>(mismatches));
}

}  // namespace
}  // namespace pv::model
