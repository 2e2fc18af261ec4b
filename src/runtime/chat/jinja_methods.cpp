// Methods of str, list and dict that chat templates call (`content.split('</think>')[-1].strip()`,
// `message.get('tool_calls')`, `ns.ids.append(x)`), with Python's semantics. List and dict methods
// that modify their object are allowed: transformers' immutable sandbox refuses them, llama.cpp's
// and vLLM-served Kimi templates rely on them, so refusing would only break real templates.

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "runtime/chat/jinja_builtins.h"
#include "runtime/chat/jinja_error.h"
#include "runtime/chat/jinja_text.h"

namespace linfer::jinja {

namespace {

using Method = Value (*)(const Value& self, CallArgs& args);

const std::string& need_string(const Value& v, const char* who) {
  if (!v.is_string()) throw Failure(fmt::format("{}: expected a str argument, got '{}'", who, type_name(v)));
  return v.as_string();
}

// startswith / endswith accept a str or a tuple of str
bool affix_match(const Value& self, const Value& arg, bool prefix, const char* who) {
  const std::string& s = self.as_string();
  auto one = [&](const Value& a) {
    const std::string& x = need_string(a, who);
    if (x.size() > s.size()) return false;
    return prefix ? s.compare(0, x.size(), x) == 0 : s.compare(s.size() - x.size(), x.size(), x) == 0;
  };
  if (arg.is_list()) return std::any_of(arg.list_obj().items.begin(), arg.list_obj().items.end(), one);
  return one(arg);
}

Value list_of_strings(std::vector<std::string> parts) {
  std::vector<Value> out;
  out.reserve(parts.size());
  for (auto& p : parts) out.emplace_back(std::move(p));
  return Value::list(std::move(out));
}

template <bool (*Pred)(char32_t)>
Value str_is(const Value& self, CallArgs& args) {
  Params p("str.is...()", args, {});
  const std::u32string u = text::decode(self.as_string());
  return Value(!u.empty() && std::all_of(u.begin(), u.end(), Pred));
}

bool is_digit(char32_t c) { return c >= '0' && c <= '9'; }
bool is_alpha(char32_t c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }
bool is_alnum(char32_t c) { return is_digit(c) || is_alpha(c); }

Value cased_test(const Value& self, bool want_upper) {
  const std::string& s = self.as_string();
  const std::string other = want_upper ? text::lower(s) : text::upper(s);
  const std::string same = want_upper ? text::upper(s) : text::lower(s);
  return Value(s == same && s != other);  // has a cased character, and all cased ones are in this case
}

const std::unordered_map<std::string_view, Method>& str_methods() {
  static const std::unordered_map<std::string_view, Method> m = {
      {"startswith", [](const Value& s, CallArgs& a) { Params p("str.startswith()", a, {"prefix"});
         return Value(affix_match(s, p.get_or(0, Value()), true, "str.startswith()")); }},
      {"endswith", [](const Value& s, CallArgs& a) { Params p("str.endswith()", a, {"suffix"});
         return Value(affix_match(s, p.get_or(0, Value()), false, "str.endswith()")); }},
      {"strip", [](const Value& s, CallArgs& a) { Params p("str.strip()", a, {"chars"});
         return Value(text::strip(s.as_string(), p.string_or_none(0), true, true)); }},
      {"lstrip", [](const Value& s, CallArgs& a) { Params p("str.lstrip()", a, {"chars"});
         return Value(text::strip(s.as_string(), p.string_or_none(0), true, false)); }},
      {"rstrip", [](const Value& s, CallArgs& a) { Params p("str.rstrip()", a, {"chars"});
         return Value(text::strip(s.as_string(), p.string_or_none(0), false, true)); }},
      {"split", [](const Value& s, CallArgs& a) { Params p("str.split()", a, {"sep", "maxsplit"});
         return list_of_strings(text::split(s.as_string(), p.string_or_none(0), p.int_or(1, -1))); }},
      {"rsplit", [](const Value& s, CallArgs& a) { Params p("str.rsplit()", a, {"sep", "maxsplit"});
         return list_of_strings(text::rsplit(s.as_string(), p.string_or_none(0), p.int_or(1, -1))); }},
      {"splitlines", [](const Value& s, CallArgs& a) { Params p("str.splitlines()", a, {});
         return list_of_strings(text::splitlines(s.as_string())); }},
      {"replace", [](const Value& s, CallArgs& a) { Params p("str.replace()", a, {"old", "new", "count"});
         return Value(text::replace(s.as_string(), need_string(p.get_or(0, Value()), "str.replace()"),
                                    need_string(p.get_or(1, Value()), "str.replace()"), p.int_or(2, -1))); }},
      {"upper", [](const Value& s, CallArgs& a) { Params p("str.upper()", a, {}); return Value(text::upper(s.as_string())); }},
      {"lower", [](const Value& s, CallArgs& a) { Params p("str.lower()", a, {}); return Value(text::lower(s.as_string())); }},
      {"title", [](const Value& s, CallArgs& a) { Params p("str.title()", a, {}); return Value(text::title(s.as_string())); }},
      {"capitalize", [](const Value& s, CallArgs& a) { Params p("str.capitalize()", a, {});
         return Value(text::capitalize(s.as_string())); }},
      {"find", [](const Value& s, CallArgs& a) { Params p("str.find()", a, {"sub"});
         const size_t at = s.as_string().find(need_string(p.get_or(0, Value()), "str.find()"));
         return Value(at == std::string::npos ? int64_t(-1) : int64_t(text::length(s.as_string().substr(0, at)))); }},
      {"rfind", [](const Value& s, CallArgs& a) { Params p("str.rfind()", a, {"sub"});
         const size_t at = s.as_string().rfind(need_string(p.get_or(0, Value()), "str.rfind()"));
         return Value(at == std::string::npos ? int64_t(-1) : int64_t(text::length(s.as_string().substr(0, at)))); }},
      {"count", [](const Value& s, CallArgs& a) { Params p("str.count()", a, {"sub"});
         const std::string sub = need_string(p.get_or(0, Value()), "str.count()");
         if (sub.empty()) return Value(int64_t(text::length(s.as_string()) + 1));
         int64_t n = 0;
         for (size_t at = s.as_string().find(sub); at != std::string::npos; at = s.as_string().find(sub, at + sub.size())) ++n;
         return Value(n); }},
      {"join", [](const Value& s, CallArgs& a) { Params p("str.join()", a, {"iterable"});
         std::string out;
         bool first = true;
         for (const Value& v : iterate(p.get_or(0, Value::none()))) {
           if (!first) out += s.as_string();
           out += need_string(v, "str.join()");
           first = false;
         }
         return Value(std::move(out)); }},
      {"format", [](const Value& s, CallArgs& a) { return Value(str_format(s.as_string(), a)); }},
      {"removeprefix", [](const Value& s, CallArgs& a) { Params p("str.removeprefix()", a, {"prefix"});
         const std::string x = need_string(p.get_or(0, Value()), "str.removeprefix()");
         const std::string& str = s.as_string();
         return Value(str.compare(0, x.size(), x) == 0 && x.size() <= str.size() ? str.substr(x.size()) : str); }},
      {"removesuffix", [](const Value& s, CallArgs& a) { Params p("str.removesuffix()", a, {"suffix"});
         const std::string x = need_string(p.get_or(0, Value()), "str.removesuffix()");
         const std::string& str = s.as_string();
         const bool ends = !x.empty() && x.size() <= str.size() && str.compare(str.size() - x.size(), x.size(), x) == 0;
         return Value(ends ? str.substr(0, str.size() - x.size()) : str); }},
      {"isdigit", str_is<is_digit>},
      {"isalpha", str_is<is_alpha>},
      {"isalnum", str_is<is_alnum>},
      {"isspace", str_is<text::is_space>},
      {"isupper", [](const Value& s, CallArgs& a) { Params p("str.isupper()", a, {}); return cased_test(s, true); }},
      {"islower", [](const Value& s, CallArgs& a) { Params p("str.islower()", a, {}); return cased_test(s, false); }},
  };
  return m;
}

size_t list_index(const Value& self, const Value& x, const char* who) {
  const auto& items = self.list_obj().items;
  for (size_t i = 0; i < items.size(); ++i) if (equals(items[i], x)) return i;
  throw Failure(std::string(who) + ": " + repr(x) + " is not in list");
}

const std::unordered_map<std::string_view, Method>& list_methods() {
  static const std::unordered_map<std::string_view, Method> m = {
      {"append", [](const Value& s, CallArgs& a) { Params p("list.append()", a, {"object"});
         s.list_obj().items.push_back(p.get_or(0, Value::none())); return Value::none(); }},
      {"extend", [](const Value& s, CallArgs& a) { Params p("list.extend()", a, {"iterable"});
         for (Value& v : iterate(p.get_or(0, Value::none()))) s.list_obj().items.push_back(std::move(v));
         return Value::none(); }},
      {"insert", [](const Value& s, CallArgs& a) { Params p("list.insert()", a, {"index", "object"});
         auto& items = s.list_obj().items;
         int64_t i = p.int_or(0, 0);
         const int64_t n = int64_t(items.size());
         i = i < 0 ? std::max<int64_t>(0, i + n) : std::min(i, n);
         items.insert(items.begin() + i, p.get_or(1, Value::none()));
         return Value::none(); }},
      {"pop", [](const Value& s, CallArgs& a) { Params p("list.pop()", a, {"index"});
         auto& items = s.list_obj().items;
         int64_t i = p.int_or(0, -1);
         const int64_t n = int64_t(items.size());
         if (i < 0) i += n;
         if (i < 0 || i >= n) throw Failure(n == 0 ? "pop from empty list" : "pop index out of range");
         Value v = items[size_t(i)];
         items.erase(items.begin() + i);
         return v; }},
      {"remove", [](const Value& s, CallArgs& a) { Params p("list.remove()", a, {"value"});
         auto& items = s.list_obj().items;
         items.erase(items.begin() + int64_t(list_index(s, p.get_or(0, Value::none()), "list.remove()")));
         return Value::none(); }},
      {"index", [](const Value& s, CallArgs& a) { Params p("list.index()", a, {"value"});
         return Value(int64_t(list_index(s, p.get_or(0, Value::none()), "list.index()"))); }},
      {"count", [](const Value& s, CallArgs& a) { Params p("list.count()", a, {"value"});
         const Value x = p.get_or(0, Value::none());
         const auto& items = s.list_obj().items;
         return Value(int64_t(std::count_if(items.begin(), items.end(), [&](const Value& v) { return equals(v, x); }))); }},
      {"copy", [](const Value& s, CallArgs& a) { Params p("list.copy()", a, {});
         return Value::list(s.list_obj().items, s.list_obj().tuple); }},
      {"reverse", [](const Value& s, CallArgs& a) { Params p("list.reverse()", a, {});
         std::reverse(s.list_obj().items.begin(), s.list_obj().items.end()); return Value::none(); }},
      {"clear", [](const Value& s, CallArgs& a) { Params p("list.clear()", a, {});
         s.list_obj().items.clear(); return Value::none(); }},
  };
  return m;
}

const std::unordered_map<std::string_view, Method>& dict_methods() {
  static const std::unordered_map<std::string_view, Method> m = {
      {"get", [](const Value& s, CallArgs& a) { Params p("dict.get()", a, {"key", "default"});
         const Value key = p.get_or(0, Value::none());
         const Value* v = key.is_string() ? s.dict_obj().find(key.as_string()) : nullptr;
         return v ? *v : p.get_or(1, Value::none()); }},
      {"items", [](const Value& s, CallArgs& a) { Params p("dict.items()", a, {});
         std::vector<Value> out;
         for (const auto& [k, v] : s.dict_obj().items) out.push_back(Value::list({Value(k), v}, true));
         return Value::list(std::move(out)); }},
      {"keys", [](const Value& s, CallArgs& a) { Params p("dict.keys()", a, {}); return Value::list(iterate(s)); }},
      {"values", [](const Value& s, CallArgs& a) { Params p("dict.values()", a, {});
         std::vector<Value> out;
         for (const auto& kv : s.dict_obj().items) out.push_back(kv.second);
         return Value::list(std::move(out)); }},
      {"pop", [](const Value& s, CallArgs& a) { Params p("dict.pop()", a, {"key", "default"});
         const Value key = p.get_or(0, Value::none());
         const Value* v = key.is_string() ? s.dict_obj().find(key.as_string()) : nullptr;
         if (!v) {
           if (p.get(1)) return *p.get(1);
           throw Failure("dict.pop(): key " + repr(key) + " not found");
         }
         Value out = *v;
         s.dict_obj().erase(key.as_string());
         return out; }},
      {"setdefault", [](const Value& s, CallArgs& a) { Params p("dict.setdefault()", a, {"key", "default"});
         const std::string key = need_string(p.get_or(0, Value::none()), "dict.setdefault()");
         if (const Value* v = s.dict_obj().find(key)) return *v;
         s.dict_obj().set(key, p.get_or(1, Value::none()));
         return *s.dict_obj().find(key); }},
      {"update", [](const Value& s, CallArgs& a) {
         if (a.positional.size() > 1) throw Failure("dict.update() takes at most 1 positional argument");
         if (!a.positional.empty()) {
           const Value& other = a.positional[0];
           if (!other.is_dict()) throw Failure("dict.update(): the argument must be a dict");
           for (const auto& [k, v] : other.dict_obj().items) s.dict_obj().set(k, v);
         }
         for (auto& [k, v] : a.keyword) s.dict_obj().set(k, v);
         return Value::none(); }},
      {"copy", [](const Value& s, CallArgs& a) { Params p("dict.copy()", a, {});
         Value d = Value::dict();
         d.dict_obj().items = s.dict_obj().items;
         return d; }},
  };
  return m;
}

// Python names of the methods we do not provide: calling one says so instead of "undefined".
bool is_unsupported_method(const Value& obj, const std::string& name) {
  static const std::unordered_set<std::string_view> str_names = {
      "casefold", "center", "encode", "expandtabs", "format_map", "index", "isascii", "isdecimal",
      "isidentifier", "isnumeric", "isprintable", "istitle", "ljust", "maketrans", "partition", "rindex",
      "rjust", "rpartition", "swapcase", "translate", "zfill"};
  static const std::unordered_set<std::string_view> list_names = {"sort"};
  static const std::unordered_set<std::string_view> dict_names = {"clear", "popitem", "fromkeys"};
  if (obj.is_string()) return str_names.count(name) > 0;
  if (obj.is_list()) return list_names.count(name) > 0;
  if (obj.is_dict()) return dict_names.count(name) > 0;
  return false;
}

}  // namespace

std::optional<Value> find_method(const Value& obj, const std::string& name) {
  const std::unordered_map<std::string_view, Method>* table =
      obj.is_string() ? &str_methods() : obj.is_list() ? &list_methods() : obj.is_dict() ? &dict_methods() : nullptr;
  if (table) {
    const auto it = table->find(name);
    if (it != table->end()) {
      const Method m = it->second;
      return Value::function(type_name(obj) + "." + name + "()", [obj, m](CallArgs& args) { return m(obj, args); });
    }
  }
  if (is_unsupported_method(obj, name)) {
    const std::string qualified = type_name(obj) + "." + name;
    return Value::function(qualified + "()", [qualified](CallArgs&) -> Value {
      throw Failure(qualified + "() is not supported by linfer's template engine");
    });
  }
  return std::nullopt;
}

}  // namespace linfer::jinja
