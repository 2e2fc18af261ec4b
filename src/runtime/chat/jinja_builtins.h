#pragma once
// The builtins a template can reach: filters (`x | join(', ')`), tests (`x is string`), attributes
// and methods of values (`msg.content.strip()`, `d.get('k')`), subscripts and slices, global
// functions (range, namespace, dict, raise_exception, strftime_now). Each follows what Jinja2 3.1 /
// Python do; everything here throws Failure, which the evaluator positions.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/chat/jinja_value.h"

namespace linfer::jinja {

using FilterFn = Value (*)(const Value& input, CallArgs& args);
using TestFn = bool (*)(const Value& input, CallArgs& args);

FilterFn find_filter(std::string_view name);  // nullptr when unknown
TestFn find_test(std::string_view name);

// Jinja's getattr / getitem: `obj.name` prefers methods then dict keys, `obj[key]` prefers keys.
// Missing attributes and items give an Undefined that says what was missing. obj is not undefined.
Value get_attribute(const Value& obj, const std::string& name);
Value get_item(const Value& obj, const Value& key);
Value get_slice(const Value& obj, const Value& start, const Value& stop, const Value& step);

// A bound method of a str, list or dict (`s.split`), or nullopt when the type has no such method.
std::optional<Value> find_method(const Value& obj, const std::string& name);

// The functions every template sees (transformers adds raise_exception and strftime_now).
void add_globals(DictObj& globals);

// Python's `fmt % args` for str (used by the % operator and the `format` filter).
std::string printf_format(const std::string& fmt, const Value& args);
// Python's str.format(*positional, **keyword).
std::string str_format(const std::string& fmt, CallArgs& args);

// Python's `item in container` (str: substring, list: element, dict: key; undefined: false).
bool contains(const Value& container, const Value& item);

// Iterating a value as Python does: list items, dict keys, string characters; undefined is empty.
std::vector<Value> iterate(const Value& v);

// A builtin's arguments bound the way Python binds a signature: positional, then by keyword.
class Params {
 public:
  Params(std::string_view who, CallArgs& args, std::initializer_list<std::string_view> names);
  const Value* get(size_t i) const { return slots_[i]; }  // nullptr when not given
  Value get_or(size_t i, Value fallback) const { return slots_[i] ? *slots_[i] : std::move(fallback); }
  std::optional<std::string> string_or_none(size_t i) const;  // absent or None -> nullopt; else a str
  int64_t int_or(size_t i, int64_t fallback) const;

 private:
  std::string who_;
  std::vector<std::string_view> names_;
  std::vector<const Value*> slots_;
};

}  // namespace linfer::jinja
