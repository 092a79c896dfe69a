// TokenizerData from an HF tokenizer directory: tokenizer.json [+ tokenizer_config.json], the
// files AutoTokenizer loads, with no model weights needed.
//
// What is read, and what is refused (TokenizerError naming the file and the JSON path):
//   model          BPE only; dropout, unk_token null; byte_fallback false; no subword prefix
//                  or suffix; vocab + merges ("a b" strings or ["a", "b"] pairs); ignore_merges.
//   added_tokens   special -> control, others -> user-defined; lstrip/rstrip/single_word
//                  refused, as is normalized = true when there is a normalizer.
//   normalizer     null, NFC, NFKC, NFD, NFKD, or a Sequence of them.
//   pre_tokenizer  Sequence[Split(Regex, Isolated, invert false), ByteLevel(add_prefix_space
//                  false, use_regex false)] where the regex is exactly Qwen2's or Llama 3's
//                  (model/tokenizer/pretokenize.h).
//   post_processor null, ByteLevel, TemplateProcessing whose single template is
//                  [SpecialToken?, Sequence A] (the special token becomes bos, added), or a
//                  Sequence of those.
//   decoder        ByteLevel.
//   truncation, padding: null.
//   tokenizer_config.json (optional): add_bos_token, bos_token, eos_token (a string, an
//                  {"content": ...} object, or null), which override the post-processor.
#pragma once

#include <string>

#include "model/loading/loader.h"

namespace pv::model {

// `path`: a directory holding tokenizer.json, or a tokenizer.json file.
TokenizerData load_hf_tokenizer(const std::string& path);

// True when `dir` is a directory with a tokenizer.json.
bool has_hf_tokenizer(const std::string& dir);

}  // namespace pv::model
