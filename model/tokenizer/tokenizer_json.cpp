#include "model/tokenizer/tokenizer_json.h"

#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "model/formats/mapped_file.h"

namespace pv::model {
namespace {
// Far above any real tokenizer (Qwen3's tokenizer.json is 11 MB), far below memory trouble.
constexpr uint64_t kMaxTokenizerJsonBytes = 256ull << 20;
}  // namespace

TokenizerData load_tokenizer_json(const std::string& path) {
  // A FIFO or device must be refused before it is read (a FIFO would block forever).
  std::string text;
  try {
    text = read_small_file(path, kMaxTokenizerJsonBytes);
  } catch (const FormatError& e) {
    throw TokenizerError(e.what());
  }
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw TokenizerError(fmt::format("{}: invalid JSON at byte {}: {}", path, e.byte, e.what()));
  }
  TokenizerData d;
  d.present = true;
  auto get = [&](const char* key, auto& dst) {
    if (!j.contains(key)) throw TokenizerError(fmt::format("{}: missing key '{}'", path, key));
    try {
      j.at(key).get_to(dst);
    } catch (const nlohmann::json::exception& e) {
      throw TokenizerError(fmt::format("{}: key '{}' has the wrong type: {}", path, key, e.what()));
    }
  };
  get("model", d.model);
  get("pre", d.pre);
  get("tokens", d.tokens);
  get("token_types", d.token_types);
  get("merges", d.merges);
  get("bos_id", d.bos);
  get("eos_id", d.eos);
  get("add_bos", d.add_bos);
  // Optional: absent, the tokenizer derives normalization from "pre" as it does for GGUF.
  if (j.contains("normalizers")) {
    std::vector<std::string> forms;
    get("normalizers", forms);
    d.normalizers = forms;
  }
  return d;
}

}  // namespace pv::model
