// Falsifiers of contracts/tokenizer-bpe-v1.yaml: pv's byte-level BPE tokenizer with the Qwen2
// pre-tokenizer (model/tokenizer/tokenizer.h) against its algorithmic properties, the fixture
// vocabulary, and HF tokenizers' own encodings of a varied text set (the oracle committed
// under model/fixtures/tokenizer/ by tools/tokenizer_oracle.py).
#include <gtest/gtest.h>
#include <rapidcheck.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "harness/testing/pv_test.h"
#include "model/loading/loader.h"
#include "model/tokenizer/pretokenize.h"
#include "model/tokenizer/pretokenize_unicode.h"
#include "model/tokenizer/tokenizer.h"
#include "model/tokenizer/tokenizer_json.h"

namespace pv::model {
namespace {

using Ids = std::vector<int32_t>;

// ---------------------------------------------------------------------------------------
// Helpers

// Runs a rapidcheck property with pv's seed; a failure records rapidcheck's shrunk
// counterexample in the evidence bundle.
template <typename Testable>
void check_property(const std::string& what, Testable&& testable, int max_success = 200) {
  rc::detail::TestParams params;
  params.seed = pv::testing::seed();
  params.maxSuccess = max_success;
  rc::detail::TestMetadata meta;
  meta.id = what;
  meta.description = what;
  const auto result = rc::detail::checkTestable(std::forward<Testable>(testable), meta, params);
  if (!result.template is<rc::detail::SuccessResult>()) {
    std::ostringstream msg;
    rc::detail::printResultMessage(result, msg);
    pv::testing::record_counterexample(msg.str());
    ADD_FAILURE() << what << ":\n" << msg.str();
  }
}

// Printable form of arbitrary bytes for failure messages and counterexamples.
std::string escape(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c >= 0x20 && c < 0x7F) {
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c >= 0x80) {
      out += static_cast<char>(c);  // keep UTF-8 readable; invalid bytes print as they are
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    }
  }
  return out;
}

std::string ids_text(const Ids& ids) {
  std::string s = "[";
  for (size_t k = 0; k < ids.size(); ++k) s += (k ? "," : "") + std::to_string(ids[k]);
  return s + "]";
}

std::string fmt_cp(char32_t cp) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "U+%04X", static_cast<unsigned>(cp));
  return buf;
}

std::string fixture_path(const char* name) {
  return pv::testing::source_dir() + "/model/fixtures/tokenizer/" + name;
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return nlohmann::json::parse(in);
}

// Byte-level tokenizer over the 256 byte characters plus `merges` (each "a b" adds the
// token "ab" when new), with the given control tokens appended.
TokenizerData synthetic(const std::vector<std::string>& merges,
                        const std::vector<std::string>& controls = {}) {
  TokenizerData d;
  d.present = true;
  d.model = "gpt2";
  d.pre = "qwen2";
  // No normalizer: these tests are about BPE and byte round trips of arbitrary text.
  d.normalizers = std::vector<std::string>{};
  for (int b = 0; b < 256; ++b) {
    d.tokens.push_back(bytes_to_mapped(std::string(1, static_cast<char>(b))));
  }
  for (const std::string& m : merges) {
    const size_t sp = m.find(' ');
    const std::string joined = m.substr(0, sp) + m.substr(sp + 1);
    if (std::find(d.tokens.begin(), d.tokens.end(), joined) == d.tokens.end()) {
      d.tokens.push_back(joined);
    }
  }
  d.token_types.assign(d.tokens.size(), static_cast<int32_t>(TokenType::kNormal));
  for (const std::string& c : controls) {
    d.tokens.push_back(c);
    d.token_types.push_back(static_cast<int32_t>(TokenType::kControl));
  }
  d.merges = merges;
  return d;
}

std::vector<std::string> token_strings(const Tokenizer& t, const Ids& ids) {
  std::vector<std::string> out;
  for (int32_t id : ids) out.push_back(t.token(id));
  return out;
}

std::vector<std::string> pieces_of(std::string_view text) {
  std::vector<Piece> pieces;
  pretokenize_qwen2(text, pieces);
  std::vector<std::string> out;
  for (const Piece& p : pieces) out.emplace_back(text.substr(p.begin, p.end - p.begin));
  return out;
}

