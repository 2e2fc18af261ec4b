#include "tokenizer/utf8.h"

#include <cstdint>

namespace linfer::tok {
namespace {

enum class Seq { kValid, kInvalid, kTruncated };

// Classifies the sequence starting at p[0] (n >= 1 bytes available) and sets `len` to its length
// (kValid), to the length of its maximal valid prefix (kInvalid, >= 1), or to the bytes present
// (kTruncated: a valid prefix cut off by the end of the input). Table 3-7 of the Unicode standard.
Seq classify(const uint8_t* p, size_t n, size_t& len) {
  const uint8_t b = p[0];
  size_t need;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b < 0x80) {
    len = 1;
    return Seq::kValid;
  } else if (b >= 0xC2 && b <= 0xDF) {
    need = 2;
  } else if (b >= 0xE0 && b <= 0xEF) {
    need = 3;
    if (b == 0xE0) lo = 0xA0;
    if (b == 0xED) hi = 0x9F;  // no surrogates
  } else if (b >= 0xF0 && b <= 0xF4) {
    need = 4;
    if (b == 0xF0) lo = 0x90;
    if (b == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    len = 1;
    return Seq::kInvalid;
  }
  for (size_t i = 1; i < need; ++i) {
    if (i >= n) {
      len = i;
      return Seq::kTruncated;
    }
    const uint8_t c = p[i];
    const bool ok = i == 1 ? (c >= lo && c <= hi) : (c >= 0x80 && c <= 0xBF);
    if (!ok) {
      len = i;
      return Seq::kInvalid;
    }
  }
  len = need;
  return Seq::kValid;
}

}  // namespace

std::string utf8_repair(std::string_view bytes) {
  if (utf8_is_valid(bytes)) return std::string(bytes);
  std::string out;
  out.reserve(bytes.size() + 16);
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  size_t i = 0;
  while (i < bytes.size()) {
    size_t len;
    if (classify(p + i, bytes.size() - i, len) == Seq::kValid) {
      out.append(bytes.data() + i, len);
    } else {
      out.append(kReplacementChar);
    }
    i += len;
  }
  return out;
}

bool utf8_is_valid(std::string_view bytes) {
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  size_t i = 0;
  while (i < bytes.size()) {
    if (p[i] < 0x80) {  // ASCII fast path
      ++i;
      continue;
    }
    size_t len;
    if (classify(p + i, bytes.size() - i, len) != Seq::kValid) return false;
    i += len;
  }
  return true;
}

size_t utf8_unfinished_tail(std::string_view bytes) {
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  const size_t n = bytes.size();
  // A sequence is at most 4 bytes, so an unfinished one starts within the last 3.
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const uint8_t b = p[n - back];
    if (b >= 0x80 && b <= 0xBF) continue;  // continuation byte: the start is further back
    size_t len;
    return classify(p + n - back, back, len) == Seq::kTruncated ? back : 0;
  }
  return 0;
}

char32_t utf8_next(std::string_view bytes, size_t& i) {
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  const uint8_t b = p[i];
  if (b < 0x80) return p[i++];
  const int extra = b >= 0xF0 ? 3 : b >= 0xE0 ? 2 : 1;
  char32_t cp = b & (0x3F >> extra);
  for (int k = 1; k <= extra; ++k) cp = (cp << 6) | (p[i + k] & 0x3F);
  i += extra + 1;
  return cp;
}

char32_t utf8_prev(std::string_view bytes, size_t& i) {
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  size_t start = i - 1;
  while (start > 0 && (p[start] & 0xC0) == 0x80) --start;
  size_t j = start;
  const char32_t cp = utf8_next(bytes, j);
  i = start;
  return cp;
}

}  // namespace linfer::tok
