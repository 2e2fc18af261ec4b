#pragma once
// GPT-2's byte-level alphabet: tokenizer.json files store every byte-level token as text in which
// each byte is one printable code point (0x21..0x7E, 0xA1..0xAC, 0xAE..0xFF map to themselves, the
// other 68 bytes to U+0100..U+0143, e.g. ' ' -> 'Ġ'). linfer keeps tokens as raw bytes; this
// converts on load.

#include <optional>
#include <string>
#include <string_view>

namespace linfer::tok {

// Raw bytes of a token written in the byte-level alphabet; nullopt if any code point of `token`
// (valid UTF-8) is outside the alphabet.
std::optional<std::string> byte_level_to_bytes(std::string_view token);

// The bytes the Hugging Face ByteLevel decoder produces for one token: the mapped bytes when the
// whole token is in the alphabet, else the token's own UTF-8 bytes (e.g. "<|im_start|>" with a
// space, or CJK added tokens).
std::string byte_level_decode(std::string_view token);

}  // namespace linfer::tok
