// Attribute, item and slice access, iteration, and argument binding for builtins.

#include <algorithm>

#include "runtime/chat/jinja_builtins.h"
#include "runtime/chat/jinja_error.h"
#include "runtime/chat/jinja_text.h"

namespace linfer::jinja {

Params::Params(std::string_view who, CallArgs& args, std::initializer_list<std::string_view> names)
    : who_(who), names_(names), slots_(names.size(), nullptr) {
  if (args.positional.size() > names_.size()) {
    throw Failure(fmt::format("{} takes at most {} argument(s) ({} given)", who_, names_.size(), args.positional.size()));
  }
  for (size_t i = 0; i < args.positional.size(); ++i) slots_[i] = &args.positional[i];
  for (const auto& [key, value] : args.keyword) {
    const auto it = std::find(names_.begin(), names_.end(), key);
    if (it == names_.end()) throw Failure(fmt::format("{} got an unexpected keyword argument '{}'", who_, key));
    const size_t i = size_t(it - names_.begin());
    if (slots_[i]) throw Failure(fmt::format("{} got multiple values for argument '{}'", who_, key));
    slots_[i] = &value;
  }
}

std::optional<std::string> Params::string_or_none(size_t i) const {
  if (!slots_[i] || slots_[i]->is_none()) return std::nullopt;
  if (!slots_[i]->is_string()) {
    throw Failure(fmt::format("{}: argument '{}' must be a string, not '{}'", who_, names_[i], type_name(*slots_[i])));
  }
  return slots_[i]->as_string();
}

int64_t Params::int_or(size_t i, int64_t fallback) const {
  if (!slots_[i] || slots_[i]->is_none()) return fallback;
  if (!slots_[i]->is_int() && !slots_[i]->is_bool()) {
    throw Failure(fmt::format("{}: argument '{}' must be an integer, not '{}'", who_, names_[i], type_name(*slots_[i])));
  }
  return slots_[i]->to_int();
}

namespace {

Value missing_attribute(const Value& obj, const std::string& name) {
  return Value::undefined(type_label(obj) + " has no attribute '" + name + "'");
}

}  // namespace

Value get_attribute(const Value& obj, const std::string& name) {
  if (name.size() > 1 && name[0] == '_' && name[1] == '_') {  // the sandbox refuses Python internals
    return Value::undefined("access to attribute '" + name + "' of '" + type_name(obj) + "' object is unsafe");
  }
  if (obj.is_dict() && obj.dict_obj().is_namespace) {
    const Value* v = obj.dict_obj().find(name);
    return v ? *v : missing_attribute(obj, name);
  }
  if (auto method = find_method(obj, name)) return *method;
  if (obj.is_dict()) {
    if (const Value* v = obj.dict_obj().find(name)) return *v;
  }
  return missing_attribute(obj, name);
}

Value get_item(const Value& obj, const Value& key) {
  if (obj.is_dict() && key.is_string()) {
    if (const Value* v = obj.dict_obj().find(key.as_string())) return *v;
  } else if ((obj.is_list() || obj.is_string()) && (key.is_int() || key.is_bool())) {
    int64_t i = key.to_int();
    if (obj.is_list()) {
      const auto& items = obj.list_obj().items;
      const int64_t n = int64_t(items.size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) return items[size_t(i)];
    } else {
      const std::u32string u = text::decode(obj.as_string());
      const int64_t n = int64_t(u.size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) return Value(text::encode(std::u32string_view(u).substr(size_t(i), 1)));
    }
    return Value::undefined(type_label(obj) + " has no element " + std::to_string(key.to_int()));
  }
  // obj[key] failed: Jinja falls back to the attribute of that name
  if (key.is_string()) return get_attribute(obj, key.as_string());
  return Value::undefined(type_label(obj) + " has no element " + repr(key));
}

Value get_slice(const Value& obj, const Value& start, const Value& stop, const Value& step) {
  for (const Value* v : {&start, &stop, &step}) {
    if (!v->is_none() && !v->is_int() && !v->is_bool()) return Value::undefined("slice indices must be integers or None");
  }
  if (!obj.is_list() && !obj.is_string()) return Value::undefined(type_label(obj) + " cannot be sliced");
  const int64_t st = step.is_none() ? 1 : step.to_int();
  if (st == 0) throw Failure("slice step cannot be zero");
  std::u32string u;
  if (obj.is_string()) u = text::decode(obj.as_string());
  const int64_t n = obj.is_string() ? int64_t(u.size()) : int64_t(obj.list_obj().items.size());
  // PySlice_AdjustIndices
  auto adjust = [&](const Value& v, int64_t dflt) {
    if (v.is_none()) return dflt;
    int64_t i = v.to_int();
    if (i < 0) {
      i += n;
      if (i < 0) i = st < 0 ? -1 : 0;
    } else if (i >= n) {
      i = st < 0 ? n - 1 : n;
    }
    return i;
  };
  const int64_t b = adjust(start, st < 0 ? n - 1 : 0);
  const int64_t e = adjust(stop, st < 0 ? -1 : n);
  std::vector<size_t> picked;
  for (int64_t i = b; st > 0 ? i < e : i > e; i += st) picked.push_back(size_t(i));
  if (obj.is_string()) {
    std::u32string out;
    for (size_t i : picked) out.push_back(u[i]);
    return Value(text::encode(out));
  }
  std::vector<Value> out;
  for (size_t i : picked) out.push_back(obj.list_obj().items[i]);
  return Value::list(std::move(out), obj.list_obj().tuple);
}

std::vector<Value> iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::Undefined: return {};
    case Value::Kind::List: return v.list_obj().items;
    case Value::Kind::Dict: {
      std::vector<Value> keys;
      for (const auto& kv : v.dict_obj().items) keys.emplace_back(kv.first);
      return keys;
    }
    case Value::Kind::String: {
      std::vector<Value> chars;
      for (char32_t c : text::decode(v.as_string())) chars.emplace_back(text::encode(std::u32string(1, c)));
      return chars;
    }
    default: throw Failure("'" + type_name(v) + "' object is not iterable");
  }
}

}  // namespace linfer::jinja
