#include "model/tokenizer/bytes_text.h"

#include <vector>

#include "model/tokenizer/pretokenize.h"

namespace pv::model {
namespace {
constexpr char32_t kInvalid = 0xFFFFFFFF;  // decode_utf8's mark for an invalid byte
}

std::string bytes_hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) {
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
  }
  return out;
}

std::string utf8_with_replacement(std::string_view bytes) {
  std::vector<DecodedChar> chars;
  decode_utf8(bytes, chars);
  std::string out;
  out.reserve(bytes.size());
  for (size_t k = 0; k < chars.size(); ++k) {
    if (chars[k].cp == kInvalid) {
      append_utf8(out, U'\uFFFD');
    } else {
      const size_t end = k + 1 < chars.size() ? chars[k + 1].offset : bytes.size();
      out.append(bytes.substr(chars[k].offset, end - chars[k].offset));
    }
  }
  return out;
}

bool is_valid_utf8(std::string_view bytes) {
  std::vector<DecodedChar> chars;
  decode_utf8(bytes, chars);
  for (const DecodedChar& c : chars) {
    if (c.cp == kInvalid) return false;
  }
  return true;
}

}  // namespace pv::model
