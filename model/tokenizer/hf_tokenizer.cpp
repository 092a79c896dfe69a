#include "model/tokenizer/hf_tokenizer.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "model/formats/mapped_file.h"
#include "model/tokenizer/pretokenize.h"
#include "model/tokenizer/tokenizer.h"

namespace pv::model {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Far above any real tokenizer (Qwen3's tokenizer.json is 11 MB), far below memory trouble.
constexpr uint64_t kMaxTokenizerJsonBytes = 256ull << 20;

nlohmann::json read_json_file(const std::string& path) {
  // A FIFO or device must be refused before it is read (a FIFO would block forever).
  std::string text;
  try {
    text = read_small_file(path, kMaxTokenizerJsonBytes);
  } catch (const FormatError& e) {
    throw TokenizerError(e.what());
  }
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    throw TokenizerError(fmt::format("{}: invalid JSON at byte {}: {}", path, e.byte, e.what()));
  }
}

struct Reader {
  std::string file;

  [[noreturn]] void fail(const std::string& where, const std::string& what) const {
    throw TokenizerError(fmt::format("{}: {}: {}", file, where, what));
  }
  const json& at(const json& j, const std::string& where, const char* key) const {
    if (!j.is_object() || !j.contains(key)) fail(where, fmt::format("missing key '{}'", key));
    return j.at(key);
  }
  std::string str(const json& j, const std::string& where) const {
    if (!j.is_string()) fail(where, fmt::format("expected a string, found {}", j.dump()));
    return j.get<std::string>();
  }
  bool flag(const json& j, const char* key, const std::string& where, bool dflt) const {
    if (!j.contains(key) || j.at(key).is_null()) return dflt;
    if (!j.at(key).is_boolean()) fail(where + "." + key, "expected true or false");
    return j.at(key).get<bool>();
  }
  std::string type(const json& j, const std::string& where) const {
    return str(at(j, where, "type"), where + ".type");
  }
};

void read_normalizer(const Reader& r, const json& j, const std::string& where,
                     std::vector<std::string>& out) {
  if (j.is_null()) return;
  const std::string t = r.type(j, where);
  if (t == "Sequence") {
    const json& list = r.at(j, where, "normalizers");
    if (!list.is_array()) r.fail(where + ".normalizers", "expected an array");
    for (size_t k = 0; k < list.size(); ++k) {
      read_normalizer(r, list[k], fmt::format("{}.normalizers[{}]", where, k), out);
    }
    return;
  }
  NormalizationForm f;
  if (!parse_normalization_form(t, f)) {
    r.fail(
        where + ".type",
        fmt::format("normalizer '{}' is not implemented (pv: NFC, NFKC, NFD, NFKD, Sequence)", t));
  }
  out.push_back(t);
}

std::string read_pre_tokenizer(const Reader& r, const json& j) {
  const std::string where = "pre_tokenizer";
  const char* expected =
      "expected Sequence[Split(Regex, behavior Isolated), ByteLevel(add_prefix_space false, "
      "use_regex false)], Qwen2's or Llama 3's";
  if (j.is_null()) r.fail(where, std::string("is null; ") + expected);
  if (r.type(j, where) != "Sequence") {
    r.fail(where + ".type", fmt::format("'{}': {}", r.type(j, where), expected));
  }
  const json& list = r.at(j, where, "pretokenizers");
  if (!list.is_array() || list.size() != 2) {
    r.fail(where + ".pretokenizers", std::string("not two entries; ") + expected);
  }
  const std::string split = where + ".pretokenizers[0]";
  if (r.type(list[0], split) != "Split") {
    r.fail(split + ".type", fmt::format("'{}': {}", r.type(list[0], split), expected));
  }
  const json& pattern = r.at(list[0], split, "pattern");
  if (!pattern.is_object() || !pattern.contains("Regex")) {
    r.fail(split + ".pattern", "expected {\"Regex\": ...}");
  }
  const std::string regex = r.str(pattern.at("Regex"), split + ".pattern.Regex");
  std::string pre;
  for (PreTokenizerKind k : {PreTokenizerKind::kQwen2, PreTokenizerKind::kLlama3}) {
    if (regex == pretokenizer_regex(k)) pre = pretokenizer_name(k);
  }
  if (pre.empty()) {
    r.fail(split + ".pattern.Regex",
           fmt::format("'{}' is not a pre-tokenizer pv implements (Qwen2's '{}' or Llama 3's "
                       "'{}', exactly)",
                       regex, pretokenizer_regex(PreTokenizerKind::kQwen2),
                       pretokenizer_regex(PreTokenizerKind::kLlama3)));
  }
  const std::string behavior = r.str(r.at(list[0], split, "behavior"), split + ".behavior");
  if (behavior != "Isolated") r.fail(split + ".behavior", "'" + behavior + "', expected Isolated");
  if (r.flag(list[0], "invert", split, false)) r.fail(split + ".invert", "true is not supported");
  const std::string bl = where + ".pretokenizers[1]";
  if (r.type(list[1], bl) != "ByteLevel") {
    r.fail(bl + ".type", fmt::format("'{}': {}", r.type(list[1], bl), expected));
  }
  if (r.flag(list[1], "add_prefix_space", bl, false)) {
    r.fail(bl + ".add_prefix_space", "true is not supported");
  }
  if (r.flag(list[1], "use_regex", bl, true)) {
    r.fail(bl + ".use_regex", "true (GPT-2's regex after the Split) is not supported");
  }
  return pre;
}

// The id of the token whose content is `content`, or a failure at `where`.
int32_t id_of(const Reader& r, const std::vector<std::string>& tokens, const std::string& content,
              const std::string& where) {
  for (size_t k = 0; k < tokens.size(); ++k) {
    if (tokens[k] == content) return static_cast<int32_t>(k);
  }
  r.fail(where, fmt::format("'{}' is not a token of the vocabulary", content));
}

// TemplateProcessing's single template [SpecialToken?, Sequence A]: the special token is bos.
void read_post_processor(const Reader& r, const json& j, const std::string& where,
                         const std::vector<std::string>& tokens, TokenizerData& d) {
  if (j.is_null()) return;
  const std::string t = r.type(j, where);
  if (t == "ByteLevel") return;  // offsets only: ids are untouched
  if (t == "Sequence") {
    const json& list = r.at(j, where, "processors");
    if (!list.is_array()) r.fail(where + ".processors", "expected an array");
    for (size_t k = 0; k < list.size(); ++k) {
      read_post_processor(r, list[k], fmt::format("{}.processors[{}]", where, k), tokens, d);
    }
    return;
  }
  if (t != "TemplateProcessing") {
    r.fail(where + ".type", fmt::format("post-processor '{}' is not implemented (pv: ByteLevel, "
                                        "TemplateProcessing, Sequence)",
                                        t));
  }
  const json& single = r.at(j, where, "single");
  const std::string sw = where + ".single";
  const bool bos_form = single.is_array() && single.size() == 2 &&
                        single[0].contains("SpecialToken") && single[1].contains("Sequence");
  const bool plain_form = single.is_array() && single.size() == 1 && single[0].contains("Sequence");
  if (!bos_form && !plain_form) {
    r.fail(sw, fmt::format("{} is not [SpecialToken?, Sequence A]", single.dump()));
  }
  if (bos_form) {
    const std::string name = r.str(r.at(single[0]["SpecialToken"], sw + "[0].SpecialToken", "id"),
                                   sw + "[0].SpecialToken.id");
    d.bos = id_of(r, tokens, name, sw + "[0].SpecialToken.id");
    d.add_bos = true;
  }
}

// tokenizer_config.json's bos_token / eos_token: a string, {"content": ...}, or null.
std::optional<std::string> config_token(const Reader& r, const json& cfg, const char* key) {
  if (!cfg.contains(key) || cfg.at(key).is_null()) return std::nullopt;
  const json& v = cfg.at(key);
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content")) {
    return r.str(v.at("content"), std::string(key) + ".content");
  }
  r.fail(key, fmt::format("expected a string, {{\"content\": ...}} or null, found {}", v.dump()));
}

}  // namespace

