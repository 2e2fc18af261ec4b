#pragma once
// Python str semantics over UTF-8: templates index, slice and measure strings by code point
// ('é日本'[1] == '日', length 3), strip Unicode whitespace, and change case with Unicode's full
// mappings ('straße'.upper() == 'STRASSE'). Bytes that are not valid UTF-8 travel as lone code points
// U+DC80..U+DCFF and are written back unchanged (Python's surrogateescape), so nothing is lost.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace linfer::jinja::text {

std::u32string decode(std::string_view s);
std::string encode(std::u32string_view s);
void append_utf8(std::string& out, char32_t c);
char32_t decode_at(std::string_view s, size_t pos, size_t& n);  // the code point at byte pos; n: its bytes
size_t length(std::string_view s);  // in code points

bool is_space(char32_t c);      // Python str.isspace() for one character
bool is_printable(char32_t c);  // Python str.isprintable() for one character

// chars: the set to strip (Python's strip(chars)); nullopt strips whitespace.
std::string strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right);
// sep nullopt: split on runs of whitespace, dropping empty pieces. maxsplit < 0: no limit.
std::vector<std::string> split(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit);
std::vector<std::string> rsplit(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit);
std::vector<std::string> splitlines(std::string_view s);
std::string replace(std::string_view s, std::string_view old, std::string_view with, int64_t count);

std::string upper(std::string_view s);
std::string lower(std::string_view s);
std::string title(std::string_view s);       // str.title(): a word is a run of cased letters
std::string capitalize(std::string_view s);  // str.capitalize()

}  // namespace linfer::jinja::text
