// Filters, tests, methods of str / list / dict, and global functions, checked against Python
// Jinja2 with transformers' tojson / raise_exception / strftime_now.

#include "jinja_reference.h"

using linfer::jinja::testing::expect_same_as_jinja2;
using linfer::jinja::testing::Outcome;

namespace {

const char* kTools = R"({"tools": [
  {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city — °C",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "城市"},
                   "days": {"type": "integer", "minimum": 1, "default": 1.5}}, "required": ["city"]}}},
  {"type": "function", "function": {"name": "noop", "parameters": {}}}]})";

TEST(JinjaBuiltins, ToJsonAsTransformersDefinesIt) {
  expect_same_as_jinja2({
      {"{{ tools | tojson }}", kTools},
      {"{{ tools[0] | tojson(indent=4) }}", kTools},
      {"{{ tools | tojson(indent=2, sort_keys=true) }}", kTools},
      {"{{ tools | tojson(ensure_ascii=true) }}", kTools},
      {"{{ tools[0].function | tojson(separators=(',', ':')) }}|{{ [1, {}] | tojson(indent='\t') }}|{{ {'a': [1, 2]} | tojson(indent=0) }}", kTools},
      {R"j({{ 'quote " backslash \\ ctl \x01 \x7f nl
 tab	 é 😀' | tojson }}|{{ '😀\x7f' | tojson(ensure_ascii=true) }})j", "{}"},
      {"{{ [1, 1.0, 1.5, 1e16, 1e-7, -0.0, true, none, 'x'] | tojson }} {{ {} | tojson(indent=2) }} {{ [] | tojson(indent=2) }} {{ (1, 'a') | tojson }}", "{}"},
      {"{{ {'b': 1, 'a': {'d': 1, 'c': 2}} | tojson(sort_keys=true) }} {{ 3 | tojson }} {{ 'plain' | tojson }}", "{}"},
      {"{{ x | tojson }}", "{}", Outcome::Fails},
      {"{{ {'f': range} | tojson }}", "{}", Outcome::Fails},
  });
}

TEST(JinjaBuiltins, StringFilters) {
  expect_same_as_jinja2({
      {"[{{ '  padded \n' | trim }}][{{ 'xxaxx' | trim('x') }}][{{ 'MiXeD' | lower }}][{{ 'MiXeD' | upper }}][{{ 'hello wORLD' | capitalize }}]", "{}"},
      {"[{{ 'hello-world foo(bar) [x]' | title }}][{{ \"they're bill's\" | title }}][{{ 'straße ÉCOLE' | upper }}][{{ 'ÉCOLE' | lower }}]", "{}"},
      {"[{{ 'a-b-c' | replace('-', '+') }}][{{ 'aaa' | replace('a', 'b', 2) }}][{{ 'abc' | replace('', '.') }}][{{ 5 | string }}][{{ [1, 'a'] | string }}]", "{}"},
      {"[{{ 'a\nb\n\nc' | indent }}][{{ 'a\nb' | indent(2, true) }}][{{ 'a\n\nb' | indent(2, first=true, blank=true) }}][{{ 'a\nb' | indent('> ') }}]", "{}"},
      {"[{{ '<a href=\"x\">&\\'</a>' | e }}][{{ '<b>' | escape }}][{{ '<b>' | safe }}][{{ 'one two  three' | wordcount }}]", "{}"},
      {"[{{ '%s-%d' | format('a', 3) }}][{{ '%(x)s!' | format(x='named') }}][{{ 'abc' | reverse }}][{{ 'héllo' | length }}][{{ 'abc' | count }}]", "{}"},
      {"[{{ 'abc' | first }}][{{ 'abc' | last }}][{{ 'abc' | list }}][{{ '42' | int + 1 }}][{{ '4.5' | float }}][{{ 'x' | int }}][{{ 'x' | int(7) }}][{{ '0x1f' | int(base=16) }}][{{ '3.9' | int }}]", "{}"},
  });
}

TEST(JinjaBuiltins, SequenceFilters) {
  const char* people = R"({"people": [
    {"name": "bo", "age": 30, "role": "user"}, {"name": "Al", "age": 25, "role": "assistant"},
    {"name": "cy", "age": 35, "role": "user", "tool_calls": [{"id": 1}]}, {"name": "al", "age": 25}]})";
  expect_same_as_jinja2({
      {"{{ people | map(attribute='name') | join(', ') }}|{{ people | join(';', attribute='age') }}|{{ [1, 2] | join }}|{{ 'ab' | join('-') }}", people},
      {"{{ people | selectattr('role', 'equalto', 'user') | map(attribute='name') | list }}|{{ people | rejectattr('role', 'defined') | list }}", people},
      {"{{ people | selectattr('tool_calls') | map(attribute='name') | first }}|{{ people | selectattr('age', '>', 26) | list | length }}|{{ people | selectattr('role', 'in', ['assistant']) | list | count }}", people},
      {"{{ [1, 'a', none, 2.5, [1]] | select('string') | list }}|{{ [1, 2, 3, 4] | reject('odd') | list }}|{{ [0, 1, '', 'x'] | select | list }}|{{ [1, 2, 3] | reject('equalto', 2) | list }}", "{}"},
      {"{{ ['b', 'A', 'a', 'C'] | sort }}|{{ ['b', 'A', 'a'] | sort(case_sensitive=true) }}|{{ [3, 1, 2] | sort(reverse=true) }}|{{ people | sort(attribute='age') | map(attribute='name') | list }}", people},
      {"{{ people | map(attribute='role', default='none') | list }}|{{ ['a', 'b'] | map('upper') | list }}|{{ [' x ', 'y '] | map('trim') | join }}|{{ ['a'] | map('replace', 'a', 'b') | list }}", people},
      {"{{ [3, 1, 2] | first }}|{{ [3, 1, 2] | last }}|{{ [] | first }}|{{ [1, 2] | length }}|{{ {'a': 1} | length }}|{{ [1, 2, 3] | sum }}|{{ people | sum(attribute='age') }}|{{ [1.5, 2] | sum(start=1) }}", people},
      {"{{ [3, 1, 2] | max }}|{{ ['b', 'A'] | min }}|{{ people | max(attribute='age') }}|{{ [1, 2, 2, 3, 1] | unique | list }}|{{ ['a', 'A', 'b'] | unique | list }}|{{ people | unique(attribute='age') | map(attribute='name') | list }}", people},
      {"{{ [1, 2, 3] | reverse | list }}|{{ {'b': 1, 'A': 2, 'c': 0} | dictsort }}|{{ {'b': 1, 'a': 2} | dictsort(by='value', reverse=true) }}|{{ {'x': 1} | items | list }}|{{ {'k': 'v'} | list }}", "{}"},
      {"{{ [[1, 2], [3, 4]] | map(attribute='1') | list }}|{{ [{'a': {'b': 'deep'}}] | map(attribute='a.b') | first }}|{{ {'a': 1} | attr('a') }}|{{ -3 | abs }}|{{ -2.5 | abs }}", "{}"},
      {"{{ 2.5 | round }}|{{ 3.5 | round }}|{{ 2.567 | round(2) }}|{{ 0.125 | round(2) }}|{{ 2.1 | round(0, 'ceil') }}|{{ 2.9 | round(method='floor') }}|{{ 7 | round }}|{{ 1234.5 | round(-2) }}", "{}"},
      {"{{ [3, 'a'] | sort }}", "{}", Outcome::Fails},
      {"{{ 5 | length }}", "{}", Outcome::Fails},
      {"{{ [1] | map('nosuchfilter') | list }}", "{}", Outcome::Fails},
      {"{{ [1] | select('nosuchtest') | list }}", "{}", Outcome::Fails},
      {"{{ [{'a': {}}] | map(attribute='a.b.c') | list }}", "{}", Outcome::Fails},
  });
}

