#include "tokenizer/byte_level.h"

#include <array>
#include <cstdint>

#include "tokenizer/utf8.h"

namespace linfer::tok {
namespace {

// code point -> byte for the 256 code points of the alphabet (all below U+0144); -1 elsewhere.
struct Alphabet {
  std::array<int16_t, 0x144> byte_of;
  Alphabet() {
    byte_of.fill(-1);
    int next = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      byte_of[printable ? b : 0x100 + next++] = static_cast<int16_t>(b);
    }
  }
};

const Alphabet& alphabet() {
  static const Alphabet a;
  return a;
}

}  // namespace

std::optional<std::string> byte_level_to_bytes(std::string_view token) {
  const auto& a = alphabet();
  std::string out;
  out.reserve(token.size());
  size_t i = 0;
  while (i < token.size()) {
    const char32_t cp = utf8_next(token, i);
    if (cp >= a.byte_of.size() || a.byte_of[cp] < 0) return std::nullopt;
    out.push_back(static_cast<char>(a.byte_of[cp]));
  }
  return out;
}

std::string byte_level_decode(std::string_view token) {
  auto mapped = byte_level_to_bytes(token);
  return mapped ? std::move(*mapped) : std::string(token);
}

}  // namespace linfer::tok
