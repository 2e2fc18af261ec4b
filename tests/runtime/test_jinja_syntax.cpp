// The template language itself, checked against Python Jinja2 in transformers' configuration:
// whitespace control, literals, operators, control flow, scoping, macros, undefined values.

#include "jinja_reference.h"

using linfer::jinja::testing::expect_same_as_jinja2;
using linfer::jinja::testing::Outcome;

namespace {

const char* kMessages = R"({"messages": [
  {"role": "system", "content": "Be brief."},
  {"role": "user", "content": "Hi there"},
  {"role": "assistant", "content": "Hello!"},
  {"role": "user", "content": "2+2?"}]})";

TEST(JinjaSyntax, WhitespaceControlTrimBlocksAndLstripBlocks) {
  expect_same_as_jinja2({
      // trim_blocks: the newline after %} goes; lstrip_blocks: indentation before {% goes
      {"{% for m in messages %}\n    {% if m.role == 'user' %}\n    U: {{ m.content }}\n    {% endif %}\n{% endfor %}\n", kMessages},
      {"a  {%- if true -%}  b  {%- endif -%}  \n\n c", "{}"},
      {"a\n  {{- 'x' -}}\n  b", "{}"},
      {"  {%+ if true %}kept indent{% endif %}\n", "{}"},
      {"x {% if true %}inline{% endif %} y\n  {% if true %}\n  z\n  {% endif %}", "{}"},
      {"line\n\t {% set a = 1 %}\ttab\n", "{}"},
      {"{% if true %}a{% endif +%}\nb", "{}"},
      {"\r\nwindows\r\n{% if true %}\r\nline\r\n{% endif %}\r\n", "{}"},
      {"trailing newline dropped\n", "{}"},
      {"two trailing newlines\n\n", "{}"},
      {"{{ 'a' }}\n{{ 'b' }}\n", "{}"},  // trim_blocks does not apply to }}
      {"{%- for i in range(3) %}\n  {{ i }}\n{%- endfor %}", "{}"},
      {"a {#- comment -#}  b {# keep #} c\n{# trimmed #}\nd", "{}"},
      {"  {# lstripped comment #}\nx", "{}"},
      {"{% raw %}{{ not a tag }}{% endraw %} {%- raw -%}  {% x %}  {%- endraw %}|", "{}"},
      {"  {%- if true %}x{% endif %}", "{}"},
      {"{{ {'a': {'b': 1}} }}{{ [{'x': []}] }}", "{}"},  // '}}' inside a dict literal is not the tag end
      {"é\u3000{%- if true %}x{% endif %}\u3000 {{- 'y' }}", "{}"},  // Unicode whitespace is stripped too
  });
}

TEST(JinjaSyntax, Literals) {
  expect_same_as_jinja2({
      {R"j({{ 'single' }} {{ "double" }} {{ 'it\'s' }} {{ "say \"hi\"" }} {{ 'a' 'b' "c" }})j", "{}"},
      {R"j({{ 'tab\there' }}|{{ 'nl\nx' }}|{{ '\\' }}|{{ '\x41\u00e9\U0001F600\101' }}|{{ '\q' }}|{{ 'cont\
inued' }})j", "{}"},
      {"{{ 42 }} {{ -7 }} {{ 1_000 }} {{ 0x1F }} {{ 0o17 }} {{ 0b101 }} {{ 3.25 }} {{ 1e3 }} {{ 2.5E-3 }} {{ 1_0.5 }}", "{}"},
      {"{{ true }} {{ True }} {{ false }} {{ none }} {{ None }}", "{}"},
      {"{{ [1, 'a', none, true, 1.5] }} {{ (1, 2) }} {{ (1,) }} {{ () }} {{ {'k': 'v', 'n': [1]} }} {{ [] }} {{ {} }}", "{}"},
      {"{{ [1, 2,] }} {{ {'a': 1,} }}", "{}"},
      {R"j({{ "it's" }} {{ ['it\'s', 'a"b', 'both\'"', 'tab\t', 'nl\n', 'bs\\', '\x01', 'é'] }})j", "{}"},
      {"{{ 1.0 }} {{ 1e16 }} {{ 1e15 }} {{ 1e-5 }} {{ 0.0001 }} {{ 0.1 + 0.2 }} {{ 123456789.123 }} {{ 1.5e300 }} {{ -0.0 }} {{ 2.5e-7 }}", "{}"},
  });
}

