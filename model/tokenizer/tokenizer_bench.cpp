// Tokenizer throughput in MB/s of input text (Google Benchmark's bytes_per_second), on about
// 1 MB of the fixture's mixed training text (English, code, numbers, accents, CJK, Cyrillic,
// emoji) with the HF-trained fixture vocabulary. Side by side in one run:
//   Pretokenize         the Qwen2 regex split alone (an upper bound for encode)
//   Encode/cache        full encode, per-word cache warm (the steady state)
//   Encode/nocache      full encode, every word merged from bytes
//   EncodeNfc           Encode/cache behind an NFC normalizer (ICU)
//   LongWord/N          one N-byte word without spaces: the merge loop's scaling in N
#include <benchmark/benchmark.h>

#include <fstream>
#include <string>
#include <vector>

#include "model/tokenizer/pretokenize.h"
#include "model/tokenizer/tokenizer.h"
#include "model/tokenizer/tokenizer_json.h"

namespace {

const std::string& fixture_dir() {
  static const std::string d = std::string(PV_SOURCE_DIR) + "/model/fixtures/tokenizer/";
  return d;
}

const std::string& megabyte_text() {
  static const std::string text = [] {
    std::ifstream in(fixture_dir() + "train.txt", std::ios::binary);
    const std::string one((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::string t;
    while (!one.empty() && t.size() < (1u << 20)) t += one;
    return t;
  }();
  return text;
}

pv::model::Tokenizer make_tokenizer() {
  return pv::model::Tokenizer(pv::model::load_tokenizer_json(fixture_dir() + "vocab.json"));
}

void BM_Pretokenize(benchmark::State& state) {
  const std::string& text = megabyte_text();
  std::vector<pv::model::DecodedChar> chars;
  std::vector<pv::model::Piece> pieces;
  for (auto _ : state) {
    pieces.clear();
    pv::model::pretokenize_qwen2(text, chars, pieces);
    benchmark::DoNotOptimize(pieces.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["pieces"] = static_cast<double>(pieces.size());
}
BENCHMARK(BM_Pretokenize)->Unit(benchmark::kMillisecond);

// Full encode with Qwen's NFC normalizer in front (the fixture vocabulary states none): the
// cost of the normalization pass. The text is already NFC, as most text is, so this measures
// ICU's quick check; cache on.
void BM_EncodeNfc(benchmark::State& state) {
  const std::string& text = megabyte_text();
  pv::model::TokenizerData d = pv::model::load_tokenizer_json(fixture_dir() + "vocab.json");
  d.normalizers = std::vector<std::string>{"NFC"};
  const pv::model::Tokenizer tok(d);
  size_t n = 0;
  for (auto _ : state) {
    const auto ids = tok.encode(text);
    n = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["tokens"] = static_cast<double>(n);
}
BENCHMARK(BM_EncodeNfc)->Unit(benchmark::kMillisecond);

void BM_Encode(benchmark::State& state) {
  const std::string& text = megabyte_text();
  pv::model::Tokenizer tok = make_tokenizer();
  tok.set_word_cache_enabled(state.range(0) != 0);
  size_t n = 0;
  for (auto _ : state) {
    const auto ids = tok.encode(text);
    n = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["tokens"] = static_cast<double>(n);
  state.SetLabel(state.range(0) ? "cache" : "nocache");
}
BENCHMARK(BM_Encode)->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond);

void BM_Decode(benchmark::State& state) {
  const std::string& text = megabyte_text();
  const pv::model::Tokenizer tok = make_tokenizer();
  const auto ids = tok.encode(text);
  for (auto _ : state) {
    const std::string out = tok.decode(ids);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}
BENCHMARK(BM_Decode)->Unit(benchmark::kMillisecond);

void BM_LongWord(benchmark::State& state) {
  // Letters from the training vocabulary, no spaces: one pre-token of N bytes.
  const std::string unit = "thequickbrownfoxjumpsoverthelazydog";
  std::string word;
  while (word.size() < static_cast<size_t>(state.range(0))) word += unit;
  word.resize(static_cast<size_t>(state.range(0)));
  pv::model::Tokenizer tok = make_tokenizer();
  tok.set_word_cache_enabled(false);
  for (auto _ : state) {
    const auto ids = tok.encode(word);
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * word.size()));
  state.SetComplexityN(state.range(0));
}
BENCHMARK(BM_LongWord)->RangeMultiplier(8)->Range(1 << 10, 1 << 19)->Complexity();

}  // namespace
