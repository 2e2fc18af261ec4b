// Jinja2's built-in filters that chat templates use, plus transformers' tojson. Arguments bind as
// Jinja's Python signatures do (`indent(width=4, first=False, blank=False)`).

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "runtime/chat/jinja_builtins.h"
#include "runtime/chat/jinja_error.h"
#include "runtime/chat/jinja_json.h"
#include "runtime/chat/jinja_text.h"

namespace linfer::jinja {

namespace {

// Jinja's make_attrgetter: "a.b.0" walks keys / attributes / indices; a missing step on the way is
// an error, a missing last step gives `fallback` (or an undefined).
Value attribute_path(const Value& item, const std::string& path, const Value* fallback) {
  Value v = item;
  for (const std::string& part : text::split(path, std::string("."), -1)) {
    if (v.is_undefined()) throw Failure(v.undefined_hint());
    const bool index = !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit);
    v = get_item(v, index ? Value(int64_t(std::stoll(part))) : Value(part));
  }
  if (v.is_undefined() && fallback) return *fallback;
  return v;
}

Value lower_if_string(const Value& v, bool case_sensitive) {
  return v.is_string() && !case_sensitive ? Value(text::lower(v.as_string())) : v;
}

// A key function for sort / unique / min / max: optional attribute path, then optional case folding.
struct Key {
  std::optional<std::string> attribute;
  bool case_sensitive = false;
  Value operator()(const Value& v) const {
    return lower_if_string(attribute ? attribute_path(v, *attribute, nullptr) : v, case_sensitive);
  }
};

std::vector<Value> sorted(std::vector<Value> items, const Key& key, bool reverse) {
  std::vector<std::pair<Value, Value>> keyed;
  for (auto& v : items) keyed.emplace_back(key(v), std::move(v));
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& a, const auto& b) {
    return reverse ? less(b.first, a.first) : less(a.first, b.first);
  });
  std::vector<Value> out;
  for (auto& kv : keyed) out.push_back(std::move(kv.second));
  return out;
}

Value f_abs(const Value& v, CallArgs& a) {
  Params p("filter 'abs'", a, {});
  if (v.is_float()) return Value(std::fabs(v.as_float()));
  if (v.is_int() || v.is_bool()) return Value(v.to_int() < 0 ? -v.to_int() : v.to_int());
  throw Failure("bad operand type for abs(): '" + type_name(v) + "'");
}

Value f_attr(const Value& v, CallArgs& a) {
  Params p("filter 'attr'", a, {"name"});
  const auto name = p.string_or_none(0);
  if (!name) throw Failure("filter 'attr' needs an attribute name");
  // Python getattr only: methods, or a namespace's attributes; never dict keys
  if (v.is_dict() && v.dict_obj().is_namespace) {
    if (const Value* a = v.dict_obj().find(*name)) return *a;
  } else if (auto method = find_method(v, *name)) {
    return *method;
  }
  return Value::undefined(type_label(v) + " has no attribute '" + *name + "'");
}

Value f_capitalize(const Value& v, CallArgs& a) {
  Params p("filter 'capitalize'", a, {});
  return Value(text::capitalize(to_str(v)));
}

Value f_default(const Value& v, CallArgs& a) {
  Params p("filter 'default'", a, {"default_value", "boolean"});
  const bool boolean = truthy(p.get_or(1, Value(false)));
  if (v.is_undefined() || (boolean && !truthy(v))) return p.get_or(0, Value(""));
  return v;
}

Value f_dictsort(const Value& v, CallArgs& a) {
  Params p("filter 'dictsort'", a, {"case_sensitive", "by", "reverse"});
  if (!v.is_dict()) throw Failure("filter 'dictsort' needs a dict, got '" + type_name(v) + "'");
  const bool case_sensitive = truthy(p.get_or(0, Value(false)));
  const std::string by = p.string_or_none(1).value_or("key");
  if (by != "key" && by != "value") throw Failure("filter 'dictsort': 'by' must be 'key' or 'value'");
  std::vector<Value> pairs;
  for (const auto& [k, val] : v.dict_obj().items) pairs.push_back(Value::list({Value(k), val}, true));
  const size_t pos = by == "key" ? 0 : 1;
  std::stable_sort(pairs.begin(), pairs.end(), [&](const Value& x, const Value& y) {
    const Value kx = lower_if_string(x.list_obj().items[pos], case_sensitive);
    const Value ky = lower_if_string(y.list_obj().items[pos], case_sensitive);
    return truthy(p.get_or(2, Value(false))) ? less(ky, kx) : less(kx, ky);
  });
  return Value::list(std::move(pairs));
}

