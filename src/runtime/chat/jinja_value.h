#pragma once
// The values a chat template computes with, modelled on the Python objects Jinja2 sees when
// transformers renders a template: None, bool, int, float, str, list (and tuple), dict, callables,
// and Jinja's Undefined. Lists and dicts are shared by reference, as in Python: `{% set x = msgs %}`
// aliases, and namespace attributes assigned in a loop are seen after it.
//
//   Value v = from_json(nlohmann::ordered_json::parse(R"({"role": "user"})"));
//   to_str(v)  -> "{'role': 'user'}"      (Python str())
//   truthy(v)  -> true
//
// Dicts keep insertion order (Python 3.7+), which is why JSON comes in as ordered_json: a tool
// schema rendered with tojson must list its keys in the order the client sent them.

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace linfer::jinja {

class Value;

struct ListObj {
  std::vector<Value> items;
  bool tuple = false;  // prints as (a, b): dict.items() pairs, `set t = 1, 2`
};

struct DictObj {
  std::vector<std::pair<std::string, Value>> items;  // insertion order; keys are strings
  bool is_namespace = false;  // made by namespace(): the only object `set ns.attr = v` may assign to

  const Value* find(std::string_view key) const;
  Value* find(std::string_view key);
  void set(std::string key, Value value);  // replaces in place or appends
  bool erase(std::string_view key);
};

struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

struct Function {
  std::string name;  // for messages: "filter 'join'", "macro 'render'", "str.split"
  std::function<Value(CallArgs&)> call;
};

class Value {
 public:
  enum class Kind : uint8_t { Undefined, None, Bool, Int, Float, String, List, Dict, Function };

  Value() : v_(UndefinedV{}) {}  // undefined without a hint
  Value(bool b) : v_(b) {}
  Value(int i) : v_(int64_t(i)) {}
  Value(int64_t i) : v_(i) {}
  Value(double d) : v_(d) {}
  Value(std::string s) : v_(std::move(s)) {}
  Value(std::string_view s) : v_(std::string(s)) {}
  Value(const char* s) : v_(std::string(s)) {}

  // `hint` is the message an error on this value reports: "'x' is undefined".
  static Value undefined(std::string hint) { return Value(UndefinedV{std::move(hint)}); }
  static Value none() { return Value(NoneV{}); }
  static Value list(std::vector<Value> items = {}, bool tuple = false);
  static Value dict();
  static Value function(std::string name, std::function<Value(CallArgs&)> call);

  Kind kind() const { return Kind(v_.index()); }
  bool is_undefined() const { return kind() == Kind::Undefined; }
  bool is_none() const { return kind() == Kind::None; }
  bool is_bool() const { return kind() == Kind::Bool; }
  bool is_int() const { return kind() == Kind::Int; }
  bool is_float() const { return kind() == Kind::Float; }
  bool is_number() const { return is_bool() || is_int() || is_float(); }  // Python's numbers.Number
  bool is_string() const { return kind() == Kind::String; }
  bool is_list() const { return kind() == Kind::List; }
  bool is_dict() const { return kind() == Kind::Dict; }
  bool is_function() const { return kind() == Kind::Function; }

  bool as_bool() const { return std::get<bool>(v_); }
  int64_t as_int() const { return std::get<int64_t>(v_); }  // exact Int only
  double as_float() const { return std::get<double>(v_); }
  const std::string& as_string() const { return std::get<std::string>(v_); }
  ListObj& list_obj() const { return *std::get<std::shared_ptr<ListObj>>(v_); }
  DictObj& dict_obj() const { return *std::get<std::shared_ptr<DictObj>>(v_); }
  const Function& function_obj() const { return *std::get<std::shared_ptr<Function>>(v_); }
  const std::string& undefined_hint() const { return std::get<UndefinedV>(v_).hint; }

  int64_t to_int() const;     // bool or int, as Python treats True as 1
  double to_double() const;   // any number
  bool same_object(const Value& o) const;  // Python `is`

 private:
  struct UndefinedV { std::string hint; };
  struct NoneV {};
  using Variant = std::variant<UndefinedV, NoneV, bool, int64_t, double, std::string, std::shared_ptr<ListObj>,
                               std::shared_ptr<DictObj>, std::shared_ptr<Function>>;
  explicit Value(Variant v) : v_(std::move(v)) {}
  Variant v_;
};

bool truthy(const Value& v);                      // Python bool(); undefined is false
bool equals(const Value& a, const Value& b);      // Python ==, deep
bool less(const Value& a, const Value& b);        // Python <; throws Failure for types Python refuses
std::string to_str(const Value& v);               // Python str(); undefined renders empty
std::string repr(const Value& v);                 // Python repr()
std::string type_label(const Value& v);           // as Jinja names types in errors: "'dict object'"
std::string type_name(const Value& v);            // Python's type name: "str", "NoneType", "dict"
std::string float_repr(double d);                 // Python repr(float): 1.0, 1e+16, 0.1

Value from_json(const nlohmann::ordered_json& j);

}  // namespace linfer::jinja
