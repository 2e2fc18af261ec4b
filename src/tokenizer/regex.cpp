#include "tokenizer/regex.h"

#include "linfer/core/error.h"

namespace linfer::tok {
namespace {

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof buf);
  return reinterpret_cast<const char*>(buf);
}

// True when `name` is a Unicode script (as opposed to a general category like "L" / "Lu" or a binary
// property like "White_Space"): those are what PCRE2 reads as Script_Extensions.
bool is_script_name(std::string_view name) {
  if (name.size() <= 2 || name.find_first_of(":=") != std::string_view::npos) return false;
  const std::string probe = fmt::format("\\p{{sc:{}}}", name);
  int err;
  PCRE2_SIZE offset;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(probe.data()), probe.size(),
                                   PCRE2_UTF | PCRE2_UCP, &err, &offset, nullptr);
  if (!code) return false;
  pcre2_code_free(code);
  return true;
}

struct Translator {
  std::string_view p;
  size_t i = 0;

  [[noreturn]] void unsupported(std::string_view what) const {
    fail("pre-tokenizer pattern: {} at offset {} is not supported: {}", what, i, p);
  }

  // An escape at p[i] == '\\'; appends its PCRE2 form.
  void escape(std::string& out) {
    if (i + 1 >= p.size()) unsupported("a trailing backslash");
    const char c = p[i + 1];
    if (c == 's' || c == 'S') {
      out += c == 's' ? "\\p{White_Space}" : "\\P{White_Space}";
      i += 2;
    } else if ((c == 'p' || c == 'P') && i + 2 < p.size() && p[i + 2] == '{') {
      const size_t close = p.find('}', i + 3);
      if (close == std::string_view::npos) unsupported("an unterminated \\p{");
      const std::string_view name = p.substr(i + 3, close - i - 3);
      out += fmt::format("\\{}{{{}{}}}", c, is_script_name(name) ? "sc:" : "", name);
      i = close + 1;
    } else {
      out += p.substr(i, 2);
      i += 2;
    }
  }

  // The body of a class (after '[' and an optional '^') up to, not including, its closing ']'.
  // Stops before "&&" too; returns with p[i] == ']' or at "&&".
  std::string class_body() {
    std::string body;
    if (i < p.size() && p[i] == ']') body += p[i++];  // a leading ']' is a literal
    while (i < p.size() && p[i] != ']') {
      if (p.compare(i, 2, "&&") == 0) return body;
      if (p[i] == '\\') {
        escape(body);
      } else if (p.compare(i, 2, "[:") == 0) {  // POSIX class [:alpha:]
        const size_t close = p.find(":]", i + 2);
        if (close == std::string_view::npos) unsupported("an unterminated [:");
        body += p.substr(i, close + 2 - i);
        i = close + 2;
      } else if (p[i] == '[') {
        unsupported("a nested character class");
      } else {
        body += p[i++];
      }
    }
    if (i >= p.size()) unsupported("an unterminated character class");
    return body;
  }

  // A class at p[i] == '['.
  void char_class(std::string& out) {
    ++i;
    const bool negated = i < p.size() && p[i] == '^';
    if (negated) ++i;
    const std::string left = class_body();
    if (p[i] == ']') {
      ++i;
      out += fmt::format("[{}{}]", negated ? "^" : "", left);
      return;
    }
    // Intersection [X&&[Y]] / [X&&[^Y]]: a character of X that (does not) match Y.
    if (negated) unsupported("a negated class intersection");
    i += 2;
    if (i >= p.size() || p[i] != '[') unsupported("a class intersection whose right side is not a [class]");
    ++i;
    const bool right_negated = i < p.size() && p[i] == '^';
    if (right_negated) ++i;
    const std::string right = class_body();
    if (p[i] != ']') unsupported("a class intersection of more than two classes");
    ++i;
    if (i >= p.size() || p[i] != ']') unsupported("a class intersection followed by more class items");
    ++i;
    out += fmt::format("(?:(?{}[{}])[{}])", right_negated ? "!" : "=", right, left);
  }

  std::string run() {
    std::string out;
    while (i < p.size()) {
      if (p[i] == '\\') {
        escape(out);
      } else if (p[i] == '[') {
        char_class(out);
      } else {
        out += p[i++];
      }
    }
    return out;
  }
};

}  // namespace

std::string translate_pattern(std::string_view pattern) { return Translator{pattern}.run(); }

namespace {

// Match data and JIT stack of the calling thread, shared by every Regex: only the whole-match
// offsets are read, so one ovector pair is enough whatever the pattern.
struct Matcher {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  // Lookaheads inside repeats (the Kimi pattern) need more than the default 32 KiB on long words.
  pcre2_jit_stack* stack = pcre2_jit_stack_create(64 * 1024, 64 * 1024 * 1024, nullptr);
  Matcher() { pcre2_jit_stack_assign(context, nullptr, stack); }
  ~Matcher() {
    pcre2_jit_stack_free(stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
};

Matcher& thread_matcher() {
  thread_local Matcher m;
  return m;
}

}  // namespace

Regex::Regex(const std::string& pattern, std::string_view what) : pattern_(pattern) {
  int err;
  PCRE2_SIZE offset;
  code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF | PCRE2_UCP,
                        &err, &offset, nullptr);
  if (!code_) fail("{}: regex does not compile at offset {}: {} (pattern: {})", what, offset, pcre2_message(err), pattern);
  jit_ = pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE) == 0;  // interpreter where JIT is unavailable
}

Regex::~Regex() { pcre2_code_free(code_); }

bool Regex::next_match(std::string_view text, size_t from, size_t& begin, size_t& end) const {
  Matcher& m = thread_matcher();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  const int rc = jit_ ? pcre2_jit_match(code_, subject, text.size(), from, 0, m.data, m.context)
                      : pcre2_match(code_, subject, text.size(), from, PCRE2_NO_UTF_CHECK, m.data, m.context);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  // rc == 0: more groups than the one ovector pair; the whole match is still there.
  if (rc < 0) fail("pre-tokenizer regex failed on a {}-byte text: {}", text.size(), pcre2_message(rc));
  const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(m.data);
  begin = ovector[0];
  end = ovector[1];
  return true;
}

}  // namespace linfer::tok
