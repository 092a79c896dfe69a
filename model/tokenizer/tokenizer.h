// Byte-level BPE tokenizer (GGUF tokenizer.ggml.model = "gpt2") with Qwen2's or Llama 3's
// pre-tokenizer.
//
// Built from plain data (the GGUF tokenizer metadata, or the HF-trained fixture in
// model/fixtures/tokenizer/): token strings in id order, their GGUF token types, merges
// "a b" in rank order, bos/eos and add_bos. encode():
//   1. control (type 3) and user-defined (type 4) tokens are matched as whole strings,
//      leftmost-longest, before anything else (<|im_start|>, <|endoftext|>, ...);
//   2. each remaining segment is normalized (ICU; model/tokenizer/normalize.h) and split by the
//      pre-tokenizer (model/tokenizer/pretokenize.h);
//   3. each pre-token's bytes map to GPT-2's byte-level alphabet and are merged by rank.
//
// Which pre-tokenizer: TokenizerData::pre, "qwen2" or "llama-bpe" (anything else is refused).
// Normalization and ignore_merges: as the data states them (tokenizer.json does); unstated (GGUF
// has no key for them) they follow the HF tokenizer.json of the pre-tokenizer's family:
//   qwen2     -> NFC, ignore_merges off (Qwen2/2.5/3's tokenizer.json: normalizer NFC);
//   llama-bpe -> none, ignore_merges on (Llama 3's tokenizer.json: normalizer null,
//                ignore_merges true; llama.cpp also sets ignore_merges for llama-bpe).
// llama.cpp itself does not normalize qwen2 text: pv follows HF here, so a GGUF Qwen tokenizes
// like its tokenizer.json.
// decode() inverts the byte mapping; control tokens decode to their text. Invalid UTF-8 is
// tokenized byte by byte (every byte has a token), never rejected.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "model/loading/loader.h"
#include "model/tokenizer/normalize.h"
#include "model/tokenizer/pretokenize.h"

namespace pv::model {

// GGUF tokenizer.ggml.token_type values.
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,  // byte-level BPE: decoded through the byte mapping
  kUnknown = 2,
  kControl = 3,      // special (<|im_start|>, ...): matched whole in the text, decoded as is
  kUserDefined = 4,  // treated like kControl
  kUnused = 5,
  kByte = 6,
};

// The constructor input is the loader's TokenizerData (model/loading/loader.h): exactly what GGUF's
// tokenizer.ggml.* keys carry (model, pre, tokens, token_type, merges, bos/eos, add_bos).

class TokenizerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// GPT-2's byte <-> unicode mapping: printable Latin-1 bytes map to themselves, the other 68
// bytes to U+0100.. in byte order, so every byte is one visible character.
char32_t byte_to_unicode(uint8_t b);
// The byte a mapped character stands for, or -1 when `c` is not in the mapping's image.
int unicode_to_byte(char32_t c);
// The UTF-8 of byte_to_unicode(b) for each byte of `bytes`.
std::string bytes_to_mapped(std::string_view bytes);

class Tokenizer {
 public:
  // Validates the data (throws TokenizerError naming the offending token/merge index):
  // a tokenizer present in the file, model "gpt2", token_types sized like tokens, every merge "a b"
  // with both halves and their concatenation in the vocabulary, every byte of the alphabet present,
  // ids in range.
  explicit Tokenizer(const TokenizerData& data);
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  // add_special: prepend bos when the data says add_bos. parse_special: match control and
  // user-defined tokens in the text (off: their text is tokenized like any other text).
  std::vector<int32_t> encode(std::string_view text, bool add_special = true,
                              bool parse_special = true) const;
  // Throws TokenizerError on an id outside the vocabulary. The bytes are returned as they
  // are (a prefix of an encoding may end inside a UTF-8 sequence).
  std::string decode(std::span<const int32_t> ids) const;

  size_t vocab_size() const;
  PreTokenizerKind pretokenizer() const;
  const Normalizer& normalizer() const;
  bool ignore_merges() const;
  size_t merge_count() const;
  int32_t bos_id() const;
  int32_t eos_id() const;
  bool add_bos() const;
  const std::string& token(int32_t id) const;  // as stored (byte-level mapped text)
  TokenType token_type(int32_t id) const;
  // Id of a token string as stored, or -1.
  int32_t token_id(std::string_view token) const;
  // Rank of the merge "left right", or -1 when there is none.
  int32_t merge_rank(std::string_view left, std::string_view right) const;

  // The per-word cache (on by default) maps a pre-token's bytes to its ids; benchmarks turn
  // it off to measure the merge loop itself. Not to be toggled while another thread encodes.
  void set_word_cache_enabled(bool enabled);

  // BPE of one pre-token's raw bytes (no special-token matching, no pre-tokenization).
  void encode_word(std::string_view bytes, std::vector<int32_t>& out) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pv::model