Value f_escape(const Value& v, CallArgs& a) {
  Params p("filter 'escape'", a, {});
  std::string out;
  for (char c : to_str(v)) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return Value(std::move(out));
}

Value f_first(const Value& v, CallArgs& a) {
  Params p("filter 'first'", a, {});
  const std::vector<Value> items = iterate(v);
  return items.empty() ? Value::undefined("No first item, sequence was empty.") : items.front();
}

Value f_last(const Value& v, CallArgs& a) {
  Params p("filter 'last'", a, {});
  const std::vector<Value> items = iterate(v);
  return items.empty() ? Value::undefined("No last item, sequence was empty.") : items.back();
}

std::optional<double> parse_float(const std::string& s) {
  const std::string t = text::strip(s, std::nullopt, true, true);
  if (t.empty()) return std::nullopt;
  std::string clean;
  for (char c : t) if (c != '_') clean += c;
  char* end = nullptr;
  const double d = std::strtod(clean.c_str(), &end);
  if (end != clean.c_str() + clean.size()) return std::nullopt;
  return d;
}

Value f_float(const Value& v, CallArgs& a) {
  Params p("filter 'float'", a, {"default"});
  if (v.is_number()) return Value(v.to_double());
  if (v.is_string()) {
    if (auto d = parse_float(v.as_string())) return Value(*d);
  }
  return p.get_or(0, Value(0.0));
}

Value f_int(const Value& v, CallArgs& a) {
  Params p("filter 'int'", a, {"default", "base"});
  const Value fallback = p.get_or(0, Value(int64_t(0)));
  if (v.is_int() || v.is_bool()) return Value(v.to_int());
  if (v.is_float()) return std::isfinite(v.as_float()) ? Value(int64_t(std::trunc(v.as_float()))) : fallback;
  if (v.is_string()) {
    std::string s = text::strip(v.as_string(), std::nullopt, true, true);
    s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
    const int base = int(p.int_or(1, 10));
    errno = 0;
    char* end = nullptr;
    const long long i = std::strtoll(s.c_str(), &end, base);
    if (!s.empty() && end == s.c_str() + s.size() && errno == 0) return Value(int64_t(i));
    if (auto d = parse_float(v.as_string()); d && std::isfinite(*d)) return Value(int64_t(std::trunc(*d)));
  }
  return fallback;
}

Value f_format(const Value& v, CallArgs& a) {
  if (!a.positional.empty() && !a.keyword.empty()) throw Failure("filter 'format' takes positional or keyword arguments, not both");
  if (!a.keyword.empty()) {
    Value d = Value::dict();
    for (auto& [k, x] : a.keyword) d.dict_obj().set(k, x);
    return Value(printf_format(to_str(v), d));
  }
  return Value(printf_format(to_str(v), Value::list(a.positional, true)));
}

Value f_indent(const Value& v, CallArgs& a) {
  Params p("filter 'indent'", a, {"width", "first", "blank"});
  const Value width = p.get_or(0, Value(int64_t(4)));
  const std::string indention = width.is_string() ? width.as_string() : std::string(size_t(std::max<int64_t>(0, width.to_int())), ' ');
  const std::string s = to_str(v) + "\n";  // Jinja's quirk: splitlines then drops the last empty line
  std::vector<std::string> lines = text::splitlines(s);
  std::string rv;
  if (truthy(p.get_or(2, Value(false)))) {
    for (size_t i = 0; i < lines.size(); ++i) rv += (i ? "\n" + indention : "") + lines[i];
  } else {
    rv = lines.empty() ? "" : lines[0];
    for (size_t i = 1; i < lines.size(); ++i) rv += "\n" + (lines[i].empty() ? "" : indention + lines[i]);
  }
  if (truthy(p.get_or(1, Value(false)))) rv = indention + rv;
  return Value(std::move(rv));
}