TEST(JinjaSyntax, ArithmeticAndStrings) {
  expect_same_as_jinja2({
      {"{{ 1 + 2 }} {{ 1 + 2.5 }} {{ 7 - 10 }} {{ 3 * 4 }} {{ 3 / 2 }} {{ 4 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 2 ** -1 }}", "{}"},
      {"{{ 5.5 % 2 }} {{ -5.5 // 2 }} {{ 5.5 // -2 }} {{ -5.5 % 2 }} {{ 7.0 // 2 }} {{ 2.0 ** 0.5 }}", "{}"},
      {"{{ true + 1 }} {{ false * 3 }} {{ 1 + 2 * 3 - 4 / 2 }} {{ (1 + 2) * 3 }} {{ -2 ** 2 }} {{ 2 ** 3 ** 2 }}", "{}"},
      {"{{ 'ab' + 'cd' }} {{ 'ab' * 3 }} {{ 3 * 'x' }} {{ 'a' * -1 }} {{ [1] + [2, 3] }} {{ [0] * 3 }}", "{}"},
      {"{{ 'a' ~ 1 ~ none ~ 1.5 ~ [1] ~ true }}", "{}"},
      {"{{ 'value: %s, %d, %.2f, %5s|%-5s|%x %%' % ('v', 3, 2.5, 'r', 'l', 255) }} {{ '%s' % 'one' }}", "{}"},
      {"{{ 1 / 0 }}", "{}", Outcome::Fails},
      {"{{ 1 // 0 }}", "{}", Outcome::Fails},
      {"{{ 1.5 % 0 }}", "{}", Outcome::Fails},
      {"{{ 'a' + 1 }}", "{}", Outcome::Fails},
      {"{{ 1 + 'a' }}", "{}", Outcome::Fails},
      {"{{ [1] + 'a' }}", "{}", Outcome::Fails},
      {"{{ -'a' }}", "{}", Outcome::Fails},
      {"{{ {} - 1 }}", "{}", Outcome::Fails},
  });
}

TEST(JinjaSyntax, ComparisonsAndLogic) {
  expect_same_as_jinja2({
      {"{{ 1 == 1.0 }} {{ 1 != 2 }} {{ 'a' == 'a' }} {{ [1, 2] == [1, 2] }} {{ {'a': 1} == {'a': 1} }} {{ (1, 2) == [1, 2] }} {{ none == none }} {{ true == 1 }}", "{}"},
      {"{{ 1 < 2 }} {{ 2 <= 2 }} {{ 3 > 4 }} {{ 4 >= 4 }} {{ 'a' < 'b' }} {{ 'B' < 'a' }} {{ [1, 2] < [1, 3] }} {{ [1] < [1, 0] }} {{ 3 > 2 > 1 }} {{ 1 < 3 > 2 }}", "{}"},
      {"{{ 1 < 'a' }}", "{}", Outcome::Fails},
      {"{{ none < 1 }}", "{}", Outcome::Fails},
      {"{{ 'b' in 'abc' }} {{ 'x' not in 'abc' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 'v' in {'k': 'v'} }} {{ not 1 in [1] }} {{ [1] in [[1]] }}", "{}"},
      {"{{ 1 in 'abc' }}", "{}", Outcome::Fails},
      {"{{ 1 in none }}", "{}", Outcome::Fails},
      {"{{ 1 and 2 }} {{ 0 and 2 }} {{ '' or 'default' }} {{ 'x' or 'y' }} {{ none or [] }} {{ not '' }} {{ not [1] }} {{ true and not false }}", "{}"},
      {"{{ 'yes' if 1 else 'no' }} {{ 'yes' if 0 else 'no' }} [{{ 'only' if false }}] {{ 'a' if false else 'b' if false else 'c' }}", "{}"},
      {"{{ 0 or 0.0 or '' or [] or {} or none or 'last' }} {{ (1 and 0) or 5 }}", "{}"},
  });
}

