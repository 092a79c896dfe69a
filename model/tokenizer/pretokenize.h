// Qwen2's pre-tokenizer, implemented by hand (std::regex has no \p{L} / \p{N}):
//
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}
//   | ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
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

// Appends the pre-tokens of `text` to `out` (offsets relative to `text`).
void pretokenize_qwen2(std::string_view text, std::vector<Piece>& out);

// Scratch-reusing form for hot loops: `chars` is overwritten.
void pretokenize_qwen2(std::string_view text, std::vector<DecodedChar>& chars,
                       std::vector<Piece>& out);

}  // namespace pv::model
