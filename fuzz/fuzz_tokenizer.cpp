// libFuzzer target: tokenizer.json (load_hf_tokenizer, the HF tokenizers file) and the
// fixture vocabulary JSON (load_tokenizer_json) on arbitrary bytes. A loaded tokenizer is
// built (Tokenizer validates the data) and encodes and decodes a fixed text, so data the
// loader accepts but the tokenizer cannot use is caught too. A refusal must be a
// runtime_error naming the file (fuzz_check.h); anything else is a finding.
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "fuzz/fuzz_check.h"
#include "model/tokenizer/hf_tokenizer.h"
#include "model/tokenizer/tokenizer.h"
#include "model/tokenizer/tokenizer_json.h"

namespace {

namespace fs = std::filesystem;

const fs::path& json_file() {
  static const fs::path file = [] {
    auto d = fs::temp_directory_path() / ("pv-fuzz-tokenizer-" + std::to_string(::getpid()));
    fs::create_directories(d);
    return d / "tokenizer.json";
  }();
  return file;
}

// Tokenizer never sees the file: its refusals name the token or merge index instead.
void use(const pv::model::TokenizerData& data) {
  try {
    const pv::model::Tokenizer tok(data);
    const auto ids = tok.encode("Hello, world! 123 <|im_start|>user\n\xc3\xa9\xe4\xb8\xad  x");
    tok.decode(ids);
  } catch (...) {
    pv::fuzz::expect_refusal("");
  }
}

}  // namespace

PV_FUZZ_TARGET(tokenizer) {
  const std::string file = json_file().string();
  std::ofstream(file, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  for (const bool hf : {true, false}) {
    pv::model::TokenizerData d;
    try {
      d = hf ? pv::model::load_hf_tokenizer(file) : pv::model::load_tokenizer_json(file);
    } catch (...) {
      pv::fuzz::expect_refusal(file);
      continue;
    }
    use(d);
  }
  return 0;
}