TEST(JinjaBuiltins, Tests) {
  expect_same_as_jinja2({
      {"{{ 1 is number }}{{ 1.5 is number }}{{ true is number }}{{ 'a' is number }}|{{ 1 is integer }}{{ true is integer }}{{ 1.0 is integer }}|{{ 1.0 is float }}{{ 1 is float }}", "{}"},
      {"{{ 'a' is string }}{{ 1 is string }}|{{ {} is mapping }}{{ [] is mapping }}{{ namespace() is mapping }}|{{ [] is iterable }}{{ 'a' is iterable }}{{ {} is iterable }}{{ 1 is iterable }}{{ none is iterable }}", "{}"},
      {"{{ [] is sequence }}{{ '' is sequence }}{{ {} is sequence }}{{ 1 is sequence }}|{{ none is none }}{{ 0 is none }}|{{ true is boolean }}{{ 1 is boolean }}|{{ true is true }}{{ 1 is true }}{{ false is false }}{{ 0 is false }}", "{}"},
      {"{{ x is defined }}{{ x is undefined }}{{ x is not defined }}|{{ range is callable }}{{ 'a'.upper is callable }}{{ 'a' is callable }}|{{ 3 is odd }}{{ 3 is even }}{{ 9 is divisibleby 3 }}{{ 9 is divisibleby(2) }}", "{}"},
      {"{{ 1 is eq 1 }}{{ 1 is equalto 2 }}{{ 1 is ne 2 }}{{ 1 is lt 2 }}{{ 2 is le 2 }}{{ 3 is gt 2 }}{{ 2 is ge 3 }}{{ 3 is greaterthan 2 }}{{ 1 is lessthan 0 }}", "{}"},
      {"{{ 'a' is in 'abc' }}{{ 2 is in [1, 2] }}{{ 'k' is in {'k': 1} }}|{{ 'abc' is lower }}{{ 'aBc' is lower }}{{ 'ABC' is upper }}{{ '1' is upper }}|{{ x is sameas x }}{{ none is sameas none }}{{ true is sameas true }}", "{}"},
      {"{% set l = [1] %}{{ l is sameas l }}{{ l is sameas [1] }}{{ 'x' is escaped }}", "{}"},
      {"{{ 'a' is odd }}", "{}", Outcome::Fails},
  });
}

