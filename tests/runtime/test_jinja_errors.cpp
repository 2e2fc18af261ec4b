// Error messages of the template engine: what went wrong and where (line, column), so the author
// of a broken template can find it. Positions below are counted by hand from the sources.

#include <gtest/gtest.h>

#include "runtime/chat/jinja.h"

namespace {

using linfer::jinja::Template;
using linfer::jinja::TemplateError;
using linfer::jinja::Value;

struct Caught {
  std::string reason;
  int line = 0, column = 0;
  bool raised = false;
};

Caught error_of(const std::string& source, const std::string& vars_json = "{}") {
  try {
    Template t(source);
    t.render(linfer::jinja::from_json(nlohmann::ordered_json::parse(vars_json)));
  } catch (const linfer::jinja::TemplateRaised& e) {
    return {e.reason(), e.line(), e.column(), true};
  } catch (const TemplateError& e) {
    return {e.reason(), e.line(), e.column(), false};
  }
  ADD_FAILURE() << "no error from: " << source;
  return {};
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(JinjaErrors, UnclosedBlockNamesTheBlockAndWhereItOpened) {
  const Caught e = error_of("a\n{% for m in messages %}\n  {% if m %}x{% endif %}\n");
  EXPECT_TRUE(has(e.reason, "'for' block opened on line 2 is not closed")) << e.reason;
  EXPECT_TRUE(has(e.reason, "'endfor'")) << e.reason;
  EXPECT_EQ(e.line, 3);  // the end of the template (its trailing newline is dropped)
  const Caught elif = error_of("{% if a %}x{% elif b %}y");
  EXPECT_TRUE(has(elif.reason, "'if' block opened on line 1")) << elif.reason;
  EXPECT_TRUE(has(elif.reason, "'endif'")) << elif.reason;
}

TEST(JinjaErrors, StrayEndTagAndUnknownTag) {
  Caught e = error_of("ok\n  {% endif %}");
  EXPECT_TRUE(has(e.reason, "unknown tag 'endif'")) << e.reason;
  EXPECT_EQ(e.line, 2);
  EXPECT_EQ(e.column, 6);
  e = error_of("{% include 'other.jinja' %}");
  EXPECT_TRUE(has(e.reason, "not supported")) << e.reason;
}

TEST(JinjaErrors, UnknownFilterAndTestArePositioned) {
  Caught e = error_of("{{ messages }}\n{{ x | trim | shout }}");
  EXPECT_EQ(e.reason, "no filter named 'shout'");
  EXPECT_EQ(e.line, 2);
  EXPECT_EQ(e.column, 15);
  e = error_of("{% if true %}{{ 1 is prime }}{% endif %}");  // inside if: fails when evaluated
  EXPECT_EQ(e.reason, "no test named 'prime'");
  EXPECT_EQ(e.column, 22);
}

TEST(JinjaErrors, RaiseExceptionCarriesTheTemplatesMessage) {
  const Caught e = error_of("{%- for m in messages %}\n{%- if m.role == 'tool' %}{{ raise_exception('tools are not supported: ' ~ m.role) }}{% endif %}{% endfor %}",
                            R"({"messages": [{"role": "user"}, {"role": "tool"}]})");
  EXPECT_TRUE(e.raised);
  EXPECT_EQ(e.reason, "tools are not supported: tool");
  EXPECT_EQ(e.line, 2);
  EXPECT_EQ(e.column, 30);
}

TEST(JinjaErrors, UndefinedUseSaysWhatWasUndefined) {
  Caught e = error_of("{{ user.name }}");
  EXPECT_EQ(e.reason, "'user' is undefined");
  EXPECT_EQ(e.column, 8);  // the '.'
  e = error_of("{{ m.content.strip() }}", R"({"m": {"role": "user"}})");
  EXPECT_EQ(e.reason, "'dict object' has no attribute 'content'");
  e = error_of("{{ xs[3].role }}", R"({"xs": [1]})");
  EXPECT_EQ(e.reason, "'list object' has no element 3");
}

TEST(JinjaErrors, TypeErrorsUsePythonsWords) {
  EXPECT_EQ(error_of("{{ 'n=' + 1 }}").reason, "can only concatenate str (not \"int\") to str");
  EXPECT_EQ(error_of("{{ 1 < 'a' }}").reason, "'<' not supported between instances of 'int' and 'str'");
  EXPECT_EQ(error_of("{{ 5 | length }}").reason, "object of type 'int' has no len()");
  EXPECT_EQ(error_of("{{ range | tojson }}").reason, "Object of type function is not JSON serializable");
  EXPECT_EQ(error_of("{{ 'abc'.zfill(5) }}").reason, "str.zfill() is not supported by linfer's template engine");
}

TEST(JinjaErrors, LexerErrors) {
  Caught e = error_of("ok {{ 'never closed }}");
  EXPECT_EQ(e.reason, "unterminated string literal");
  EXPECT_EQ(e.column, 7);
  e = error_of("a\nb {{ x ");
  EXPECT_TRUE(has(e.reason, "'{{' tag is not closed")) << e.reason;
  EXPECT_EQ(e.line, 2);
  EXPECT_EQ(e.column, 3);
  e = error_of("{{ (1, 2] }}");
  EXPECT_EQ(e.reason, "unexpected ']', expected ')'");
  e = error_of("{# open comment");
  EXPECT_EQ(e.reason, "missing end of comment tag");
  e = error_of("{{ a $ b }}");
  EXPECT_EQ(e.reason, "unexpected character '$'");
  EXPECT_EQ(e.column, 6);
}

TEST(JinjaErrors, ParserErrors) {
  EXPECT_EQ(error_of("{% break %}").reason, "'break' outside of a loop");
  EXPECT_TRUE(has(error_of("{{ 1 + }}").reason, "unexpected end of print statement")) << error_of("{{ 1 + }}").reason;
  EXPECT_EQ(error_of("{% set x = %}").reason, "expected an expression, got end of statement block '%}'");
  EXPECT_EQ(error_of("{% macro m(a=1, b) %}{% endmacro %}").reason, "non-default argument follows default argument");
  EXPECT_EQ(error_of("{{ f(x=1, 2) }}").reason, "positional argument follows keyword argument");
  EXPECT_EQ(error_of("{% for x in xs recursive %}{% endfor %}").reason, "recursive loops are not supported");
}

TEST(JinjaErrors, DeepNestingIsAnErrorNotACrash) {
  EXPECT_EQ(error_of("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}").reason, "expression nested too deeply");
  std::string blocks;
  for (int i = 0; i < 5000; ++i) blocks += "{% if true %}";
  EXPECT_EQ(error_of(blocks).reason, "blocks nested too deeply");
  EXPECT_TRUE(has(error_of("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}").reason, "maximum recursion depth"));
}

TEST(JinjaErrors, MessageIncludesThePosition) {
  try {
    Template("{{ 1 +* 2 }}");
    FAIL();
  } catch (const TemplateError& e) {
    EXPECT_EQ(std::string(e.what()), "template line 1, column 7: unexpected '*'");
  }
}

}  // namespace