// The fixture tokenizer and the oracle, or a fixture-absent skip.
#define PV_REQUIRE_TOKENIZER_FIXTURE()                                              \
  do {                                                                              \
    if (!std::filesystem::exists(fixture_path("vocab.json")) ||                     \
        !std::filesystem::exists(fixture_path("oracle.json"))) {                    \
      PV_SKIP_FIXTURE_ABSENT("tokenizer-oracle (model/fixtures/tokenizer/*.json)"); \
    }                                                                               \
  } while (0)

const Tokenizer& fixture_tokenizer() {
  static const Tokenizer t(load_tokenizer_json(fixture_path("vocab.json")));
  return t;
}

// ---------------------------------------------------------------------------------------
// PARTIAL_ALGORITHM_LEVEL: the pieces in isolation

TEST(Tokenizer, ByteMapIsGpt2Bijection) {
  std::vector<char32_t> image;
  for (int b = 0; b < 256; ++b) {
    const char32_t u = byte_to_unicode(static_cast<uint8_t>(b));
    image.push_back(u);
    EXPECT_EQ(unicode_to_byte(u), b) << "byte " << b;
  }
  std::sort(image.begin(), image.end());
  EXPECT_EQ(std::unique(image.begin(), image.end()), image.end()) << "two bytes share a char";
  // GPT-2's table: printable Latin-1 maps to itself; space, newline and tab are the 33rd,
  // 11th and 10th of the remapped bytes (U+0100 + index): 'Ġ', 'Ċ', 'ĉ'.
  EXPECT_EQ(byte_to_unicode('A'), U'A');
  EXPECT_EQ(byte_to_unicode(0xE9), U'\u00E9');
  EXPECT_EQ(byte_to_unicode(' '), U'\u0120');
  EXPECT_EQ(byte_to_unicode('\n'), U'\u010A');
  EXPECT_EQ(byte_to_unicode('\t'), U'\u0109');
  EXPECT_EQ(byte_to_unicode(0xAD), U'\u0143');
  EXPECT_EQ(byte_to_unicode(0x00), U'\u0100');
  EXPECT_EQ(unicode_to_byte(U'\u0144'), -1);
  EXPECT_EQ(unicode_to_byte(U'\u4F60'), -1);
}

TEST(Tokenizer, ByteRoundTripProperty) {
  const Tokenizer t(synthetic({"Ġ t", "h e", "Ġt he", "Ã ©"}));
  check_property("decode(encode(bytes)) == bytes for arbitrary bytes", [&] {
    const auto raw = *rc::gen::container<std::vector<uint8_t>>(rc::gen::arbitrary<uint8_t>());
    const std::string bytes(raw.begin(), raw.end());
    const Ids ids = t.encode(bytes);
    RC_ASSERT(t.decode(ids) == bytes);
    // The mapped form decodes back byte for byte, too.
    const std::string mapped = bytes_to_mapped(bytes);
    std::vector<DecodedChar> chars;
    decode_utf8(mapped, chars);
    RC_ASSERT(chars.size() == bytes.size());
    for (size_t k = 0; k < chars.size(); ++k) {
      RC_ASSERT(unicode_to_byte(chars[k].cp) == static_cast<uint8_t>(bytes[k]));
    }
  });
}

TEST(Tokenizer, MergeRankPrecedence) {
  auto enc = [](const std::vector<std::string>& merges, const char* word) {
    const Tokenizer t(synthetic(merges));
    Ids ids;
    t.encode_word(word, ids);
    return token_strings(t, ids);
  };
  using V = std::vector<std::string>;
  // The lower rank wins regardless of position.
  EXPECT_EQ(enc({"b c", "a b"}, "abc"), (V{"a", "bc"}));
  EXPECT_EQ(enc({"a b", "b c"}, "abc"), (V{"ab", "c"}));
  EXPECT_EQ(enc({"b c", "a b", "a bc"}, "abc"), (V{"abc"}));
  EXPECT_EQ(enc({"a b", "b c", "ab c"}, "abc"), (V{"abc"}));
  // Merges apply only to what earlier merges left: "a bc" never fires after "a b".
  EXPECT_EQ(enc({"a b", "b c", "a bc"}, "abc"), (V{"ab", "c"}));
  // Equal ranks: leftmost first, non-overlapping.
  EXPECT_EQ(enc({"a a"}, "aaa"), (V{"aa", "a"}));
  EXPECT_EQ(enc({"a a", "aa aa"}, "aaaa"), (V{"aaaa"}));
  // All rank-0 merges happen before any rank-1 merge: aaaaa -> aa aa a -> aa aaa.
  EXPECT_EQ(enc({"a a", "aa a"}, "aaaaa"), (V{"aa", "aaa"}));
  EXPECT_EQ(enc({}, "abc"), (V{"a", "b", "c"}));
  const Tokenizer t(synthetic({"b c", "a b"}));
  EXPECT_EQ(t.merge_rank("b", "c"), 0);
  EXPECT_EQ(t.merge_rank("a", "b"), 1);
  EXPECT_EQ(t.merge_rank("c", "a"), -1);
}

