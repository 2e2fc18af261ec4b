#include "runtime/chat/jinja_lexer.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "runtime/chat/jinja_error.h"
#include "runtime/chat/jinja_text.h"

namespace linfer::jinja {

namespace {

std::string normalize_newlines(std::string_view src) {
  std::string s;
  s.reserve(src.size());
  for (size_t i = 0; i < src.size(); ++i) {
    if (src[i] == '\r') {
      s += '\n';
      if (i + 1 < src.size() && src[i + 1] == '\n') ++i;
    } else {
      s += src[i];
    }
  }
  if (!s.empty() && s.back() == '\n') s.pop_back();  // keep_trailing_newline=False
  return s;
}

bool is_name_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || (c & 0x80); }
bool is_name_char(char c) { return is_name_start(c) || std::isdigit(static_cast<unsigned char>(c)); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

class Lexer {
 public:
  explicit Lexer(std::string_view source) : s_(normalize_newlines(source)) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < s_.size(); ++i) if (s_[i] == '\n') line_starts_.push_back(i + 1);
  }

  std::vector<Token> run() {
    size_t pos = 0;
    bool line_starting = true;  // the previous match ended a line (lstrip_blocks needs it)
    while (pos < s_.size()) {
      const size_t p = find_opener(pos);
      if (p == std::string::npos) {
        emit_text(s_.substr(pos), pos);
        break;
      }
      const char kind = s_[p + 1];
      size_t m = p + 2;
      const char mod = m < s_.size() && (s_[m] == '-' || s_[m] == '+') ? s_[m] : 0;
      if (mod) ++m;
      std::string text = s_.substr(pos, p - pos);
      if (mod == '-') {
        text = text::strip(text, std::nullopt, false, true);
      } else if (mod != '+' && kind != '{') {  // lstrip_blocks
        const size_t l_pos = text.rfind('\n') + 1;  // npos + 1 == 0
        if ((l_pos > 0 || line_starting) && l_pos < text.size() && all_space(std::string_view(text).substr(l_pos))) {
          text.resize(l_pos);
        }
      }
      emit_text(std::move(text), pos);
      if (kind == '#') {
        pos = comment(p, m);
      } else if (size_t body; kind == '%' && (body = raw_begin(m)) != std::string::npos) {
        pos = raw(p, body);
      } else {
        pos = tag(p, m, kind == '%');
      }
      line_starting = pos > 0 && s_[pos - 1] == '\n';
    }
    tokens_.push_back(Token{Tok::End, "", 0, 0, line_of(s_.size()), column_of(s_.size())});
    return std::move(tokens_);
  }

 private:
  std::string s_;
  std::vector<size_t> line_starts_;
  std::vector<Token> tokens_;

  int line_of(size_t pos) const {
    return int(std::upper_bound(line_starts_.begin(), line_starts_.end(), pos) - line_starts_.begin());
  }
  int column_of(size_t pos) const { return int(pos - line_starts_[size_t(line_of(pos) - 1)]) + 1; }

  [[noreturn]] void fail(const std::string& why, size_t pos) const {
    throw TemplateError(why, line_of(pos), column_of(pos));
  }

  Token make(Tok type, std::string text, size_t pos) const {
    return Token{type, std::move(text), 0, 0, line_of(pos), column_of(pos)};
  }

  void emit_text(std::string text, size_t pos) {
    if (!text.empty()) tokens_.push_back(make(Tok::Text, std::move(text), pos));
  }

  size_t find_opener(size_t pos) const {
    for (size_t p = s_.find('{', pos); p != std::string::npos; p = s_.find('{', p + 1)) {
      if (p + 1 < s_.size() && (s_[p + 1] == '{' || s_[p + 1] == '%' || s_[p + 1] == '#')) return p;
    }
    return std::string::npos;
  }

  static bool all_space(std::string_view t) {
    for (char32_t c : text::decode(t)) if (!text::is_space(c)) return false;
    return true;
  }

  size_t skip_space(size_t pos) const {  // Jinja's \s: Unicode whitespace
    while (pos < s_.size()) {
      size_t n = 0;
      if (!text::is_space(text::decode_at(s_, pos, n))) break;
      pos += n;
    }
    return pos;
  }

  // After `-%}`, `+%}`, `%}` (or the `#}` forms) at q: where the text continues.
  size_t after_block_end(size_t q, size_t content_start, size_t close_len) const {
    const char before = q > content_start ? s_[q - 1] : 0;
    size_t next = q + close_len;
    if (before == '-') return skip_space(next);
    if (before == '+') return next;
    if (next < s_.size() && s_[next] == '\n') ++next;  // trim_blocks
    return next;
  }

