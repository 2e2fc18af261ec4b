#pragma once
// UTF-8 validation and repair with the Unicode "maximal subpart" rule: every maximal prefix of a
// would-be-valid sequence that cannot be completed becomes one U+FFFD. Python's
// bytes.decode(errors="replace"), Rust's String::from_utf8_lossy and tiktoken all follow it, so text
// repaired here matches what the reference tokenizers saw.

#include <cstddef>
#include <string>
#include <string_view>

namespace linfer::tok {

inline constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

// `bytes` with every invalid subsequence replaced by U+FFFD (a truncated sequence at the end too).
std::string utf8_repair(std::string_view bytes);

bool utf8_is_valid(std::string_view bytes);

// Length of the trailing bytes that are a proper prefix of a valid sequence (0..3): bytes that may
// still become a character when more arrive. Everything before them repairs the same way whatever
// follows.
size_t utf8_unfinished_tail(std::string_view bytes);

// Decodes the code point starting at bytes[i] of *valid* UTF-8 and advances i.
char32_t utf8_next(std::string_view bytes, size_t& i);
// Decodes the code point ending just before bytes[i] of *valid* UTF-8 and moves i back over it.
char32_t utf8_prev(std::string_view bytes, size_t& i);

}  // namespace linfer::tok
