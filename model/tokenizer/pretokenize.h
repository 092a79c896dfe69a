// Qwen2's and Llama 3's pre-tokenizers, implemented by hand (std::regex has no \p{L} / \p{N}):
//
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}
//   | ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//
// Llama 3's (GGUF tokenizer.ggml.pre "llama-bpe", the tiktoken-style cl100k pattern) is the same
// expression with \p{N}{1,3} in place of \p{N}: a run of numbers splits greedily into groups of
// three from the left ("12345" -> "123" "45").
//
// with the leftmost-first alternation and greedy backtracking semantics of the regex engine
// HF tokenizers uses (Oniguruma), and HF's Split(behavior = isolated): every match is a piece.
// The alternatives cover every character, so there are no gaps between matches.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace pv::model {

// A pre-token: bytes [begin, end) of the input.
struct Piece {
  size_t begin;
  size_t end;
};

// One decoded character: its code point, class and where its bytes start. Invalid UTF-8
// (a stray continuation byte, an overlong form, a surrogate, a truncated sequence) decodes
// one byte at a time as a character of class kOther, so every input byte stays covered.
struct DecodedChar {
  char32_t cp;
  unsigned char cls;  // CharClass
  size_t offset;
};

void decode_utf8(std::string_view text, std::vector<DecodedChar>& out);

// Appends the UTF-8 encoding of code point `c` (<= U+10FFFF) to `out`.
void append_utf8(std::string& out, char32_t c);

enum class PreTokenizerKind { kQwen2, kLlama3 };

// The exact tokenizer.json Split regex of each kind (what HF's tokenizer.json stores).
const char* pretokenizer_regex(PreTokenizerKind kind);
// GGUF tokenizer.ggml.pre name of each kind ("qwen2", "llama-bpe").
const char* pretokenizer_name(PreTokenizerKind kind);

// Appends the pre-tokens of `text` to `out` (offsets relative to `text`).
void pretokenize_qwen2(std::string_view text, std::vector<Piece>& out);

// Scratch-reusing form for hot loops: `chars` is overwritten.
void pretokenize_qwen2(std::string_view text, std::vector<DecodedChar>& chars,
                       std::vector<Piece>& out);

void pretokenize(PreTokenizerKind kind, std::string_view text, std::vector<DecodedChar>& chars,
                 std::vector<Piece>& out);

}  // namespace pv::model