  size_t comment(size_t p, size_t m) {
    const size_t q = s_.find("#}", m);
    if (q == std::string::npos) fail("missing end of comment tag", p);
    return after_block_end(q, m, 2);
  }

  // `{% raw %}`: returns where the raw text starts, or npos when this tag is not `raw`.
  size_t raw_begin(size_t m) const {
    size_t q = skip_space(m);
    if (s_.compare(q, 3, "raw") != 0) return std::string::npos;
    q = skip_space(q + 3);
    if (s_.compare(q, 3, "-%}") == 0) return skip_space(q + 3);
    if (s_.compare(q, 2, "%}") == 0) return q + 2;
    return std::string::npos;
  }

  size_t raw(size_t p, size_t body) {
    for (size_t q = s_.find("{%", body); q != std::string::npos; q = s_.find("{%", q + 1)) {
      size_t m = q + 2;
      const char mod = m < s_.size() && (s_[m] == '-' || s_[m] == '+') ? s_[m] : 0;
      if (mod) ++m;
      size_t r = skip_space(m);
      if (s_.compare(r, 6, "endraw") != 0) continue;
      r = skip_space(r + 6);
      size_t end;
      if (s_.compare(r, 3, "-%}") == 0 || s_.compare(r, 3, "+%}") == 0) end = after_block_end(r + 1, r, 2);
      else if (s_.compare(r, 2, "%}") == 0) end = after_block_end(r, r, 2);
      else continue;
      std::string text = s_.substr(body, q - body);
      if (mod == '-') {
        text = text::strip(text, std::nullopt, false, true);
      } else if (mod != '+') {
        const size_t l_pos = text.rfind('\n') + 1;
        if (l_pos > 0 && l_pos < text.size() && all_space(std::string_view(text).substr(l_pos))) text.resize(l_pos);
      }
      emit_text(std::move(text), body);
      return end;
    }
    fail("missing end of raw directive", p);
  }

  size_t tag(size_t p, size_t m, bool block) {
    tokens_.push_back(make(block ? Tok::BlockBegin : Tok::VarBegin, "", p));
    std::vector<char> brackets;  // expected closers
    size_t pos = m;
    while (true) {
      if (brackets.empty()) {
        if (block) {
          if (s_.compare(pos, 3, "-%}") == 0 || s_.compare(pos, 3, "+%}") == 0) {
            tokens_.push_back(make(Tok::BlockEnd, "", pos));
            return after_block_end(pos + 1, pos, 2);
          }
          if (s_.compare(pos, 2, "%}") == 0) {
            tokens_.push_back(make(Tok::BlockEnd, "", pos));
            return after_block_end(pos, pos, 2);
          }
        } else {
          if (s_.compare(pos, 3, "-}}") == 0) {
            tokens_.push_back(make(Tok::VarEnd, "", pos));
            return skip_space(pos + 3);
          }
          if (s_.compare(pos, 2, "}}") == 0) {
            tokens_.push_back(make(Tok::VarEnd, "", pos));
            return pos + 2;
          }
        }
      }
      const size_t after_space = skip_space(pos);
      if (after_space != pos) { pos = after_space; continue; }
      if (pos >= s_.size()) {
        fail(block ? "unexpected end of template: a '{%' tag is not closed with '%}'"
                   : "unexpected end of template: a '{{' tag is not closed with '}}'", p);
      }
      pos = token(pos, brackets);
    }
  }

  size_t token(size_t pos, std::vector<char>& brackets) {
    const char c = s_[pos];
    if (is_digit(c)) return number(pos);
    if (is_name_start(c)) {
      size_t e = pos;
      while (e < s_.size() && is_name_char(s_[e])) ++e;
      tokens_.push_back(make(Tok::Name, s_.substr(pos, e - pos), pos));
      return e;
    }
    if (c == '\'' || c == '"') return string(pos);
    static const char* kOps[] = {"//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[", "]",
                                 "(", ")", "{", "}", ">", "<", "=", ".", ":", "|", ",", ";"};
    for (const char* op : kOps) {
      const size_t n = std::char_traits<char>::length(op);
      if (s_.compare(pos, n, op) != 0) continue;
      if (n == 1 && (c == '(' || c == '[' || c == '{')) {
        brackets.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
      } else if (n == 1 && (c == ')' || c == ']' || c == '}')) {
        if (brackets.empty()) fail(std::string("unexpected '") + c + "'", pos);
        if (brackets.back() != c) fail(std::string("unexpected '") + c + "', expected '" + brackets.back() + "'", pos);
        brackets.pop_back();
      }
      tokens_.push_back(make(Tok::Op, op, pos));
      return pos + n;
    }
    fail(std::string("unexpected character '") + c + "'", pos);
  }

