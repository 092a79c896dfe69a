// TokenizerData from the fixture JSON written by tools/tokenizer_oracle.py
// (model/fixtures/tokenizer/vocab.json): the same fields GGUF's tokenizer.ggml.* keys carry,
// so the tokenizer can be exercised without a GGUF file.
#pragma once

#include <string>

#include "model/tokenizer/tokenizer.h"

namespace pv::model {

// Throws TokenizerError naming the file and the missing or mistyped key.
TokenizerData load_tokenizer_json(const std::string& path);

}  // namespace pv::model