TEST(JinjaBuiltins, StringMethods) {
  expect_same_as_jinja2({
      {"{{ 'abc'.startswith('ab') }}{{ 'abc'.startswith(('x', 'a')) }}{{ 'abc'.endswith('bc') }}{{ 'abc'.endswith('zz') }}{{ ''.startswith('') }}", "{}"},
      {"[{{ '  x y  '.strip() }}][{{ '  x  '.lstrip() }}][{{ '  x  '.rstrip() }}][{{ '<<x>>'.strip('<>') }}][{{ '\n\nx\n'.lstrip('\n') }}][{{ 'xyx'.rstrip('x') }}][{{ '\u3000wide\u00a0'.strip() }}]", "{}"},
      {"{{ ' a  b \t c\n'.split() }}{{ 'a,b,,c'.split(',') }}{{ 'a,b,c'.split(',', 1) }}{{ 'a b c'.split(none, 1) }}{{ ''.split(',') }}{{ ''.split() }}{{ 'a<sep>b'.split('<sep>') }}", "{}"},
      {"{{ 'a,b,c'.rsplit(',', 1) }}{{ ' a  b c '.rsplit(none, 1) }}{{ 'abc'.rsplit('b') }}{{ 'l1\nl2\r\nl3'.splitlines() }}", "{}"},
      {"{% set c = '<think>\nreason\n</think>\n\nanswer' %}[{{ c.split('</think>')[-1].lstrip('\n') }}][{{ c.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') }}]", "{}"},
      {"[{{ 'aaa'.replace('a', 'b') }}][{{ 'aaa'.replace('a', 'b', 1) }}][{{ 'hello world'.title() }}][{{ \"they're\".title() }}][{{ 'ab CD'.capitalize() }}][{{ 'MiX'.upper() }}{{ 'MiX'.lower() }}]", "{}"},
      {"[{{ 'hello'.find('l') }}][{{ 'hello'.rfind('l') }}][{{ 'hello'.find('z') }}][{{ 'héllo'.find('l') }}][{{ 'banana'.count('an') }}][{{ ', '.join(['a', 'b']) }}][{{ '-'.join('xyz') }}]", "{}"},
      {"[{{ '{} and {}'.format(1, 'two') }}][{{ '{1}{0}'.format('a', 'b') }}][{{ '{name}: {v!r}'.format(name='n', v='x') }}][{{ '{:>6}|{:<4}|{:^5}'.format('r', 'l', 'c') }}][{{ '{:.2f} {:03d}'.format(3.14159, 7) }}][{{ '{{literal}}'.format() }}]", "{}"},
      {"[{{ '123'.isdigit() }}{{ '12a'.isdigit() }}{{ 'abc'.isalpha() }}{{ 'ab1'.isalnum() }}{{ ' \t'.isspace() }}{{ ''.isspace() }}{{ 'ABC'.isupper() }}{{ 'abc'.islower() }}{{ 'a1'.islower() }}]", "{}"},
      {"[{{ 'prefix_x'.removeprefix('prefix_') }}][{{ 'x.txt'.removesuffix('.txt') }}][{{ 'x'.removesuffix('') }}]", "{}"},
      {"{{ 'abc'.nosuchmethod() }}", "{}", Outcome::Fails},
      {"{{ 'a'.split('') }}", "{}", Outcome::Fails},
      {"{{ 'a'.startswith(1) }}", "{}", Outcome::Fails},
  });
}