Value f_items(const Value& v, CallArgs& a) {
  Params p("filter 'items'", a, {});
  if (v.is_undefined()) return Value::list();
  if (!v.is_dict()) throw Failure("filter 'items' needs a mapping, got '" + type_name(v) + "'");
  std::vector<Value> out;
  for (const auto& [k, x] : v.dict_obj().items) out.push_back(Value::list({Value(k), x}, true));
  return Value::list(std::move(out));
}

Value f_join(const Value& v, CallArgs& a) {
  Params p("filter 'join'", a, {"d", "attribute"});
  const std::string sep = p.get(0) ? to_str(*p.get(0)) : "";
  const auto attribute = p.string_or_none(1);
  std::string out;
  bool first = true;
  for (const Value& item : iterate(v)) {
    if (!first) out += sep;
    out += to_str(attribute ? attribute_path(item, *attribute, nullptr) : item);
    first = false;
  }
  return Value(std::move(out));
}

Value f_length(const Value& v, CallArgs& a) {
  Params p("filter 'length'", a, {});
  switch (v.kind()) {
    case Value::Kind::Undefined: return Value(int64_t(0));
    case Value::Kind::String: return Value(int64_t(text::length(v.as_string())));
    case Value::Kind::List: return Value(int64_t(v.list_obj().items.size()));
    case Value::Kind::Dict: return Value(int64_t(v.dict_obj().items.size()));
    default: throw Failure("object of type '" + type_name(v) + "' has no len()");
  }
}

Value f_list(const Value& v, CallArgs& a) {
  Params p("filter 'list'", a, {});
  return Value::list(iterate(v));
}

Value f_lower(const Value& v, CallArgs& a) {
  Params p("filter 'lower'", a, {});
  return Value(text::lower(to_str(v)));
}

Value f_upper(const Value& v, CallArgs& a) {
  Params p("filter 'upper'", a, {});
  return Value(text::upper(to_str(v)));
}

Value f_map(const Value& v, CallArgs& a) {
  std::vector<Value> out;
  const auto attribute = std::find_if(a.keyword.begin(), a.keyword.end(), [](auto& kv) { return kv.first == "attribute"; });
  if (a.positional.empty() && attribute != a.keyword.end()) {
    const Value* fallback = nullptr;
    for (auto& [k, x] : a.keyword) {
      if (k == "default") fallback = &x;
      else if (k != "attribute") throw Failure("filter 'map' got an unexpected keyword argument '" + k + "'");
    }
    if (!attribute->second.is_string()) throw Failure("filter 'map': attribute must be a string");
    for (const Value& item : iterate(v)) out.push_back(attribute_path(item, attribute->second.as_string(), fallback));
    return Value::list(std::move(out));
  }
  if (a.positional.empty() || !a.positional[0].is_string()) throw Failure("filter 'map' needs a filter name or attribute=");
  const std::string name = a.positional[0].as_string();
  const FilterFn f = find_filter(name);
  if (!f) throw Failure("No filter named '" + name + "'.");
  for (const Value& item : iterate(v)) {
    CallArgs rest{std::vector<Value>(a.positional.begin() + 1, a.positional.end()), a.keyword};
    out.push_back(f(item, rest));
  }
  return Value::list(std::move(out));
}

Value min_max(const Value& v, CallArgs& a, bool want_max) {
  Params p(want_max ? "filter 'max'" : "filter 'min'", a, {"case_sensitive", "attribute"});
  const Key key{p.string_or_none(1), truthy(p.get_or(0, Value(false)))};
  const std::vector<Value> items = iterate(v);
  if (items.empty()) return Value::undefined(want_max ? "No largest item, sequence was empty." : "No smallest item, sequence was empty.");
  size_t best = 0;
  for (size_t i = 1; i < items.size(); ++i) {
    if (want_max ? less(key(items[best]), key(items[i])) : less(key(items[i]), key(items[best]))) best = i;
  }
  return items[best];
}

Value f_max(const Value& v, CallArgs& a) { return min_max(v, a, true); }
Value f_min(const Value& v, CallArgs& a) { return min_max(v, a, false); }

Value f_replace(const Value& v, CallArgs& a) {
  Params p("filter 'replace'", a, {"old", "new", "count"});
  if (!p.get(0) || !p.get(1)) throw Failure("filter 'replace' needs old and new strings");
  return Value(text::replace(to_str(v), to_str(*p.get(0)), to_str(*p.get(1)), p.int_or(2, -1)));
}