  // Digits with optional '_' separators; returns the end.
  size_t digits(size_t pos) const {
    size_t e = pos;
    while (e < s_.size() && (is_digit(s_[e]) || (s_[e] == '_' && e > pos && e + 1 < s_.size() && is_digit(s_[e + 1])))) ++e;
    return e;
  }

  size_t number(size_t pos) {
    const bool after_dot = pos > 0 && s_[pos - 1] == '.';  // `x.0.1` is item access, not a float
    if (s_[pos] == '0' && pos + 1 < s_.size() && std::strchr("xXoObB", s_[pos + 1])) {
      const char k = char(std::tolower(s_[pos + 1]));
      const int base = k == 'x' ? 16 : k == 'o' ? 8 : 2;
      size_t e = pos + 2;
      std::string digits;
      while (e < s_.size() && (std::isxdigit(static_cast<unsigned char>(s_[e])) || s_[e] == '_')) {
        if (s_[e] != '_') digits += s_[e];
        ++e;
      }
      Token t = make(Tok::Int, s_.substr(pos, e - pos), pos);
      try { t.int_value = std::stoll(digits, nullptr, base); } catch (...) { fail("invalid integer literal", pos); }
      tokens_.push_back(std::move(t));
      return e;
    }
    size_t e = digits(pos);
    bool is_float = false;
    if (!after_dot) {
      size_t f = e;
      if (f + 1 < s_.size() && s_[f] == '.' && is_digit(s_[f + 1])) { f = digits(f + 1); is_float = true; }
      if (f < s_.size() && (s_[f] == 'e' || s_[f] == 'E')) {
        size_t x = f + 1;
        if (x < s_.size() && (s_[x] == '+' || s_[x] == '-')) ++x;
        if (x < s_.size() && is_digit(s_[x])) { f = digits(x); is_float = true; }
      }
      if (is_float) e = f;
    }
    std::string spelled = s_.substr(pos, e - pos);
    std::string clean;
    for (char ch : spelled) if (ch != '_') clean += ch;
    Token t = make(is_float ? Tok::Float : Tok::Int, spelled, pos);
    try {
      if (is_float) t.float_value = std::stod(clean);
      else t.int_value = std::stoll(clean);
    } catch (const std::out_of_range&) {
      if (!is_float) fail("integer literal too large", pos);
      t.float_value = HUGE_VAL;
    }
    tokens_.push_back(std::move(t));
    return e;
  }

  static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  // Python's "unicode-escape" decoding of a string literal's body, as Jinja does.
  size_t string(size_t pos) {
    const char quote = s_[pos];
    std::string out;
    size_t i = pos + 1;
    for (;; ++i) {
      if (i >= s_.size()) fail("unterminated string literal", pos);
      const char c = s_[i];
      if (c == quote) break;
      if (c != '\\') { out += c; continue; }
      if (++i >= s_.size()) fail("unterminated string literal", pos);
      const char e = s_[i];
      switch (e) {
        case '\n': break;
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'v': out += '\v'; break;
        case 'x': case 'u': case 'U': {
          const int n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          uint32_t cp = 0;
          for (int k = 1; k <= n; ++k) {
            const int h = i + size_t(k) < s_.size() ? hex_value(s_[i + size_t(k)]) : -1;
            if (h < 0) fail(std::string("truncated \\") + e + " escape in string literal", i - 1);
            cp = cp * 16 + uint32_t(h);
          }
          if (cp > 0x10FFFF) fail("illegal Unicode character in string literal", i - 1);
          text::append_utf8(out, char32_t(cp));
          i += size_t(n);
          break;
        }
        case 'N': fail("\\N{...} escapes are not supported in string literals", i - 1);
        default:
          if (e >= '0' && e <= '7') {
            uint32_t cp = uint32_t(e - '0');
            for (int k = 0; k < 2 && i + 1 < s_.size() && s_[i + 1] >= '0' && s_[i + 1] <= '7'; ++k) {
              cp = cp * 8 + uint32_t(s_[++i] - '0');
            }
            text::append_utf8(out, char32_t(cp));
          } else {
            out += '\\';
            out += e;
          }
      }
    }
    tokens_.push_back(make(Tok::String, std::move(out), pos));
    return i + 1;
  }
};

}  // namespace

std::vector<Token> tokenize(std::string_view source) { return Lexer(source).run(); }

}  // namespace linfer::jinja