// The reference BPE, written the obvious quadratic way: repeatedly merge the lowest-rank
// adjacent pair, leftmost on ties, until no pair has a rank.
std::vector<std::string> naive_bpe(const std::vector<std::string>& merges, std::string_view w) {
  std::vector<std::string> sym;
  for (char c : w) sym.emplace_back(1, c);
  for (;;) {
    size_t best = SIZE_MAX, best_rank = SIZE_MAX;
    for (size_t k = 0; k + 1 < sym.size(); ++k) {
      const auto it = std::find(merges.begin(), merges.end(), sym[k] + " " + sym[k + 1]);
      const auto r = static_cast<size_t>(it - merges.begin());
      if (it != merges.end() && r < best_rank) best = k, best_rank = r;
    }
    if (best == SIZE_MAX) return sym;
    sym[best] += sym[best + 1];
    sym.erase(sym.begin() + static_cast<std::ptrdiff_t>(best) + 1);
  }
}

TEST(Tokenizer, HeapBpeEqualsNaiveBpeProperty) {
  check_property("priority-queue BPE == quadratic reference BPE", [] {
    // A random merge table over the letters a-d: each merge joins two existing tokens into a
    // new one, so every result is in the vocabulary and no two merges make the same token.
    std::vector<std::string> vocab = {"a", "b", "c", "d"};
    std::vector<std::string> merges;
    const int n_merges = *rc::gen::inRange(0, 40);
    for (int k = 0; k < n_merges; ++k) {
      const auto& l = vocab[*rc::gen::inRange<size_t>(0, vocab.size())];
      const auto& r = vocab[*rc::gen::inRange<size_t>(0, vocab.size())];
      if (l.size() + r.size() > 8) continue;
      const std::string joined = l + r;
      if (std::find(vocab.begin(), vocab.end(), joined) != vocab.end()) continue;
      merges.push_back(l + " " + r);
      vocab.push_back(joined);
    }
    const std::string word =
        *rc::gen::container<std::string>(rc::gen::elementOf(std::vector<char>{'a', 'b', 'c', 'd'}));
    RC_PRE(!word.empty());
    const Tokenizer t(synthetic(merges));
    Ids ids;
    t.encode_word(word, ids);
    RC_ASSERT(token_strings(t, ids) == naive_bpe(merges, word));
  });
}