// select / reject / selectattr / rejectattr
Value filter_items(const Value& v, CallArgs& a, bool by_attribute, bool keep_when) {
  const char* who = by_attribute ? (keep_when ? "filter 'selectattr'" : "filter 'rejectattr'")
                                 : (keep_when ? "filter 'select'" : "filter 'reject'");
  size_t next = 0;
  std::optional<std::string> attribute;
  if (by_attribute) {
    if (a.positional.empty() || !a.positional[0].is_string()) throw Failure(std::string(who) + " needs an attribute name");
    attribute = a.positional[next++].as_string();
  }
  TestFn test = nullptr;
  if (next < a.positional.size()) {
    if (!a.positional[next].is_string()) throw Failure(std::string(who) + ": the test name must be a string");
    const std::string name = a.positional[next++].as_string();
    test = find_test(name);
    if (!test) throw Failure("No test named '" + name + "'.");
  }
  std::vector<Value> out;
  for (const Value& item : iterate(v)) {
    const Value subject = attribute ? attribute_path(item, *attribute, nullptr) : item;
    bool pass;
    if (test) {
      CallArgs rest{std::vector<Value>(a.positional.begin() + int64_t(next), a.positional.end()), a.keyword};
      pass = test(subject, rest);
    } else {
      pass = truthy(subject);
    }
    if (pass == keep_when) out.push_back(item);
  }
  return Value::list(std::move(out));
}

Value f_select(const Value& v, CallArgs& a) { return filter_items(v, a, false, true); }
Value f_reject(const Value& v, CallArgs& a) { return filter_items(v, a, false, false); }
Value f_selectattr(const Value& v, CallArgs& a) { return filter_items(v, a, true, true); }
Value f_rejectattr(const Value& v, CallArgs& a) { return filter_items(v, a, true, false); }

Value f_reverse(const Value& v, CallArgs& a) {
  Params p("filter 'reverse'", a, {});
  if (v.is_string()) {
    std::u32string u = text::decode(v.as_string());
    std::reverse(u.begin(), u.end());
    return Value(text::encode(u));
  }
  std::vector<Value> items = iterate(v);
  std::reverse(items.begin(), items.end());
  return Value::list(std::move(items));
}

Value f_round(const Value& v, CallArgs& a) {
  Params p("filter 'round'", a, {"precision", "method"});
  const int64_t precision = p.int_or(0, 0);
  const std::string method = p.string_or_none(1).value_or("common");
  if (!v.is_number()) throw Failure("filter 'round' needs a number, got '" + type_name(v) + "'");
  const double x = v.to_double();
  const double scale = std::pow(10.0, double(precision));
  if (method == "ceil") return Value(std::ceil(x * scale) / scale);
  if (method == "floor") return Value(std::floor(x * scale) / scale);
  if (method != "common") throw Failure("filter 'round': method must be 'common', 'ceil' or 'floor'");
  if (!v.is_float() && precision >= 0) return Value(v.to_int());  // Python's round(int, n) stays an int
  if (precision > 0) return Value(std::stod(fmt::format("{:.{}f}", x, precision)));  // exact decimal, ties to even
  return Value(std::nearbyint(x * scale) / scale);  // default rounding mode: ties to even
}

Value f_safe(const Value& v, CallArgs& a) {
  Params p("filter 'safe'", a, {});
  return Value(to_str(v));
}

Value f_sort(const Value& v, CallArgs& a) {
  Params p("filter 'sort'", a, {"reverse", "case_sensitive", "attribute"});
  const Key key{p.string_or_none(2), truthy(p.get_or(1, Value(false)))};
  return Value::list(sorted(iterate(v), key, truthy(p.get_or(0, Value(false)))));
}

Value f_string(const Value& v, CallArgs& a) {
  Params p("filter 'string'", a, {});
  return Value(to_str(v));
}

Value f_sum(const Value& v, CallArgs& a) {
  Params p("filter 'sum'", a, {"attribute", "start"});
  const auto attribute = p.string_or_none(0);
  Value total = p.get_or(1, Value(int64_t(0)));
  for (const Value& item : iterate(v)) {
    const Value x = attribute ? attribute_path(item, *attribute, nullptr) : item;
    if (!x.is_number() || !total.is_number()) throw Failure("filter 'sum' can only add numbers");
    total = total.is_float() || x.is_float() ? Value(total.to_double() + x.to_double()) : Value(total.to_int() + x.to_int());
  }
  return total;
}