TEST(JinjaSyntax, SubscriptsAndSlices) {
  expect_same_as_jinja2({
      {"{{ xs[0] }} {{ xs[-1] }} {{ xs.1 }} {{ d['k'] }} {{ d.k }} {{ d['n']['m'] }} {{ d.n.m }} {{ s[0] }} {{ s[-2] }}",
       R"({"xs": [10, 20, 30], "d": {"k": "v", "n": {"m": 5}}, "s": "héllo"})"},
      {"{{ xs[1:] }} {{ xs[:2] }} {{ xs[::-1] }} {{ xs[::2] }} {{ xs[-2:] }} {{ xs[1:-1] }} {{ xs[5:] }} {{ xs[3:1] }} {{ xs[3:1:-1] }} {{ xs[-100:100] }}",
       R"({"xs": [1, 2, 3, 4, 5]})"},
      {"{{ s[::-1] }} {{ s[1:4] }} {{ s[-3:] }} {{ s[:-1] }} {{ s[::2] }} {{ 'abcdef'[1:5:2] }}", R"({"s": "é日本語x"})"},
      {"[{{ xs[10] }}][{{ d['missing'] }}][{{ d.missing }}][{{ none.x }}][{{ 'abc'.nothing }}][{{ 5.x }}][{{ {'a': 1}[1:2] }}]",
       R"({"xs": [1], "d": {}})"},
      // d.items is the method, d['items'] the key
      {"{{ d.items is callable }}|{{ d['items'] }}|{{ d.get('items') }}|{{ d.get is callable }}", R"({"d": {"items": "the key", "get": 1}})"},
      {"{{ xs[::0] }}", R"({"xs": [1]})", Outcome::Fails},
  });
}

TEST(JinjaSyntax, IfElifElse) {
  expect_same_as_jinja2({
      {"{% for n in [0, 1, 2, 3] %}{% if n == 0 %}zero{% elif n == 1 %}one{% elif n is even %}even{% else %}odd{% endif %};{% endfor %}", "{}"},
      {"{% if messages %}has{% endif %}{% if not messages[5] %} none at 5{% endif %}{% if missing %}x{% else %} missing is falsy{% endif %}", kMessages},
      {"{% if messages[0].role == 'system' and messages|length > 2 %}sys+{% endif %}", kMessages},
      {"{% if 1 %}a{% if 0 %}b{% else %}c{% endif %}d{% endif %}", "{}"},
  });
}

TEST(JinjaSyntax, ForLoops) {
  expect_same_as_jinja2({
      {"{% for m in messages %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 }}/{{ loop.first }}/{{ loop.last }}/{{ loop.length }} {% endfor %}", kMessages},
      {"{% for m in messages %}{{ loop.previtem.role if loop.previtem }}>{{ m.role }}>{{ loop.nextitem.role if loop.nextitem }};{% endfor %}", kMessages},
      {"{% for m in messages if m.role == 'user' %}{{ loop.index }}:{{ m.content }}{{ ',' if not loop.last }}{% endfor %}", kMessages},
      {"{% for x in [] %}never{% else %}empty{% endfor %}|{% for x in [1] if x > 5 %}no{% else %}filtered empty{% endfor %}", "{}"},
      {"{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for k in d %}{{ k }}{% endfor %}{% for (a, b) in [[1, 2], [3, 4]] %}{{ a + b }}{% endfor %}",
       R"({"d": {"z": 1, "a": 2, "m": 3}})"},
      {"{% for c in 'héllo' %}[{{ c }}]{% endfor %}{% for x in undefined_thing %}never{% endfor %}", "{}"},
      {"{% for i in range(6) %}{% if i == 1 %}{% continue %}{% endif %}{% if i == 4 %}{% break %}{% endif %}{{ i }}{% endfor %}", "{}"},
      {"{% for row in [[1, 2], [3, 4]] %}{% for x in row %}{{ loop.index }}{{ x }}{% endfor %}|{{ loop.index }};{% endfor %}", "{}"},
      {"{% for i in range(4) %}{{ loop.cycle('odd', 'even') }} {% endfor %}", "{}"},
      {"{% for i in range(3) %}{% for j in range(3) %}{% if j == 1 %}{% break %}{% endif %}{{ i }}{{ j }} {% endfor %}{% endfor %}", "{}"},
      {"{% for m in messages[::-1] %}{{ (messages|length - 1) - loop.index0 }}{{ m.role[0] }} {% endfor %}", kMessages},
      {"{% for a, b in [[1, 2, 3]] %}{% endfor %}", "{}", Outcome::Fails},
      {"{% for x in 5 %}{% endfor %}", "{}", Outcome::Fails},
      {"{% for x in none %}{% endfor %}", "{}", Outcome::Fails},
  });
}