TEST(Tokenizer, PretokenizerRegexSemantics) {
  using V = std::vector<std::string>;
  // Expected splits derived by hand from the regex's alternation order (see pretokenize.h);
  // the HF oracle (OraclePiecesMatchHfSplit) checks the same rules on thousands of inputs.
  EXPECT_EQ(pieces_of("Hello world"), (V{"Hello", " world"}));
  EXPECT_EQ(pieces_of("What is 2+2?"), (V{"What", " is", " ", "2", "+", "2", "?"}));
  EXPECT_EQ(pieces_of("it's THEY'RE"), (V{"it", "'s", " THEY", "'RE"}));
  EXPECT_EQ(pieces_of("'sa"), (V{"'s", "a"}));
  EXPECT_EQ(pieces_of("'la"), (V{"'la"}));
  EXPECT_EQ(pieces_of("x'\xC5\xBF"
                      "a"),
            (V{"x", "'\xC5\xBF", "a"}));  // 'ſ folds to 's
  EXPECT_EQ(pieces_of("  hi"), (V{" ", " hi"}));
  EXPECT_EQ(pieces_of("x   "), (V{"x", "   "}));
  EXPECT_EQ(pieces_of("a \n\n b"), (V{"a", " \n\n", " b"}));
  EXPECT_EQ(pieces_of("a !!\r\n\r\nb"), (V{"a", " !!\r\n\r\n", "b"}));
  EXPECT_EQ(pieces_of("\thi\t!"), (V{"\thi", "\t", "!"}));
  EXPECT_EQ(pieces_of("123"), (V{"1", "2", "3"}));
  EXPECT_EQ(pieces_of("\nhi"), (V{"\n", "hi"}));
  EXPECT_EQ(pieces_of("caf\xC3\xA9 \xE4\xBD\xA0\xE5\xA5\xBD"),
            (V{"caf\xC3\xA9", " \xE4\xBD\xA0\xE5\xA5\xBD"}));
  EXPECT_EQ(pieces_of(""), V{});
  // Invalid UTF-8 bytes are characters of class "other", one byte each.
  EXPECT_EQ(pieces_of("a\xFF\xFE b"), (V{"a", "\xFF\xFE", " b"}));
  EXPECT_EQ(pieces_of("\xC3"), (V{"\xC3"}));
  EXPECT_STREQ(kUnicodeVersion, "16.0.0");
  EXPECT_EQ(char_class(U'\u00A0'), CharClass::kSpace);
  EXPECT_EQ(char_class(U'\u001C'), CharClass::kOther);  // Python's isspace() says space
  EXPECT_EQ(char_class(U'\u0663'), CharClass::kNumber);
  EXPECT_EQ(char_class(U'\u2167'), CharClass::kNumber);  // Nl
  EXPECT_EQ(char_class(U'\u4F60'), CharClass::kLetter);
  EXPECT_EQ(char_class(U'\u0301'), CharClass::kOther);  // Mn: neither letter nor number
  EXPECT_EQ(char_class(0x1F600), CharClass::kOther);
  EXPECT_EQ(char_class(0x110000), CharClass::kOther);
}

// Arbitrary byte strings biased towards the characters the regex cares about.
rc::Gen<std::string> messy_text() {
  static const std::vector<std::string> frags = {"a",
                                                 "Z",
                                                 "7",
                                                 " ",
                                                 "  ",
                                                 "\t",
                                                 "\n",
                                                 "\r",
                                                 "'",
                                                 "s",
                                                 "LL",
                                                 "!",
                                                 "\xC3\xA9",
                                                 "\xE4\xBD\xA0",
                                                 "\xF0\x9F\x98\x80",
                                                 "\xE2\x80\x8D",
                                                 "\xC2\xA0",
                                                 "\xFF",
                                                 "\x80",
                                                 "\xC3",
                                                 "\xED\xA0\x80",
                                                 "<|x|>",
                                                 "<|"};
  return rc::gen::map(
      rc::gen::container<std::vector<std::string>>(rc::gen::oneOf(
          rc::gen::elementOf(frags),
          rc::gen::map(rc::gen::arbitrary<uint8_t>(),
                       [](uint8_t b) { return std::string(1, static_cast<char>(b)); }))),
      [](const std::vector<std::string>& parts) {
        std::string s;
        for (const auto& p : parts) s += p;
        return s;
      });
}

TEST(Tokenizer, PiecesTileInputProperty) {
  check_property("pre-tokens are non-empty, contiguous and cover every byte", [] {
    const std::string text = *messy_text();
    std::vector<Piece> pieces;
    pretokenize_qwen2(text, pieces);
    size_t at = 0;
    for (const Piece& p : pieces) {
      RC_ASSERT(p.begin == at);
      RC_ASSERT(p.end > p.begin);
      at = p.end;
    }
    RC_ASSERT(at == text.size());
  });
}

TEST(Tokenizer, ControlTokensMatchWholeLeftmostLongest) {
  const Tokenizer t(synthetic({"Ġ t"}, {"<|a|>", "<|a|>b", "<|end|>"}));
  const int32_t a = t.token_id("<|a|>"), ab = t.token_id("<|a|>b"), end = t.token_id("<|end|>");
  ASSERT_GE(a, 0);
  Ids ids = t.encode("x<|a|>b<|a|> t<|end|>");
  Ids want;
  t.encode_word("x", want);
  want.push_back(ab);
  want.push_back(a);
  t.encode_word(" t", want);
  want.push_back(end);
  EXPECT_EQ(ids, want);
  EXPECT_EQ(t.decode(ids), "x<|a|>b<|a|> t<|end|>");
  // Not parsed: the same text is plain bytes, and no control id appears.
  const Ids plain = t.encode("<|a|>", true, false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), a), 0);
  EXPECT_EQ(t.decode(plain), "<|a|>");
  EXPECT_EQ(t.encode("<|a|"), t.encode("<|a|", true, false));  // partial: no match
}