// Jinja's title filter: words begin after '-', whitespace, or an opening bracket (unlike str.title)
Value f_title(const Value& v, CallArgs& a) {
  Params p("filter 'title'", a, {});
  const std::u32string u = text::decode(to_str(v));
  std::string out;
  bool word_start = true;
  for (size_t i = 0; i < u.size(); ++i) {
    const char32_t c = u[i];
    const bool sep = text::is_space(c) || c == U'-' || c == U'(' || c == U'{' || c == U'[' || c == U'<';
    if (sep) { text::append_utf8(out, c); word_start = true; continue; }
    const std::string one = text::encode(std::u32string(1, c));
    out += word_start ? text::upper(one) : text::lower(one);
    word_start = false;
  }
  return Value(std::move(out));
}

// transformers' tojson: json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)
Value f_tojson(const Value& v, CallArgs& a) {
  Params p("filter 'tojson'", a, {"ensure_ascii", "indent", "separators", "sort_keys"});
  DumpOptions o;
  o.ensure_ascii = truthy(p.get_or(0, Value(false)));
  if (const Value* indent = p.get(1); indent && !indent->is_none()) {
    o.indent = indent->is_string() ? indent->as_string() : std::string(size_t(std::max<int64_t>(0, indent->to_int())), ' ');
  }
  if (const Value* sep = p.get(2); sep && !sep->is_none()) {
    if (!sep->is_list() || sep->list_obj().items.size() != 2) throw Failure("filter 'tojson': separators must be a pair of strings");
    o.item_separator = to_str(sep->list_obj().items[0]);
    o.key_separator = to_str(sep->list_obj().items[1]);
  }
  o.sort_keys = truthy(p.get_or(3, Value(false)));
  return Value(dumps(v, o));
}

Value f_trim(const Value& v, CallArgs& a) {
  Params p("filter 'trim'", a, {"chars"});
  return Value(text::strip(to_str(v), p.string_or_none(0), true, true));
}

Value f_unique(const Value& v, CallArgs& a) {
  Params p("filter 'unique'", a, {"case_sensitive", "attribute"});
  const Key key{p.string_or_none(1), truthy(p.get_or(0, Value(false)))};
  std::vector<Value> out, seen;
  for (const Value& item : iterate(v)) {
    const Value k = key(item);
    if (std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return equals(s, k); })) continue;
    seen.push_back(k);
    out.push_back(item);
  }
  return Value::list(std::move(out));
}

Value f_wordcount(const Value& v, CallArgs& a) {
  Params p("filter 'wordcount'", a, {});
  return Value(int64_t(text::split(to_str(v), std::nullopt, -1).size()));
}

const std::unordered_map<std::string_view, FilterFn>& filters() {
  static const std::unordered_map<std::string_view, FilterFn> m = {
      {"abs", f_abs}, {"attr", f_attr}, {"capitalize", f_capitalize}, {"count", f_length},
      {"d", f_default}, {"default", f_default}, {"dictsort", f_dictsort}, {"e", f_escape},
      {"escape", f_escape}, {"first", f_first}, {"float", f_float}, {"format", f_format},
      {"indent", f_indent}, {"int", f_int}, {"items", f_items}, {"join", f_join}, {"last", f_last},
      {"length", f_length}, {"list", f_list}, {"lower", f_lower}, {"map", f_map}, {"max", f_max},
      {"min", f_min}, {"reject", f_reject}, {"rejectattr", f_rejectattr}, {"replace", f_replace},
      {"reverse", f_reverse}, {"round", f_round}, {"safe", f_safe}, {"select", f_select},
      {"selectattr", f_selectattr}, {"sort", f_sort}, {"string", f_string}, {"sum", f_sum},
      {"title", f_title}, {"tojson", f_tojson}, {"trim", f_trim}, {"unique", f_unique},
      {"upper", f_upper}, {"wordcount", f_wordcount},
  };
  return m;
}

}  // namespace

FilterFn find_filter(std::string_view name) {
  const auto it = filters().find(name);
  return it == filters().end() ? nullptr : it->second;
}

}  // namespace linfer::jinja