TEST(JinjaSyntax, SetScopingAndNamespaces) {
  expect_same_as_jinja2({
      // a set inside a loop is local to that iteration; namespace attributes survive
      {"{% set x = 0 %}{% for i in [1, 2] %}{{ x }}{% set x = i %}{{ x }}{% endfor %}{{ x }}", "{}"},
      {"{% for i in [1, 2] %}{% if i == 2 %}[{{ y }}]{% endif %}{% set y = i %}{% endfor %}[{{ y }}]", "{}"},
      {"{% if true %}{% set z = 'if does not scope' %}{% endif %}{{ z }}", "{}"},
      {"{% set ns = namespace(found=false, count=0, items=[]) %}{% for m in messages %}{% if m.role == 'user' %}{% set ns.found = true %}{% set ns.count = ns.count + 1 %}{% endif %}{% endfor %}{{ ns.found }} {{ ns.count }} {{ ns.items }}", kMessages},
      {"{% set ns = namespace(a=1) %}{{ ns.a }}|{{ ns.b }}|{% set ns.b = 'new' %}{{ ns.b }}", "{}"},
      {"{% set ns = namespace({'k': 'from dict'}, j=2) %}{{ ns.k }}{{ ns.j }}", "{}"},
      {"{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set t = 3, 4 %}{{ t }}{% set (c, d) = ['x', 'y'] %}{{ c }}{{ d }}", "{}"},
      {"{% set s %}block {{ 1 + 1 }}{% endset %}[{{ s }}]{% set u | upper | replace('B', 'b') %}block body{% endset %}[{{ u }}]", "{}"},
      {"{% set d = {'a': 1} %}{% set ns2 = d %}{{ d }}", "{}"},
      {"{% set x = 1 %}{% set x.attr = 2 %}", "{}", Outcome::Fails},
      {"{% with a = 1, b = 2 %}{{ a + b }}{% set c = 3 %}{% endwith %}[{{ a }}{{ c }}]", "{}"},
      {"{% filter upper %}shout {{ 'this' }}{% endfilter %} {% filter replace('a', 'o') | title %}a cat{% endfilter %}", "{}"},
      {"{% generation %}{% set g = 1 %}generated {{ g }}{% endgeneration %}[{{ g }}]", "{}"},
  });
}

TEST(JinjaSyntax, MacrosAndCallBlocks) {
  expect_same_as_jinja2({
      {"{% macro greet(name, greeting='Hello') %}{{ greeting }}, {{ name }}!{% endmacro %}{{ greet('Ann') }} {{ greet('Bo', 'Hi') }} {{ greet(greeting='Yo', name='Cy') }}", "{}"},
      {"{% macro m(a, b=2) %}{{ a }}{{ b }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1) }}|{{ m(1, 3, 4, z=5) }}", "{}"},
      // a macro sees the variables around its definition as they are when it runs
      {"{% set g = 1 %}{% macro m() %}{{ g }}{{ h }}{% endmacro %}{% set h = 2 %}{{ m() }}{% set g = 3 %}{{ m() }}", "{}"},
      {"{% macro m() %}{% set g = 5 %}{{ g }}{% endmacro %}{% set g = 1 %}{{ m() }}{{ g }}", "{}"},
      {"{% set ns = namespace(n=0) %}{% macro bump() %}{% set ns.n = ns.n + 1 %}{% endmacro %}{{ bump() }}{{ bump() }}{{ ns.n }}", "{}"},
      {"{% macro render(msg) %}{% if msg.content is string %}{{ msg.content }}{% else %}{% for p in msg.content %}{{ p.text }}{% endfor %}{% endif %}{% endmacro %}"
       "{% for m in ms %}<{{ render(m) }}>{% endfor %}",
       R"({"ms": [{"content": "plain"}, {"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]})"},
      {"{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') %}bold {{ 1 }}{% endcall %}", "{}"},
      {"{% macro each(xs) %}{% for x in xs %}{{ caller(x, loop.index) }}{% endfor %}{% endmacro %}{% call(v, i) each(['a', 'b']) %}{{ i }}{{ v }} {% endcall %}", "{}"},
      {"{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1)|int }}{% endif %}{% endmacro %}{{ fact(5) }}", "{}"},
      {"{% macro m(x) %}{{ x }}{% endmacro %}{{ m() }}|{{ m(1) ~ m(2) }}|{{ m('a') + 'b' }}", "{}"},
      {"{%- macro item(x) -%}\n  [{{ x }}]\n{%- endmacro -%}\n{{ item(1) }}\n{{ item(2) }}\n", "{}"},
  });
}

