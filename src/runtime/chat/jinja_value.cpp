#include "runtime/chat/jinja_value.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include <fmt/format.h>

#include "runtime/chat/jinja_error.h"
#include "runtime/chat/jinja_text.h"

namespace linfer::jinja {

// ---- DictObj ------------------------------------------------------------------------------------

const Value* DictObj::find(std::string_view key) const {
  for (const auto& [k, v] : items) if (k == key) return &v;
  return nullptr;
}

Value* DictObj::find(std::string_view key) {
  for (auto& [k, v] : items) if (k == key) return &v;
  return nullptr;
}

void DictObj::set(std::string key, Value value) {
  if (Value* v = find(key)) *v = std::move(value);
  else items.emplace_back(std::move(key), std::move(value));
}

bool DictObj::erase(std::string_view key) {
  for (auto it = items.begin(); it != items.end(); ++it) {
    if (it->first == key) { items.erase(it); return true; }
  }
  return false;
}

// ---- Value --------------------------------------------------------------------------------------

Value Value::list(std::vector<Value> items, bool tuple) {
  auto l = std::make_shared<ListObj>();
  l->items = std::move(items);
  l->tuple = tuple;
  return Value(Variant(std::move(l)));
}

Value Value::dict() { return Value(Variant(std::make_shared<DictObj>())); }

Value Value::function(std::string name, std::function<Value(CallArgs&)> call) {
  return Value(Variant(std::make_shared<Function>(Function{std::move(name), std::move(call)})));
}

int64_t Value::to_int() const { return is_bool() ? int64_t(as_bool()) : as_int(); }

double Value::to_double() const { return is_float() ? as_float() : double(to_int()); }

bool Value::same_object(const Value& o) const {
  if (kind() != o.kind()) return false;
  switch (kind()) {
    case Kind::Undefined: return false;  // each Undefined is its own object in Jinja
    case Kind::None: return true;
    case Kind::Bool: return as_bool() == o.as_bool();
    case Kind::Int: return as_int() == o.as_int();  // CPython caches small ints; close enough
    case Kind::Float: return false;
    case Kind::String: return as_string() == o.as_string();
    case Kind::List: return &list_obj() == &o.list_obj();
    case Kind::Dict: return &dict_obj() == &o.dict_obj();
    case Kind::Function: return &function_obj() == &o.function_obj();
  }
  return false;
}

// ---- Python semantics ---------------------------------------------------------------------------

bool truthy(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::Undefined: case Value::Kind::None: return false;
    case Value::Kind::Bool: return v.as_bool();
    case Value::Kind::Int: return v.as_int() != 0;
    case Value::Kind::Float: return v.as_float() != 0.0;
    case Value::Kind::String: return !v.as_string().empty();
    case Value::Kind::List: return !v.list_obj().items.empty();
    case Value::Kind::Dict: return !v.dict_obj().items.empty();
    case Value::Kind::Function: return true;
  }
  return false;
}

bool equals(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.to_double() == b.to_double();
    return a.to_int() == b.to_int();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::Undefined: case Value::Kind::None: return true;
    case Value::Kind::String: return a.as_string() == b.as_string();
    case Value::Kind::List: {
      const ListObj &x = a.list_obj(), &y = b.list_obj();
      if (x.tuple != y.tuple || x.items.size() != y.items.size()) return false;
      for (size_t i = 0; i < x.items.size(); ++i) if (!equals(x.items[i], y.items[i])) return false;
      return true;
    }
    case Value::Kind::Dict: {
      const DictObj &x = a.dict_obj(), &y = b.dict_obj();
      if (x.items.size() != y.items.size()) return false;
      for (const auto& [k, v] : x.items) {
        const Value* w = y.find(k);
        if (!w || !equals(v, *w)) return false;
      }
      return true;
    }
    case Value::Kind::Function: return &a.function_obj() == &b.function_obj();
    default: return false;
  }
}

bool less(const Value& a, const Value& b) {
  for (const Value* v : {&a, &b}) if (v->is_undefined()) throw Failure(v->undefined_hint());
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.to_double() < b.to_double();
    return a.to_int() < b.to_int();
  }
  if (a.is_string() && b.is_string()) return a.as_string() < b.as_string();
  if (a.is_list() && b.is_list() && a.list_obj().tuple == b.list_obj().tuple) {
    const auto &x = a.list_obj().items, &y = b.list_obj().items;
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (!equals(x[i], y[i])) return less(x[i], y[i]);
    }
    return x.size() < y.size();
  }
  throw Failure("'<' not supported between instances of '" + type_name(a) + "' and '" + type_name(b) + "'");
}

std::string float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  // Shortest round-trip digits, then laid out as Python's repr does: positional when the decimal
  // exponent is in [-4, 16), scientific with a two-digit exponent otherwise, and always a '.0' or 'e'.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  std::string sign;
  if (sci[0] == '-') { sign = "-"; sci.erase(0, 1); }
  const size_t e = sci.find('e');
  std::string digits = sci.substr(0, e);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  const int exp10 = std::stoi(sci.substr(e + 1));
  const int decpt = exp10 + 1;  // value = 0.digits * 10^decpt
  std::string out;
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) {
      out = "0." + std::string(size_t(-decpt), '0') + digits;
    } else if (size_t(decpt) >= digits.size()) {
      out = digits + std::string(size_t(decpt) - digits.size(), '0') + ".0";
    } else {
      out = digits.substr(0, size_t(decpt)) + "." + digits.substr(size_t(decpt));
    }
  } else {
    out = digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    const int x = decpt - 1;
    out += x < 0 ? "e-" : "e+";
    const std::string xs = std::to_string(std::abs(x));
    out += (xs.size() < 2 ? "0" : "") + xs;
  }
  return sign + out;
}

