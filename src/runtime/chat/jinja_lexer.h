#pragma once
// Splits a template into text and tag tokens the way Jinja2's lexer does in the environment
// transformers uses (trim_blocks and lstrip_blocks on, keep_trailing_newline off):
// - "\r\n" and "\r" become "\n" and one trailing newline of the template is dropped;
// - `{%- ... -%}`, `{{- ... -}}`, `{#- ... -#}` strip the whitespace before / after the tag;
// - trim_blocks drops the first newline after a `%}` or `#}`;
// - lstrip_blocks drops spaces and tabs between the start of a line and a `{%` or `{#`
//   (`{%+` keeps them);
// - `{% raw %}...{% endraw %}` is text.
// Comments are dropped. Inside a tag, `}}` and `%}` end it only when brackets are balanced, so
// `{{ {'a': {}} }}` works.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace linfer::jinja {

enum class Tok : uint8_t { Text, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Int, Float, Op, End };

struct Token {
  Tok type;
  std::string text;  // Text: the data; Name, Op: the spelling; String: the decoded value
  int64_t int_value = 0;
  double float_value = 0;
  int line = 1, column = 1;
};

// Throws TemplateError (unterminated tags or strings, unexpected characters, unbalanced brackets).
std::vector<Token> tokenize(std::string_view source);

}  // namespace linfer::jinja
