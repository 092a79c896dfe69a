// pv tokenize: encode text to token ids, or decode ids to text, with the byte-level BPE
// tokenizer (model/tokenizer/tokenizer.h). The vocabulary comes from a model file's tokenizer
// (--model: GGUF tokenizer.ggml.* keys, through the model loader; or a directory's HF
// tokenizer.json, which needs no weights: a tokenizer-only directory works) or from a tokenizer
// JSON in the GGUF shape (--vocab: model/fixtures/tokenizer/vocab.json).
//
// --json is bytes-safe: ids decode to bytes that need not be UTF-8 (a token can hold half a
// character), so every token and the whole text come as exact hex bytes ("bytes_hex") plus text
// with U+FFFD for each invalid byte ("text"), and "valid_utf8" says whether any was replaced.
#include <fmt/format.h>

#include <charconv>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/loading/loader.h"
#include "model/tokenizer/bytes_text.h"
#include "model/tokenizer/hf_tokenizer.h"
#include "model/tokenizer/tokenizer.h"
#include "model/tokenizer/tokenizer_json.h"
#include "tools/command.h"

namespace {

struct TokenizeOptions {
  std::string model;
  std::string vocab;
  std::string text;
  std::string ids;
  bool json = false;
  bool no_special = false;
};

// "1,2, 3" -> ids; a malformed entry is a usage error naming its position.
std::vector<int32_t> parse_ids(const std::string& s) {
  std::vector<int32_t> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t comma = s.find(',', pos);
    if (comma == std::string::npos) comma = s.size();
    size_t b = pos, e = comma;
    while (b < e && s[b] == ' ') ++b;
    while (e > b && s[e - 1] == ' ') --e;
    int32_t v = 0;
    const auto [ptr, ec] = std::from_chars(s.data() + b, s.data() + e, v);
    if (b == e || ec != std::errc() || ptr != s.data() + e) {
      throw std::invalid_argument(
          fmt::format("--ids: entry {} ('{}') at character {} is not a token id", out.size() + 1,
                      s.substr(b, e - b), b + 1));
    }
    out.push_back(v);
    pos = comma + 1;
  }
  return out;
}

pv::model::TokenizerData tokenizer_data(const TokenizeOptions& o) {
  if (o.model.empty()) return pv::model::load_tokenizer_json(o.vocab);
  std::error_code ec;
  if (std::filesystem::is_directory(o.model, ec)) {
    // tokenizer.json is all a directory needs here: no config or weights are read.
    if (!pv::model::has_hf_tokenizer(o.model)) {
      throw pv::model::TokenizerError(o.model + ": no tokenizer.json in this directory");
    }
    return pv::model::load_hf_tokenizer(o.model);
  }
  pv::model::TokenizerData d = pv::model::load_model(o.model).tokenizer;
  if (!d.present) {
    throw pv::model::TokenizerError(o.model +
                                    ": the file has no tokenizer (no tokenizer.ggml.* keys)");
  }
  return d;
}

// One token's JSON: id, stored string, exact bytes, and text (U+FFFD where not UTF-8).
nlohmann::json token_json(const pv::model::Tokenizer& tok, int32_t id) {
  const int32_t one[] = {id};
  const std::string bytes = tok.decode(one);
  return {{"id", id},
          {"token", pv::model::utf8_with_replacement(tok.token(id))},
          {"bytes_hex", pv::model::bytes_hex(bytes)},
          {"text", pv::model::utf8_with_replacement(bytes)}};
}

void print_json(const pv::model::Tokenizer& tok, const std::vector<int32_t>& ids,
                const std::string& bytes) {
  nlohmann::json j{{"ids", ids},
                   {"text", pv::model::utf8_with_replacement(bytes)},
                   {"bytes_hex", pv::model::bytes_hex(bytes)},
                   {"valid_utf8", pv::model::is_valid_utf8(bytes)}};
  j["tokens"] = nlohmann::json::array();
  for (int32_t id : ids) j["tokens"].push_back(token_json(tok, id));
  std::cout << j.dump(1) << "\n";
}

int run_tokenize(const TokenizeOptions& o) {
  const pv::model::Tokenizer tok(tokenizer_data(o));
  if (!o.ids.empty()) {
    const std::vector<int32_t> ids = parse_ids(o.ids);
    const std::string text = tok.decode(ids);
    if (o.json) {
      print_json(tok, ids, text);
    } else {
      std::cout << text << "\n";
    }
    return 0;
  }
  const std::vector<int32_t> ids = tok.encode(o.text, !o.no_special, !o.no_special);
  if (o.json) {
    print_json(tok, ids, tok.decode(ids));
    return 0;
  }
  std::string line;
  for (size_t k = 0; k < ids.size(); ++k) line += (k ? "," : "") + std::to_string(ids[k]);
  std::cout << line << "\n";
  std::cerr << fmt::format("{} tokens, {} bytes, vocabulary {} ({} merges)\n", ids.size(),
                           o.text.size(), tok.vocab_size(), tok.merge_count());
  return 0;
}

std::function<int()> setup_tokenize(CLI::App& sub) {
  auto o = std::make_shared<TokenizeOptions>();
  auto* model = sub.add_option("--model", o->model,
                               "a .gguf file, or a directory with tokenizer.json (HF model "
                               "or tokenizer-only)")
                    ->check(CLI::ExistingPath);
  auto* vocab = sub.add_option("--vocab", o->vocab,
                               "tokenizer JSON with the tokenizer.ggml.* fields "
                               "(e.g. model/fixtures/tokenizer/vocab.json)")
                    ->check(CLI::ExistingFile);
  model->excludes(vocab);
  auto* text = sub.add_option("--text", o->text, "text to encode");
  auto* ids = sub.add_option("--ids", o->ids, "comma-separated ids to decode");
  text->excludes(ids);
  sub.add_flag("--json", o->json,
               "print JSON: ids, text (U+FFFD for invalid UTF-8), exact bytes_hex, per-token "
               "bytes");
  sub.add_flag("--no-special", o->no_special, "do not add bos or match control tokens in the text");
  return [o, text, ids, model, vocab]() {
    if (model->count() == 0 && vocab->count() == 0) {
      std::cerr << "pv tokenize: give --model PATH or --vocab JSON\n";
      return 2;
    }
    if (text->count() == 0 && ids->count() == 0) {
      std::cerr << "pv tokenize: give --text TEXT or --ids 1,2,3\n";
      return 2;
    }
    try {
      return run_tokenize(*o);
    } catch (const std::exception& e) {
      std::cerr << "pv tokenize: error: " << e.what() << "\n";
      return 2;
    }
  };
}

}  // namespace

// A named setup: the macro cannot take a lambda whose capture list has commas.
PV_COMMAND("tokenize", "Encode text to token ids or decode ids to text (byte-level BPE)",
           setup_tokenize);
