#pragma once
// Pre-tokenizer regexes on PCRE2 (UTF + Unicode properties + JIT).
//
// Tokenizer patterns are written for other engines (Rust `regex` / fancy-regex in tiktoken,
// Oniguruma in Hugging Face tokenizers). translate_pattern() rewrites the constructs whose meaning
// differs in PCRE2 10.42 so that the same text splits the same way:
//   \s, \S          -> \p{White_Space}, \P{White_Space}   (PCRE2's \s also matches U+180E)
//   \p{Han} (script) -> \p{sc:Han}                         (a bare script name means Script_Extensions
//                                                          in PCRE2, Script in the other engines)
//   [X&&[^Y]]       -> (?:(?![Y])[X])                      (PCRE2 10.42 has no class intersection and
//                                                          would silently read "&&[" as literals)
// Any other use of "&&" inside a class is refused with an Error.

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

#include <cstddef>
#include <string>
#include <string_view>

namespace linfer::tok {

std::string translate_pattern(std::string_view pattern);

class Regex {
 public:
  // `pattern` is used as given (translate first where needed); throws Error naming `what` when
  // PCRE2 rejects it.
  Regex(const std::string& pattern, std::string_view what);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  const std::string& pattern() const { return pattern_; }

  // Calls on_match(begin, end) for each non-empty, non-overlapping match in `text` (valid UTF-8),
  // left to right. Match state is per thread, so one Regex serves many threads.
  template <class F>
  void for_each_match(std::string_view text, F&& on_match) const;

 private:
  // Next match at or after `from`; false when there is none. Uses this thread's match data.
  bool next_match(std::string_view text, size_t from, size_t& begin, size_t& end) const;

  std::string pattern_;
  pcre2_code_8* code_ = nullptr;
  bool jit_ = false;
};

template <class F>
void Regex::for_each_match(std::string_view text, F&& on_match) const {
  size_t pos = 0, begin, end;
  while (pos < text.size() && next_match(text, pos, begin, end)) {
    if (end > begin) {
      on_match(begin, end);
      pos = end;
    } else {
      // Empty match: step over one character so the scan progresses.
      pos = begin + 1;
      while (pos < text.size() && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80) ++pos;
    }
  }
}

}  // namespace linfer::tok