TEST(JinjaSyntax, UndefinedBehavesLikeJinja) {
  expect_same_as_jinja2({
      {"[{{ nope }}][{{ nope is defined }}][{{ nope is undefined }}][{{ nope|default('d') }}][{{ nope|length }}][{{ nope|list }}][{{ nope|string }}][{{ nope ~ 'x' }}]", "{}"},
      {"{% if nope %}t{% else %}f{% endif %}{% if not nope %}!{% endif %}{{ nope == nope2 }}{{ nope != 1 }}{{ 'a' in nope }}{{ nope is none }}", "{}"},
      {"[{{ d.missing }}][{{ d.missing is defined }}][{{ d.missing|default('dflt') }}][{{ (d.missing or 'or') }}]", R"({"d": {}})"},
      {"[{{ nope|first }}][{{ nope|join(',') }}][{{ nope|upper }}][{{ nope|trim }}][{{ nope is iterable }}][{{ nope is string }}]", "{}"},
      {"{{ nope.attr }}", "{}", Outcome::Fails},
      {"{{ nope['k'] }}", "{}", Outcome::Fails},
      {"{{ d.missing.deeper }}", R"({"d": {}})", Outcome::Fails},
      {"{{ nope() }}", "{}", Outcome::Fails},
      {"{{ nope + 1 }}", "{}", Outcome::Fails},
      {"{{ nope < 1 }}", "{}", Outcome::Fails},
      {"{{ -nope }}", "{}", Outcome::Fails},
      {"{{ nope|tojson }}", "{}", Outcome::Fails},
      {"{{ m.content.startswith('x') }}", R"({"m": {}})", Outcome::Fails},
      {"{{ 'x' if m.content and m.content.startswith('x') else 'no content' }}", R"({"m": {}})"},
      {"{{ none|default('n') }} {{ ''|default('e') }} {{ ''|default('e', true) }} {{ 0|d(5, boolean=true) }}", "{}"},
  });
}

TEST(JinjaSyntax, TemplateErrorsAgreeWithJinja) {
  expect_same_as_jinja2({
      {"{% if true %}never closed", "{}", Outcome::Fails},
      {"{% for x in xs %}", "{}", Outcome::Fails},
      {"{{ 'unclosed }}", "{}", Outcome::Fails},
      {"{{ 1 + }}", "{}", Outcome::Fails},
      {"{{ x | nosuchfilter }}", "{}", Outcome::Fails},
      {"{% for x in [] %}{{ x | nosuchfilter }}{% endfor %}", "{}", Outcome::Fails},  // unknown filters fail even unused
      {"{% if false %}{{ x | nosuchfilter }}{% endif %}{{ 1 if true else x is nosuchtest }}", "{}"},  // ...but not in if blocks
      {"{% if true %}{{ x | nosuchfilter }}{% endif %}", "{}", Outcome::Fails},
      {"{% if false %}{% for x in [] %}{{ x | nosuchfilter }}{% endfor %}{% endif %}", "{}", Outcome::Fails},
      {"{{ x is nosuchtest }}", "{}", Outcome::Fails},
      {"{% endif %}", "{}", Outcome::Fails},
      {"{% nosuchtag %}", "{}", Outcome::Fails},
      {"{% break %}", "{}", Outcome::Fails},
      {"{{ (1, 2 }}", "{}", Outcome::Fails},
      {"{{ [1, 2) }}", "{}", Outcome::Fails},
      {"{# never closed", "{}", Outcome::Fails},
      {"{{ raise_exception('the template refuses') }}", "{}", Outcome::Fails},
      {"{% macro m(a=1, b) %}{% endmacro %}", "{}", Outcome::Fails},
  });
}

}  // namespace
