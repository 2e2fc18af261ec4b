#include "tokenizer/added_tokens.h"

#include <unicode/uchar.h>

#include <algorithm>

#include "tokenizer/utf8.h"

namespace linfer::tok {
namespace {

// Rust regex's Unicode \w, which Hugging Face uses for single_word.
bool is_word_char(char32_t c) {
  const UChar32 u = static_cast<UChar32>(c);
  if (u_hasBinaryProperty(u, UCHAR_ALPHABETIC) || u_hasBinaryProperty(u, UCHAR_JOIN_CONTROL)) return true;
  switch (u_charType(u)) {
    case U_NON_SPACING_MARK:
    case U_ENCLOSING_MARK:
    case U_COMBINING_SPACING_MARK:
    case U_DECIMAL_DIGIT_NUMBER:
    case U_CONNECTOR_PUNCTUATION:
      return true;
    default:
      return false;
  }
}

bool is_space(char32_t c) { return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_WHITE_SPACE); }

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(const std::vector<AddedToken>& tokens) : tokens_(tokens), trie_(1) {
  for (size_t t = 0; t < tokens_.size(); ++t) {
    const std::string& s = tokens_[t].content;
    if (s.empty()) continue;
    first_byte_[static_cast<uint8_t>(s[0])] = true;
    int32_t node = 0;
    for (const char ch : s) {
      const auto b = static_cast<uint8_t>(ch);
      auto& next = trie_[node].next;
      auto it = std::find_if(next.begin(), next.end(), [b](const auto& e) { return e.first == b; });
      if (it != next.end()) {
        node = it->second;
      } else {
        const auto child = static_cast<int32_t>(trie_.size());
        next.emplace_back(b, child);
        trie_.emplace_back();
        node = child;
      }
    }
    trie_[node].token = static_cast<int32_t>(t);
  }
}

int32_t AddedTokenMatcher::longest_at(std::string_view text, size_t pos, size_t& end) const {
  int32_t found = -1;
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    const auto b = static_cast<uint8_t>(text[i]);
    const auto& next = trie_[node].next;
    auto it = std::find_if(next.begin(), next.end(), [b](const auto& e) { return e.first == b; });
    if (it == next.end()) break;
    node = it->second;
    if (trie_[node].token >= 0) {
      found = trie_[node].token;
      end = i + 1;
    }
  }
  return found;
}

void AddedTokenMatcher::split(std::string_view text, bool skip_special, std::vector<Segment>& out) const {
  size_t emitted = 0;  // text[..emitted] is already in `out`
  size_t pos = 0;
  while (pos < text.size()) {
    size_t stop = 0;
    const int32_t t = first_byte_[static_cast<uint8_t>(text[pos])] ? longest_at(text, pos, stop) : -1;
    if (t < 0) {
      ++pos;
      continue;
    }
    const AddedToken& token = tokens_[t];
    size_t start = pos;
    pos = stop;  // a discarded match is still consumed, as with Hugging Face's matcher
    if (skip_special && token.special) continue;
    if (token.single_word) {
      size_t before = start, after = stop;
      const bool word_before = start > 0 && is_word_char(utf8_prev(text, before));
      const bool word_after = stop < text.size() && is_word_char(utf8_next(text, after));
      if (word_before || word_after) continue;
    }
    if (token.lstrip) {
      size_t s = start;
      while (s > emitted) {
        size_t prev = s;
        if (!is_space(utf8_prev(text, prev))) break;
        s = prev;
      }
      start = s;
    }
    if (token.rstrip) {
      while (stop < text.size()) {
        size_t next = stop;
        if (!is_space(utf8_next(text, next))) break;
        stop = next;
      }
      pos = stop;
    }
    if (start > emitted) out.push_back({text.substr(emitted, start - emitted), -1});
    out.push_back({text.substr(start, stop - start), token.id});
    emitted = stop;
  }
  if (emitted < text.size()) out.push_back({text.substr(emitted), -1});
}

}  // namespace linfer::tok