TEST(Tokenizer, RejectsInconsistentData) {
  auto error_of = [](TokenizerData d) -> std::string {
    try {
      Tokenizer t(d);
    } catch (const TokenizerError& e) {
      return e.what();
    }
    return "";
  };
  const TokenizerData good = synthetic({"a b"});
  EXPECT_EQ(error_of(good), "");
  auto with = [&](auto edit) {
    TokenizerData d = good;
    edit(d);
    return error_of(d);
  };
  EXPECT_NE(with([](auto& d) { d.present = false; }).find("no tokenizer"), std::string::npos);
  EXPECT_NE(with([](auto& d) { d.model = "llama"; }).find("'llama'"), std::string::npos);
  EXPECT_NE(with([](auto& d) { d.pre = "gpt-4o"; }).find("tokenizer.ggml.pre is 'gpt-4o'"),
            std::string::npos);
  EXPECT_NE(with([](auto& d) { d.merges.push_back("a q9"); }).find("merges[1]"), std::string::npos);
  EXPECT_NE(with([](auto& d) { d.merges.push_back("ab"); }).find("one space"), std::string::npos);
  EXPECT_NE(with([](auto& d) { d.merges.push_back("b a"); }).find("merged token 'ba'"),
            std::string::npos);
  EXPECT_NE(with([](auto& d) { d.token_types.pop_back(); }).find("token_type has"),
            std::string::npos);
  EXPECT_NE(with([](auto& d) { d.token_types[3] = 9; }).find("token_type[3] = 9"),
            std::string::npos);
  EXPECT_NE(with([](auto& d) { d.bos = 100000; }).find("bos_token_id = 100000"), std::string::npos);
  EXPECT_NE(
      with([](auto& d) { d.tokens[static_cast<unsigned char>('A')] = "A2"; }).find("byte 0x41"),
      std::string::npos);
  EXPECT_NE(with([](auto& d) {
              d.tokens.clear();
              d.token_types.clear();
            }).find("empty"),
            std::string::npos);
  const Tokenizer t(good);
  const Ids bad = {1, -3};
  EXPECT_THROW(t.decode(bad), TokenizerError);
  EXPECT_THROW(t.token(static_cast<int32_t>(t.vocab_size())), TokenizerError);
}

// ---------------------------------------------------------------------------------------
// FUNCTIONAL: the fixture vocabulary (HF-trained, in the GGUF tokenizer.ggml.* shape) end to
// end: load, encode, decode.