TEST(JinjaBuiltins, DictAndListMethods) {
  const char* msg = R"({"m": {"role": "assistant", "content": null, "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}]}})";
  expect_same_as_jinja2({
      {"{{ m.get('role') }}|{{ m.get('name') }}|{{ m.get('name', 'anon') }}|{{ m.get('content') is none }}|{{ m.keys() | list }}|{{ m.values() | list | length }}", msg},
      {"{% for k, v in m.items() %}{{ k }}:{{ v is string }};{% endfor %}{% for k, v in m.tool_calls[0].function.arguments.items() %}{{ k }}={{ v }}{% endfor %}", msg},
      {"{{ m.items() | list | length }}|{{ 'role' in m }}|{{ 'name' not in m }}|{{ [1, 2, 2].count(2) }}|{{ ['a', 'b'].index('b') }}", msg},
      {"{% set d = {'a': 1} %}{{ d.copy() }}{{ [1, 2].copy() }}", "{}"},
      // list / dict mutation: transformers' immutable sandbox refuses these, the mutable one (and linfer) allows them
      {"{% set ids = [] %}{% for i in range(3) %}{% set _ = ids.append('call_' ~ i) %}{% endfor %}{{ ids }}|{{ ids.pop(0) }}|{{ ids }}|{{ ids.pop() }}|{{ ids }}", "{}", Outcome::Renders, true},
      {"{% set ns = namespace(queue=[]) %}{% set _ = ns.queue.extend([1, 2]) %}{% set _ = ns.queue.insert(0, 0) %}{{ ns.queue }}{% set _ = ns.queue.remove(1) %}{{ ns.queue }}{% set _ = ns.queue.reverse() %}{{ ns.queue }}", "{}", Outcome::Renders, true},
      {"{% set d = {'a': 1} %}{% set _ = d.update({'b': 2}) %}{{ d }}{{ d.pop('a') }}{{ d }}{{ d.pop('zz', 'dflt') }}{{ d.setdefault('c', 3) }}{{ d }}", "{}", Outcome::Renders, true},
      {"{{ [].pop() }}", "{}", Outcome::Fails, true},
      {"{{ {}.pop('k') }}", "{}", Outcome::Fails, true},
  });
}

TEST(JinjaBuiltins, Globals) {
  expect_same_as_jinja2({
      {"{{ range(3) | list }} {{ range(1, 10, 3) | list }} {{ range(5, 0, -2) | list }} {{ range(0) | list }}", "{}"},
      {"{% for i in range(messages | length - 1, -1, -1) %}{{ i }}{% endfor %}", R"({"messages": [1, 2, 3]})"},
      {"{{ dict(a=1, b='x') }} {{ dict({'k': 1}, j=2) }} {{ namespace(a=1).a }}", "{}"},
      {"{{ strftime_now('%Y-%m-%d') }} {{ strftime_now('%d %b %Y') }}", "{}"},
      {"{{ raise_exception('bad input') }}", "{}", Outcome::Fails},
      {"{{ range(1, 2, 0) | list }}", "{}", Outcome::Fails},
      {"{{ range('a') }}", "{}", Outcome::Fails},
  });
}

}  // namespace
