// Token bytes in JSON. Byte-level BPE ids decode to bytes, and a prefix of a generation (or
// one token) can end inside a UTF-8 sequence, so JSON output carries the bytes exactly as hex and
// the text with U+FFFD in place of each byte that is not part of a well-formed sequence.
#pragma once

#include <string>
#include <string_view>

namespace pv::model {

// Lower-case hex, two digits a byte ("e4bd" for E4 BD).
std::string bytes_hex(std::string_view bytes);

// Valid UTF-8 with each invalid byte (a stray continuation byte, an overlong form, a surrogate, a
// truncated sequence: the decoder of model/tokenizer/pretokenize.h) replaced by U+FFFD.
std::string utf8_with_replacement(std::string_view bytes);

bool is_valid_utf8(std::string_view bytes);

}  // namespace pv::model
