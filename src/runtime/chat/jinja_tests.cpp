// Jinja2's built-in tests (`x is defined`, `x is not none`, `n is divisibleby 3`, `x is in list`).

#include <unordered_map>

#include "runtime/chat/jinja_builtins.h"
#include "runtime/chat/jinja_error.h"
#include "runtime/chat/jinja_text.h"

namespace linfer::jinja {

bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::Undefined: return false;  // iterating an Undefined yields nothing
    case Value::Kind::String:
      if (!item.is_string()) throw Failure("'in <string>' requires string as left operand, not " + type_name(item));
      return container.as_string().find(item.as_string()) != std::string::npos;
    case Value::Kind::List:
      for (const Value& v : container.list_obj().items) if (equals(v, item)) return true;
      return false;
    case Value::Kind::Dict:
      if (container.dict_obj().is_namespace) break;
      return item.is_string() && container.dict_obj().find(item.as_string()) != nullptr;
    default: break;
  }
  throw Failure("argument of type '" + type_name(container) + "' is not iterable");
}

namespace {

// Tests without arguments: `x is defined`
#define LINFER_UNARY_TEST(fn, expr)                   \
  bool fn(const Value& v, CallArgs& a) {              \
    Params p("test", a, {});                          \
    return expr;                                      \
  }
LINFER_UNARY_TEST(t_defined, !v.is_undefined())
LINFER_UNARY_TEST(t_undefined, v.is_undefined())
LINFER_UNARY_TEST(t_none, v.is_none())
LINFER_UNARY_TEST(t_boolean, v.is_bool())
LINFER_UNARY_TEST(t_true, v.is_bool() && v.as_bool())
LINFER_UNARY_TEST(t_false, v.is_bool() && !v.as_bool())
LINFER_UNARY_TEST(t_integer, v.is_int())
LINFER_UNARY_TEST(t_float, v.is_float())
LINFER_UNARY_TEST(t_number, v.is_number())
LINFER_UNARY_TEST(t_string, v.is_string())
LINFER_UNARY_TEST(t_mapping, v.is_dict() && !v.dict_obj().is_namespace)
// Jinja's Undefined is iterable, has a length and is callable (calling it fails)
LINFER_UNARY_TEST(t_iterable, v.is_string() || v.is_list() || v.is_dict() || v.is_undefined())
LINFER_UNARY_TEST(t_callable, v.is_function() || v.is_undefined())
LINFER_UNARY_TEST(t_escaped, false)
#undef LINFER_UNARY_TEST

const Value& other(CallArgs& a, const char* who) {
  if (a.positional.size() != 1 || !a.keyword.empty()) throw Failure(std::string("test '") + who + "' takes one argument");
  return a.positional[0];
}

bool t_eq(const Value& v, CallArgs& a) { return equals(v, other(a, "eq")); }
bool t_ne(const Value& v, CallArgs& a) { return !equals(v, other(a, "ne")); }
bool t_lt(const Value& v, CallArgs& a) { return less(v, other(a, "lt")); }
bool t_le(const Value& v, CallArgs& a) { const Value& o = other(a, "le"); return less(v, o) || equals(v, o); }
bool t_gt(const Value& v, CallArgs& a) { return less(other(a, "gt"), v); }
bool t_ge(const Value& v, CallArgs& a) { const Value& o = other(a, "ge"); return less(o, v) || equals(v, o); }
bool t_in(const Value& v, CallArgs& a) { return contains(other(a, "in"), v); }
bool t_sameas(const Value& v, CallArgs& a) { return v.same_object(other(a, "sameas")); }

int64_t integer(const Value& v, const char* who) {
  if (!v.is_int() && !v.is_bool()) throw Failure(std::string("test '") + who + "' needs an integer, got '" + type_name(v) + "'");
  return v.to_int();
}

bool t_odd(const Value& v, CallArgs& a) { Params p("test 'odd'", a, {}); return integer(v, "odd") % 2 != 0; }
bool t_even(const Value& v, CallArgs& a) { Params p("test 'even'", a, {}); return integer(v, "even") % 2 == 0; }
bool t_divisibleby(const Value& v, CallArgs& a) {
  const int64_t d = integer(other(a, "divisibleby"), "divisibleby");
  if (d == 0) throw Failure("integer division or modulo by zero");
  return integer(v, "divisibleby") % d == 0;
}

bool cased(const Value& v, bool want_upper) {
  const std::string s = to_str(v);
  const std::string same = want_upper ? text::upper(s) : text::lower(s);
  const std::string other_case = want_upper ? text::lower(s) : text::upper(s);
  return s == same && s != other_case;
}

bool t_lower(const Value& v, CallArgs& a) { Params p("test 'lower'", a, {}); return cased(v, false); }
bool t_upper(const Value& v, CallArgs& a) { Params p("test 'upper'", a, {}); return cased(v, true); }

const std::unordered_map<std::string_view, TestFn>& tests() {
  static const std::unordered_map<std::string_view, TestFn> m = {
      {"defined", t_defined}, {"undefined", t_undefined}, {"none", t_none}, {"boolean", t_boolean},
      {"true", t_true}, {"false", t_false}, {"integer", t_integer}, {"float", t_float}, {"number", t_number},
      {"string", t_string}, {"mapping", t_mapping}, {"iterable", t_iterable}, {"sequence", t_iterable},
      {"callable", t_callable}, {"lower", t_lower}, {"upper", t_upper}, {"escaped", t_escaped},
      {"odd", t_odd}, {"even", t_even}, {"divisibleby", t_divisibleby},
      {"eq", t_eq}, {"equalto", t_eq}, {"==", t_eq}, {"ne", t_ne}, {"!=", t_ne},
      {"lt", t_lt}, {"lessthan", t_lt}, {"<", t_lt}, {"le", t_le}, {"<=", t_le},
      {"gt", t_gt}, {"greaterthan", t_gt}, {">", t_gt}, {"ge", t_ge}, {">=", t_ge},
      {"in", t_in}, {"sameas", t_sameas},
  };
  return m;
}

}  // namespace

TestFn find_test(std::string_view name) {
  const auto it = tests().find(name);
  return it == tests().end() ? nullptr : it->second;
}

}  // namespace linfer::jinja
