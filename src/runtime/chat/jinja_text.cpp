#include "runtime/chat/jinja_text.h"

#include <unicode/uchar.h>
#include <unicode/ustring.h>

#include <algorithm>

#include "runtime/chat/jinja_error.h"

namespace linfer::jinja::text {

namespace {

constexpr char32_t kEscapedByte = 0xDC00;  // invalid byte b travels as U+DC00 + b (b >= 0x80)

// Length of a valid UTF-8 sequence starting at s[i], or 0 when the bytes there are not one.
size_t sequence_length(std::string_view s, size_t i, char32_t& cp) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  size_t n = b0 < 0x80 ? 1 : (b0 >> 5) == 0x6 ? 2 : (b0 >> 4) == 0xE ? 3 : (b0 >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  if (n == 1) { cp = b0; return 1; }
  cp = b0 & (0x7F >> n);
  for (size_t k = 1; k < n; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b >> 6) != 0x2) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  static constexpr char32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;  // overlong, out of range
  return n;
}

std::u16string to_utf16(std::u32string_view s) {
  std::u16string out;
  out.reserve(s.size());
  for (char32_t c : s) {
    if (c >= 0x10000) {
      c -= 0x10000;
      out.push_back(char16_t(0xD800 + (c >> 10)));
      out.push_back(char16_t(0xDC00 + (c & 0x3FF)));
    } else {
      out.push_back(char16_t(c));
    }
  }
  return out;
}

std::u32string from_utf16(std::u16string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char32_t c = s[i];
    if (c >= 0xD800 && c < 0xDC00 && i + 1 < s.size() && s[i + 1] >= 0xDC00 && s[i + 1] < 0xE000) {
      c = 0x10000 + ((c - 0xD800) << 10) + (s[i + 1] - 0xDC00);
      ++i;
    }
    out.push_back(c);
  }
  return out;
}

// Unicode full case mapping (ICU root locale: what Python's str.upper / str.lower do).
std::u32string map_case(std::u32string_view s, bool to_upper) {
  const std::u16string src = to_utf16(s);
  std::u16string dst(src.size() * 3 + 4, u'\0');
  UErrorCode status = U_ZERO_ERROR;
  const auto fn = to_upper ? u_strToUpper : u_strToLower;
  int32_t n = fn(reinterpret_cast<UChar*>(dst.data()), int32_t(dst.size()),
                 reinterpret_cast<const UChar*>(src.data()), int32_t(src.size()), "", &status);
  if (U_FAILURE(status)) throw Failure("case mapping failed");
  dst.resize(size_t(n));
  return from_utf16(dst);
}

bool is_cased(char32_t c) { return u_hasBinaryProperty(UChar32(c), UCHAR_CASED); }

bool in_set(char32_t c, const std::u32string& set) { return set.find(c) != std::u32string::npos; }

}  // namespace

std::u32string decode(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    char32_t cp = 0;
    const size_t n = sequence_length(s, i, cp);
    if (n == 0) {
      out.push_back(kEscapedByte + static_cast<unsigned char>(s[i]));
      ++i;
    } else {
      out.push_back(cp);
      i += n;
    }
  }
  return out;
}

char32_t decode_at(std::string_view s, size_t pos, size_t& n) {
  char32_t cp = 0;
  n = sequence_length(s, pos, cp);
  if (n == 0) {
    n = 1;
    return kEscapedByte + static_cast<unsigned char>(s[pos]);
  }
  return cp;
}