namespace {

std::string repr_string(const std::string& s) {
  const std::u32string u = text::decode(s);
  const bool has_single = u.find(U'\'') != std::u32string::npos;
  const bool has_double = u.find(U'"') != std::u32string::npos;
  const char32_t quote = has_single && !has_double ? U'"' : U'\'';
  std::string out(1, char(quote));
  for (char32_t c : u) {
    if (c == quote || c == U'\\') { out += '\\'; out += char(c); }
    else if (c == U'\n') out += "\\n";
    else if (c == U'\r') out += "\\r";
    else if (c == U'\t') out += "\\t";
    else if (c >= 0xDC80 && c <= 0xDCFF) out += fmt::format("\\udc{:02x}", unsigned(c - 0xDC00));
    else if (c < 0x20 || c == 0x7F || (c >= 0x80 && !text::is_printable(c))) {
      if (c <= 0xFF) out += fmt::format("\\x{:02x}", unsigned(c));
      else if (c <= 0xFFFF) out += fmt::format("\\u{:04x}", unsigned(c));
      else out += fmt::format("\\U{:08x}", unsigned(c));
    } else {
      text::append_utf8(out, c);
    }
  }
  out += char(quote);
  return out;
}

}  // namespace

std::string repr(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::String: return repr_string(v.as_string());
    case Value::Kind::List: {
      const ListObj& l = v.list_obj();
      std::string out = l.tuple ? "(" : "[";
      for (size_t i = 0; i < l.items.size(); ++i) {
        if (i) out += ", ";
        out += repr(l.items[i]);
      }
      if (l.tuple && l.items.size() == 1) out += ",";
      out += l.tuple ? ")" : "]";
      return out;
    }
    case Value::Kind::Dict: {
      const DictObj& d = v.dict_obj();
      if (d.is_namespace) {
        std::string out = "<Namespace {";
        for (size_t i = 0; i < d.items.size(); ++i) {
          out += (i ? ", " : "") + repr_string(d.items[i].first) + ": " + repr(d.items[i].second);
        }
        return out + "}>";
      }
      std::string out = "{";
      for (size_t i = 0; i < d.items.size(); ++i) {
        out += (i ? ", " : "") + repr_string(d.items[i].first) + ": " + repr(d.items[i].second);
      }
      return out + "}";
    }
    case Value::Kind::Undefined: return "Undefined";
    default: return to_str(v);
  }
}

std::string to_str(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::Undefined: return "";
    case Value::Kind::None: return "None";
    case Value::Kind::Bool: return v.as_bool() ? "True" : "False";
    case Value::Kind::Int: return std::to_string(v.as_int());
    case Value::Kind::Float: return float_repr(v.as_float());
    case Value::Kind::String: return v.as_string();
    case Value::Kind::List: case Value::Kind::Dict: return repr(v);
    case Value::Kind::Function: return "<function " + v.function_obj().name + ">";
  }
  return "";
}

std::string type_name(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::Undefined: return "Undefined";
    case Value::Kind::None: return "NoneType";
    case Value::Kind::Bool: return "bool";
    case Value::Kind::Int: return "int";
    case Value::Kind::Float: return "float";
    case Value::Kind::String: return "str";
    case Value::Kind::List: return v.list_obj().tuple ? "tuple" : "list";
    case Value::Kind::Dict: return v.dict_obj().is_namespace ? "Namespace" : "dict";
    case Value::Kind::Function: return "function";
  }
  return "";
}

std::string type_label(const Value& v) {
  if (v.is_none()) return "None";
  if (v.is_dict() && v.dict_obj().is_namespace) return "'jinja2.utils.Namespace object'";
  return "'" + type_name(v) + " object'";
}

Value from_json(const nlohmann::ordered_json& j) {
  using T = nlohmann::ordered_json::value_t;
  switch (j.type()) {
    case T::null: return Value::none();
    case T::boolean: return Value(j.get<bool>());
    case T::number_integer: return Value(j.get<int64_t>());
    case T::number_unsigned: {
      const uint64_t u = j.get<uint64_t>();
      return u <= uint64_t(INT64_MAX) ? Value(int64_t(u)) : Value(double(u));
    }
    case T::number_float: return Value(j.get<double>());
    case T::string: return Value(j.get_ref<const std::string&>());
    case T::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& e : j) items.push_back(from_json(e));
      return Value::list(std::move(items));
    }
    case T::object: {
      Value d = Value::dict();
      auto& items = d.dict_obj().items;
      items.reserve(j.size());
      for (const auto& [k, e] : j.items()) items.emplace_back(k, from_json(e));
      return d;
    }
    default: throw Failure("binary JSON values cannot be given to a template");
  }
}

}  // namespace linfer::jinja