TEST(Tokenizer, FixtureTextRoundTrip) {
  PV_REQUIRE_TOKENIZER_FIXTURE();
  const Tokenizer& t = fixture_tokenizer();
  EXPECT_EQ(t.vocab_size(), read_json(fixture_path("vocab.json"))["tokens"].size());
  const auto cases = read_json(fixture_path("cases.json"))["cases"];
  std::ifstream in(fixture_path("train.txt"), std::ios::binary);
  std::string train((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> texts;
  for (const auto& c : cases) texts.push_back(c.get<std::string>());
  texts.push_back(train);
  size_t bytes = 0, tokens = 0, failures = 0;
  for (const std::string& text : texts) {
    const Ids ids = t.encode(text);
    bytes += text.size();
    tokens += ids.size();
    const std::string back = t.decode(ids);
    if (back != text) {
      if (failures++ == 0) pv::testing::record_counterexample("round trip of: " + escape(text));
      ADD_FAILURE() << "decode(encode(x)) != x for x = \"" << escape(text) << "\" -> \""
                    << escape(back) << "\"";
    }
  }
  pv::testing::record_metric("texts", static_cast<double>(texts.size()));
  pv::testing::record_metric("round_trip_failures", static_cast<double>(failures));
  pv::testing::record_metric("bytes_per_token", static_cast<double>(bytes) / tokens);
}

TEST(Tokenizer, FixtureArbitraryBytesRoundTrip) {
  PV_REQUIRE_TOKENIZER_FIXTURE();
  const Tokenizer& t = fixture_tokenizer();
  check_property("fixture tokenizer: decode(encode(x)) == x on messy bytes", [&] {
    const std::string text = *messy_text();
    RC_ASSERT(t.decode(t.encode(text)) == text);
  });
}

// Every committed GGUF fixture that carries tokenizer.ggml.* keys, read through the model
// loader (load_model), must hold the oracle vocabulary and tokenize like HF. At least
// model/fixtures/tokenizer/tokenizer-carrier-qwen2-f32.gguf does (tools/tokenizer_oracle.py
// gguf); the model fixtures that embed the vocabulary are checked the same way.
TEST(Tokenizer, GgufTokenizerMatchesOracle) {
  PV_REQUIRE_TOKENIZER_FIXTURE();
  std::vector<std::string> ggufs;
  const std::filesystem::path root = pv::testing::source_dir() + "/model/fixtures";
  if (std::filesystem::exists(root)) {
    for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
      if (e.is_regular_file() && e.path().extension() == ".gguf") ggufs.push_back(e.path());
    }
  }
  std::sort(ggufs.begin(), ggufs.end());
  const auto vocab = read_json(fixture_path("vocab.json"));
  const auto want_tokens = vocab["tokens"].get<std::vector<std::string>>();
  const auto want_merges = vocab["merges"].get<std::vector<std::string>>();
  const auto oracle = read_json(fixture_path("oracle.json"));
  size_t files = 0, cases = 0, mismatches = 0, nfc_changed = 0, unloadable = 0;
  std::string load_error;
  for (const std::string& path : ggufs) {
    LoadedModel m;
    try {
      m = load_model(path);
    } catch (const std::exception& e) {
      // A deliberately malformed file belongs to the loader's own falsifiers, not this one.
      std::printf("skipping %s: %s\n", path.c_str(), e.what());
      ++unloadable;
      load_error = path + ": " + e.what();
      continue;
    }
    if (!m.tokenizer.present) continue;
    ++files;
    // The fixture's vocabulary may be padded past the tokenizer's (to the model's vocab).
    ASSERT_GE(m.tokenizer.tokens.size(), want_tokens.size()) << path;
    EXPECT_TRUE(std::equal(want_tokens.begin(), want_tokens.end(), m.tokenizer.tokens.begin()))
        << path << ": token strings differ from vocab.json";
    EXPECT_EQ(m.tokenizer.merges, want_merges) << path;
    const Tokenizer t(m.tokenizer);
    // GGUF states no normalizer, so qwen2 gets NFC (tokenizer.h); the oracle's HF tokenizer had
    // none. Where NFC changes a text, the expectation is HF's tokenization of the NFC text, by
    // way of vocab.json's tokenizer (no normalizer; OracleIdsMatchHf holds it to HF).
    const Normalizer nfc({NormalizationForm::kNFC});
    for (const auto& c : oracle["cases"]) {
      const std::string text = c["text"].get<std::string>();
      std::string norm;
      const bool changed = nfc.apply(text, norm);
      if (!changed) norm = text;
      nfc_changed += changed;
      const Ids want = changed ? fixture_tokenizer().encode(norm) : c["ids"].get<Ids>();
      const Ids got = t.encode(text);
      ++cases;
      if (got != want || t.decode(got) != norm) {
        const std::string msg = path + ": text \"" + escape(text) + "\": pv " + ids_text(got) +
                                " vs HF " + ids_text(want);
        if (mismatches++ == 0) pv::testing::record_counterexample(msg);
        if (mismatches <= 10) ADD_FAILURE() << msg;
      }
    }
  }
  // Files that exist but none of which loads is a broken loader, not an absent fixture.
  if (files == 0 && unloadable > 0) {
    FAIL() << "all " << unloadable
           << " GGUF file(s) with a tokenizer candidate failed to load; the last: " << load_error;
  }
  if (files == 0) {
    PV_SKIP_FIXTURE_ABSENT("gguf-tokenizer (no model/fixtures/**/*.gguf with tokenizer.ggml.*)");
  }
  EXPECT_EQ(mismatches, 0u);
  pv::testing::record_metric("gguf_files", static_cast<double>(files));
  pv::testing::record_metric("oracle_cases", static_cast<double>(cases));
  pv::testing::record_metric("mismatches", static_cast<double>(mismatches));
  pv::testing::record_metric("nfc_changed_cases", static_cast<double>(nfc_changed));
}

// ---------------------------------------------------------------------------------------
// DISCHARGED: id for id against HF tokenizers (an implementation nobody here wrote).

TEST(Tokenizer, OracleIdsMatchHf) {
  PV_REQUIRE_TOKENIZER_FIXTURE();
  const Tokenizer& t = fixture_tokenizer();
  const auto oracle = read_json(fixture_path("oracle.json"));
  size_t n = 0, mismatches = 0;
  for (const auto& c : oracle["cases"]) {
    const std::string text = c["text"].get<std::string>();
    const Ids want = c["ids"].get<Ids>();
    const Ids got = t.encode(text);
    ++n;
    if (got != want) {
      const std::string msg =
          "text \"" + escape(text) + "\": pv " + ids_text(got) + " vs HF " + ids_text(want);
      if (mismatches++ == 0) pv::testing::record_counterexample(msg);
      if (mismatches <= 20) ADD_FAILURE() << msg;
    }
  }
  EXPECT_GT(n, 700u) << "oracle has too few cases";
  EXPECT_EQ(mismatches, 0u);
  pv::testing::record_metric("oracle_cases", static_cast<double>(n));
  pv::testing::record_metric("mismatches", static_cast<double>(mismatches));
  pv::testing::record_metric("pass_rate", n ? static_cast<double>(n - mismatches) / n : 0.0);
}

TEST(Tokenizer, OracleDecodeMatchesHf) {
  PV_REQUIRE_TOKENIZER_FIXTURE();
  const Tokenizer& t = fixture_tokenizer();
  const auto oracle = read_json(fixture_path("oracle.json"));
  size_t n = 0, mismatches = 0;
  for (const auto& c : oracle["cases"]) {
    const std::string want = c["decoded"].get<std::string>();
    const std::string got = t.decode(c["ids"].get<Ids>());
    ++n;
    if (got != want) {
      const std::string msg = "ids " + ids_text(c["ids"].get<Ids>()) + ": pv \"" + escape(got) +
                              "\" vs HF \"" + escape(want) + "\"";
      if (mismatches++ == 0) pv::testing::record_counterexample(msg);
      if (mismatches <= 20) ADD_FAILURE() << msg;
    }
  }
  EXPECT_EQ(mismatches, 0u);
  pv::testing::record_metric("oracle_cases", static_cast<double>(n));
  pv::testing::record_metric("mismatches", static_cast<double>(mismatches));
}

TEST(Tokenizer, OraclePiecesMatchHfSplit) {
  PV_REQUIRE_TOKENIZER_FIXTURE();
  if (!std::filesystem::exists(fixture_path("fuzz.json"))) {
    PV_SKIP_FIXTURE_ABSENT("tokenizer-oracle (model/fixtures/tokenizer/fuzz.json)");
  }
  size_t n = 0, mismatches = 0;
  for (const char* file : {"oracle.json", "fuzz.json"}) {
    const auto oracle = read_json(fixture_path(file));
    for (const auto& c : oracle["cases"]) {
      const std::string text = c["text"].get<std::string>();
      const auto want = c["pieces"].get<std::vector<std::string>>();
      const auto got = pieces_of(text);
      ++n;
      if (got != want) {
        std::string msg = std::string(file) + ": text \"" + escape(text) + "\": pv";
        for (const auto& p : got) msg += " [" + escape(p) + "]";
        msg += " vs HF";
        for (const auto& p : want) msg += " [" + escape(p) + "]";
        if (mismatches++ == 0) pv::testing::record_counterexample(msg);
        if (mismatches <= 20) ADD_FAILURE() << msg;
      }
    }
  }
  EXPECT_GT(n, 3000u) << "oracle has too few split cases";
  EXPECT_EQ(mismatches, 0u);
  pv::testing::record_metric("split_cases", static_cast<double>(n));
  pv::testing::record_metric("mismatches", static_cast<double>(mismatches));
}

// HF's regex engine, probed on every code point (tools/tokenizer_oracle.py classes): the
// class tables must agree everywhere, unassigned and newly assigned code points included.
TEST(Tokenizer, CharClassesMatchHfEveryCodePoint) {
  PV_REQUIRE_TOKENIZER_FIXTURE();
  if (!std::filesystem::exists(fixture_path("char_classes.json"))) {
    PV_SKIP_FIXTURE_ABSENT("tokenizer-oracle (model/fixtures/tokenizer/char_classes.json)");
  }
  const auto j = read_json(fixture_path("char_classes.json"));
  std::vector<unsigned char> hf(0x110000, 0);
  for (const auto& r : j["ranges"]) {
    for (uint32_t cp = r[0].get<uint32_t>(); cp <= r[1].get<uint32_t>(); ++cp) {
      hf[cp] = r[2].get<unsigned char>();
    }
  }
  size_t checked = 0, mismatches = 0;
  for (char32_t cp = 0; cp < 0x110000; ++cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;  // not encodable; HF cannot see them either
    ++checked;
    const auto mine = static_cast<unsigned char>(char_class(cp));
    if (mine != hf[cp]) {
      const std::string msg = fmt_cp(cp) + ": pv class " + std::to_string(mine) + ", HF class " +
                              std::to_string(hf[cp]) + " (1 L, 2 N, 3 space, 0 other)";
      if (mismatches++ == 0) pv::testing::record_counterexample(msg);
      if (mismatches <= 20) ADD_FAILURE() << msg;
    }
  }
  EXPECT_EQ(mismatches, 0u);
  pv::testing::record_metric("code_points", static_cast<double>(checked));
  pv::testing::record_metric("mismatches", static_cast<double>(mismatches));
}

// The letters HF's case-insensitive contraction alternative accepts in each slot, probed with
// the same strings through pv's pre-tokenizer.
TEST(Tokenizer, ContractionFoldsMatchHf) {
  PV_REQUIRE_TOKENIZER_FIXTURE();
  if (!std::filesystem::exists(fixture_path("char_classes.json"))) {
    PV_SKIP_FIXTURE_ABSENT("tokenizer-oracle (model/fixtures/tokenizer/char_classes.json)");
  }
  const auto slots = read_json(fixture_path("char_classes.json"))["contraction_slots"];
  using V = std::vector<std::string>;
  struct Probe {
    const char* slot;
    std::function<std::string(const std::string&)> text;
    std::function<V(const std::string&)> contraction;
  };
  const std::vector<Probe> probes = {
      {"one_letter", [](const std::string& c) { return "x'" + c + "a"; },
       [](const std::string& c) {
         return V{"x", "'" + c, "a"};
       }},
      {"first_of_re_ve", [](const std::string& c) { return "x'" + c + "ea"; },
       [](const std::string& c) {
         return V{"x", "'" + c + "e", "a"};
       }},
      {"second_of_re", [](const std::string& c) { return "x'r" + c + "a"; },
       [](const std::string& c) {
         return V{"x", "'r" + c, "a"};
       }},
      {"first_of_ll", [](const std::string& c) { return "x'" + c + "la"; },
       [](const std::string& c) {
         return V{"x", "'" + c + "l", "a"};
       }},
      {"second_of_ll", [](const std::string& c) { return "x'l" + c + "a"; },
       [](const std::string& c) {
         return V{"x", "'l" + c, "a"};
       }},
  };
  size_t letters = 0, mismatches = 0;
  for (const Probe& p : probes) {
    const auto want = slots[p.slot].get<std::vector<uint32_t>>();
    std::vector<uint32_t> got;
    for (char32_t cp = 0; cp < 0x110000; ++cp) {
      if (char_class(cp) != CharClass::kLetter) continue;
      letters += &p == &probes.front();
      std::string c;
      append_utf8(c, cp);
      if (pieces_of(p.text(c)) == p.contraction(c)) got.push_back(cp);
    }
    if (got != want) {
      std::string msg = std::string("slot ") + p.slot + ": pv accepts";
      for (uint32_t cp : got) msg += " " + fmt_cp(cp);
      msg += ", HF accepts";
      for (uint32_t cp : want) msg += " " + fmt_cp(cp);
      if (mismatches++ == 0) pv::testing::record_counterexample(msg);
      ADD_FAILURE() << msg;
    }
  }
  pv::testing::record_metric("letters_probed", static_cast<double>(letters));
  pv::testing::record_metric("mismatches", static_cast<double>(mismatches));
}

}  // namespace
}  // namespace pv::model