void append_utf8(std::string& out, char32_t c) {
  if (c >= kEscapedByte + 0x80 && c <= kEscapedByte + 0xFF) {
    out.push_back(char(c - kEscapedByte));
  } else if (c < 0x80) {
    out.push_back(char(c));
  } else if (c < 0x800) {
    out.push_back(char(0xC0 | (c >> 6)));
    out.push_back(char(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(char(0xE0 | (c >> 12)));
    out.push_back(char(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(char(0x80 | (c & 0x3F)));
  } else {
    out.push_back(char(0xF0 | (c >> 18)));
    out.push_back(char(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(char(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(char(0x80 | (c & 0x3F)));
  }
}

std::string encode(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) append_utf8(out, c);
  return out;
}

size_t length(std::string_view s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size();) {
    char32_t cp;
    const size_t k = sequence_length(s, i, cp);
    i += k == 0 ? 1 : k;
    ++n;
  }
  return n;
}

bool is_space(char32_t c) {
  if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F);
  if (c >= kEscapedByte && c <= kEscapedByte + 0xFF) return false;
  if (u_charType(UChar32(c)) == U_SPACE_SEPARATOR) return true;
  const auto dir = u_charDirection(UChar32(c));
  return dir == U_WHITE_SPACE_NEUTRAL || dir == U_BLOCK_SEPARATOR || dir == U_SEGMENT_SEPARATOR;
}

bool is_printable(char32_t c) {
  if (c == ' ') return true;
  switch (u_charType(UChar32(c))) {
    case U_CONTROL_CHAR: case U_FORMAT_CHAR: case U_SURROGATE: case U_PRIVATE_USE_CHAR:
    case U_UNASSIGNED: case U_LINE_SEPARATOR: case U_PARAGRAPH_SEPARATOR: case U_SPACE_SEPARATOR:
      return false;
    default:
      return true;
  }
}

std::string strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right) {
  const std::u32string u = decode(s);
  const std::u32string set = chars ? decode(*chars) : std::u32string();
  auto strippable = [&](char32_t c) { return chars ? in_set(c, set) : is_space(c); };
  size_t b = 0, e = u.size();
  if (left) while (b < e && strippable(u[b])) ++b;
  if (right) while (e > b && strippable(u[e - 1])) --e;
  return encode(std::u32string_view(u).substr(b, e - b));
}

std::vector<std::string> split(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit) {
  std::vector<std::string> parts;
  if (maxsplit < 0) maxsplit = INT64_MAX;
  if (sep) {
    if (sep->empty()) throw Failure("empty separator");
    size_t start = 0;
    for (size_t pos; maxsplit > 0 && (pos = s.find(*sep, start)) != std::string_view::npos; --maxsplit) {
      parts.emplace_back(s.substr(start, pos - start));
      start = pos + sep->size();
    }
    parts.emplace_back(s.substr(start));
    return parts;
  }
  const std::u32string u = decode(s);
  size_t i = 0;
  const size_t n = u.size();
  for (; maxsplit > 0; --maxsplit) {
    while (i < n && is_space(u[i])) ++i;
    if (i == n) break;
    const size_t j = i;
    while (i < n && !is_space(u[i])) ++i;
    parts.push_back(encode(std::u32string_view(u).substr(j, i - j)));
  }
  while (i < n && is_space(u[i])) ++i;
  if (i < n) parts.push_back(encode(std::u32string_view(u).substr(i)));
  return parts;
}

std::vector<std::string> rsplit(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit) {
  std::vector<std::string> parts;
  if (maxsplit < 0) maxsplit = INT64_MAX;
  if (sep) {
    if (sep->empty()) throw Failure("empty separator");
    size_t end = s.size();
    for (; maxsplit > 0 && end >= sep->size(); --maxsplit) {
      const size_t pos = s.rfind(*sep, end - sep->size());
      if (pos == std::string_view::npos) break;
      parts.emplace_back(s.substr(pos + sep->size(), end - pos - sep->size()));
      end = pos;
    }
    parts.emplace_back(s.substr(0, end));
  } else {
    const std::u32string u = decode(s);
    size_t i = u.size();
    for (; maxsplit > 0; --maxsplit) {
      while (i > 0 && is_space(u[i - 1])) --i;
      if (i == 0) break;
      const size_t j = i;
      while (i > 0 && !is_space(u[i - 1])) --i;
      parts.push_back(encode(std::u32string_view(u).substr(i, j - i)));
    }
    while (i > 0 && is_space(u[i - 1])) --i;
    if (i > 0) parts.push_back(encode(std::u32string_view(u).substr(0, i)));
  }
  std::reverse(parts.begin(), parts.end());
  return parts;
}

std::vector<std::string> splitlines(std::string_view s) {
  static const std::u32string kBreaks = U"\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029";
  const std::u32string u = decode(s);
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t i = 0; i < u.size(); ++i) {
    if (!in_set(u[i], kBreaks)) continue;
    lines.push_back(encode(std::u32string_view(u).substr(start, i - start)));
    if (u[i] == '\r' && i + 1 < u.size() && u[i + 1] == '\n') ++i;
    start = i + 1;
  }
  if (start < u.size()) lines.push_back(encode(std::u32string_view(u).substr(start)));
  return lines;
}

std::string replace(std::string_view s, std::string_view old, std::string_view with, int64_t count) {
  if (count < 0) count = INT64_MAX;
  std::string out;
  if (old.empty()) {  // Python inserts `with` before every character and at the end
    const std::u32string u = decode(s);
    for (char32_t c : u) {
      if (count > 0) { out += with; --count; }
      append_utf8(out, c);
    }
    if (count > 0) out += with;
    return out;
  }
  size_t start = 0;
  for (size_t pos; count > 0 && (pos = s.find(old, start)) != std::string_view::npos; --count) {
    out.append(s.substr(start, pos - start));
    out.append(with);
    start = pos + old.size();
  }
  out.append(s.substr(start));
  return out;
}

std::string upper(std::string_view s) { return encode(map_case(decode(s), true)); }
std::string lower(std::string_view s) { return encode(map_case(decode(s), false)); }

std::string title(std::string_view s) {
  const std::u32string u = decode(s);
  std::u32string out;
  bool previous_cased = false;
  for (char32_t c : u) {
    if (previous_cased) out += map_case(std::u32string(1, c), false);
    else out.push_back(char32_t(u_totitle(UChar32(c))));
    previous_cased = is_cased(c);
  }
  return encode(out);
}

std::string capitalize(std::string_view s) {
  const std::u32string u = decode(s);
  if (u.empty()) return {};
  std::u32string out(1, char32_t(u_totitle(UChar32(u[0]))));
  out += map_case(std::u32string_view(u).substr(1), false);
  return encode(out);
}

}  // namespace linfer::jinja::text
