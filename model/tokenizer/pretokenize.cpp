#include "model/tokenizer/pretokenize.h"

#include "model/tokenizer/pretokenize_unicode.h"
#include "mutants/mutant.h"

namespace pv::model {
namespace {

constexpr char32_t kInvalid = 0xFFFFFFFF;
constexpr auto kOther = static_cast<unsigned char>(CharClass::kOther);
constexpr auto kLetter = static_cast<unsigned char>(CharClass::kLetter);
constexpr auto kNumber = static_cast<unsigned char>(CharClass::kNumber);
constexpr auto kSpace = static_cast<unsigned char>(CharClass::kSpace);

// Strict UTF-8: returns the sequence length (1..4) and the code point, or 0 when the bytes
// at `i` do not start a well-formed sequence.
size_t utf8_next(std::string_view s, size_t i, char32_t& cp) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    cp = b0;
    return 1;
  }
  size_t len;
  char32_t min;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2, min = 0x80, cp = b0 & 0x1F;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, min = 0x800, cp = b0 & 0x0F;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, min = 0x10000, cp = b0 & 0x07;
  } else {
    return 0;
  }
  if (s.size() - i < len) return 0;
  for (size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

bool is_crlf(char32_t c) { return c == '\r' || c == '\n'; }

char32_t ascii_lower(char32_t c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

// Alternative 1, (?i:'s|'t|'re|'ve|'m|'ll|'d): length in characters of the match at i, or 0.
// Case-insensitive as Oniguruma folds: ASCII case, and U+017F LATIN SMALL LETTER LONG S, which
// folds to 's' (HF's own probe of every letter, char_classes.json, finds no other).
size_t match_contraction(const std::vector<DecodedChar>& c, size_t i, size_t n) {
  if (c[i].cp != '\'' || i + 1 >= n) return 0;
  const char32_t a = ascii_lower(c[i + 1].cp);
  if (a == 's' || a == 0x17F || a == 't' || a == 'm' || a == 'd') return 2;
  if (i + 2 >= n) return 0;
  const char32_t b = ascii_lower(c[i + 2].cp);
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

}  // namespace

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

void decode_utf8(std::string_view text, std::vector<DecodedChar>& out) {
  out.clear();
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    char32_t cp;
    const size_t len = utf8_next(text, i, cp);
    if (len == 0) {
      out.push_back({kInvalid, kOther, i});
      ++i;
      continue;
    }
    out.push_back({cp, static_cast<unsigned char>(char_class(cp)), i});
    i += len;
  }
}

void pretokenize_qwen2(std::string_view text, std::vector<Piece>& out) {
  std::vector<DecodedChar> chars;
  pretokenize_qwen2(text, chars, out);
}

const char* pretokenizer_regex(PreTokenizerKind kind) {
  return kind == PreTokenizerKind::kQwen2
             ? R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"
             : R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
}

const char* pretokenizer_name(PreTokenizerKind kind) {
  return kind == PreTokenizerKind::kQwen2 ? "qwen2" : "llama-bpe";
}

void pretokenize_qwen2(std::string_view text, std::vector<DecodedChar>& c,
                       std::vector<Piece>& out) {
  pretokenize(PreTokenizerKind::kQwen2, text, c, out);
}

void pretokenize(PreTokenizerKind kind, std::string_view text, std::vector<DecodedChar>& c,
                 std::vector<Piece>& out) {
  // \p{N} takes one number character; Llama 3's \p{N}{1,3} up to three (greedy).
  const size_t max_digits = kind == PreTokenizerKind::kQwen2 ? 1 : 3;
  decode_utf8(text, c);
  const size_t n = c.size();
  auto offset = [&](size_t k) { return k < n ? c[k].offset : text.size(); };
  auto cls = [&](size_t k) { return c[k].cls; };

  const bool digit_runs = mutant::planted(mutant::Bug::PretokenizeDigitRuns);
  size_t i = 0;
  while (i < n) {
    size_t end = 0;  // exclusive character index of the match
    if (size_t m = match_contraction(c, i, n)) {
      end = i + m;
    } else if (cls(i) == kLetter ||
               (i + 1 < n && cls(i + 1) == kLetter && cls(i) != kNumber && !is_crlf(c[i].cp))) {
      // [^\r\n\p{L}\p{N}]?\p{L}+ : an optional non-letter, non-number, non-CR/LF prefix.
      end = cls(i) == kLetter ? i : i + 1;
      while (end < n && cls(end) == kLetter) ++end;
    } else if (cls(i) == kNumber) {
      end = i + 1;
      // The planted digit-runs bug drops the 1- or 3-digit limit: numbers stay whole.
      while (end < n && (digit_runs || end - i < max_digits) && cls(end) == kNumber) ++end;
    } else if (cls(i) == kOther || (c[i].cp == ' ' && i + 1 < n && cls(i + 1) == kOther)) {
      // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
      end = c[i].cp == ' ' ? i + 1 : i;
      while (end < n && cls(end) == kOther) ++end;
      while (end < n && is_crlf(c[end].cp)) ++end;
    } else {
      // cls(i) == kSpace: the run of white space [i, run_end).
      size_t run_end = i;
      while (run_end < n && cls(run_end) == kSpace) ++run_end;
      // \s*[\r\n]+ : greedy \s* backs off to the last CR/LF of the run.
      size_t last_crlf = run_end;
      for (size_t k = run_end; k > i; --k) {
        if (is_crlf(c[k - 1].cp)) {
          last_crlf = k - 1;
          break;
        }
      }
      if (last_crlf != run_end) {
        end = last_crlf + 1;
      } else if (run_end == n || run_end - i == 1) {
        // \s+(?!\S) takes the whole run at the end of input; a one-character run followed
        // by a non-space falls through to \s+, which takes the same single character.
        end = run_end;
      } else {
        // \s+(?!\S) backs off one character so the last space stays with the next word.
        end = run_end - 1;
      }
    }
    out.push_back({offset(i), offset(end)});
    i = end;
  }
}

}  // namespace pv::model