bool has_hf_tokenizer(const std::string& dir) {
  std::error_code ec;
  return fs::is_directory(dir, ec) && fs::is_regular_file(fs::path(dir) / "tokenizer.json", ec);
}

TokenizerData load_hf_tokenizer(const std::string& path) {
  std::error_code ec;
  const bool is_dir = fs::is_directory(path, ec);
  const fs::path file = is_dir ? fs::path(path) / "tokenizer.json" : fs::path(path);
  if (is_dir && !fs::is_regular_file(file, ec)) {
    throw TokenizerError(fmt::format("{}: no tokenizer.json in this directory", path));
  }
  const Reader r{file.string()};
  const json j = read_json_file(r.file);
  if (!j.is_object()) r.fail("(top level)", "expected an object");
  TokenizerData d;
  d.present = true;
  d.model = "gpt2";

  for (const char* key : {"truncation", "padding"}) {
    if (j.contains(key) && !j.at(key).is_null()) r.fail(key, "must be null (pv encodes whole)");
  }

  const json& model = r.at(j, "(top level)", "model");
  if (r.type(model, "model") != "BPE") {
    r.fail("model.type",
           fmt::format("'{}': only byte-level BPE is supported", r.type(model, "model")));
  }
  for (const char* key : {"dropout", "unk_token"}) {
    if (model.contains(key) && !model.at(key).is_null()) {
      r.fail(std::string("model.") + key,
             fmt::format("{} is not supported (must be null)", model.at(key).dump()));
    }
  }
  if (r.flag(model, "byte_fallback", "model", false)) {
    r.fail("model.byte_fallback", "true is not supported");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (model.contains(key) && !model.at(key).is_null() &&
        !(model.at(key).is_string() && model.at(key).get<std::string>().empty())) {
      r.fail(std::string("model.") + key,
             fmt::format("{} is not supported (must be null or \"\")", model.at(key).dump()));
    }
  }
  d.ignore_merges = r.flag(model, "ignore_merges", "model", false);

  // Vocabulary and added tokens together must cover ids 0..N-1, each once.
  std::map<int64_t, std::pair<std::string, int32_t>> by_id;  // id -> (content, type)
  const json& vocab = r.at(model, "model", "vocab");
  if (!vocab.is_object()) r.fail("model.vocab", "expected an object {token: id}");
  for (const auto& [tok, idv] : vocab.items()) {
    if (!idv.is_number_integer() || idv.get<int64_t>() < 0 || idv.get<int64_t>() > INT32_MAX) {
      r.fail("model.vocab[\"" + tok + "\"]", fmt::format("{} is not a token id", idv.dump()));
    }
    const int64_t id = idv.get<int64_t>();
    if (!by_id.try_emplace(id, tok, static_cast<int32_t>(TokenType::kNormal)).second) {
      r.fail("model.vocab[\"" + tok + "\"]",
             fmt::format("id {} is also '{}'", id, by_id.at(id).first));
    }
  }
  std::vector<std::string> normalizers;
  if (j.contains("normalizer")) read_normalizer(r, j.at("normalizer"), "normalizer", normalizers);
  d.normalizers = normalizers;

  if (j.contains("added_tokens") && !j.at("added_tokens").is_null()) {
    const json& added = j.at("added_tokens");
    if (!added.is_array()) r.fail("added_tokens", "expected an array");
    for (size_t k = 0; k < added.size(); ++k) {
      const std::string w = fmt::format("added_tokens[{}]", k);
      const json& a = added[k];
      const json& idv = r.at(a, w, "id");
      if (!idv.is_number_integer() || idv.get<int64_t>() < 0 || idv.get<int64_t>() > INT32_MAX) {
        r.fail(w + ".id", fmt::format("{} is not a token id", idv.dump()));
      }
      const std::string content = r.str(r.at(a, w, "content"), w + ".content");
      for (const char* key : {"lstrip", "rstrip", "single_word"}) {
        if (r.flag(a, key, w, false)) r.fail(w + "." + key, "true is not supported");
      }
      if (r.flag(a, "normalized", w, false) && !normalizers.empty()) {
        r.fail(w + ".normalized", "true (matched on normalized text) is not supported");
      }
      const auto type = static_cast<int32_t>(
          r.flag(a, "special", w, false) ? TokenType::kControl : TokenType::kUserDefined);
      auto [it, fresh] = by_id.try_emplace(idv.get<int64_t>(), content, type);
      if (!fresh) {
        if (it->second.first != content) {
          r.fail(w, fmt::format("id {} is '{}' in the vocabulary but '{}' here", it->first,
                                it->second.first, content));
        }
        it->second.second = type;
      }
    }
  }
  int64_t expect = 0;
  for (const auto& [id, entry] : by_id) {
    if (id != expect) r.fail("model.vocab", fmt::format("no token has id {}", expect));
    d.tokens.push_back(entry.first);
    d.token_types.push_back(entry.second);
    ++expect;
  }

  const json& merges = r.at(model, "model", "merges");
  if (!merges.is_array()) r.fail("model.merges", "expected an array");
  d.merges.reserve(merges.size());
  for (size_t k = 0; k < merges.size(); ++k) {
    const json& m = merges[k];
    const std::string w = fmt::format("model.merges[{}]", k);
    if (m.is_string()) {
      d.merges.push_back(m.get<std::string>());
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      const std::string a = m[0].get<std::string>(), b = m[1].get<std::string>();
      if (a.find(' ') != std::string::npos || b.find(' ') != std::string::npos) {
        r.fail(w, "a merge half contains a space (not byte-level BPE)");
      }
      d.merges.push_back(a + " " + b);
    } else {
      r.fail(w, fmt::format("{} is not \"a b\" or [\"a\", \"b\"]", m.dump()));
    }
  }

  d.pre = read_pre_tokenizer(r, j.contains("pre_tokenizer") ? j.at("pre_tokenizer") : json());
  if (!j.contains("decoder") || j.at("decoder").is_null() ||
      r.type(j.at("decoder"), "decoder") != "ByteLevel") {
    r.fail("decoder", fmt::format("{} is not ByteLevel",
                                  j.contains("decoder") ? j.at("decoder").dump() : "absent"));
  }
  if (j.contains("post_processor")) {
    read_post_processor(r, j.at("post_processor"), "post_processor", d.tokens, d);
  }

  const fs::path cfg_path = file.parent_path() / "tokenizer_config.json";
  if (fs::is_regular_file(cfg_path, ec)) {
    const Reader rc{cfg_path.string()};
    const json cfg = read_json_file(rc.file);
    if (!cfg.is_object()) rc.fail("(top level)", "expected an object");
    if (const auto bos = config_token(rc, cfg, "bos_token")) {
      d.bos = id_of(rc, d.tokens, *bos, "bos_token");
    }
    if (const auto eos = config_token(rc, cfg, "eos_token")) {
      d.eos = id_of(rc, d.tokens, *eos, "eos_token");
    }
    if (cfg.contains("add_bos_token")) d.add_bos = rc.flag(cfg, "add_bos_token", "", false);
    if (d.add_bos && d.bos < 0) rc.fail("add_bos_token", "true, but there is no bos_token");
  }
  return d;
}

}  // namespace pv::model
