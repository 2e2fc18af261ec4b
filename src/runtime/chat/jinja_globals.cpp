// Functions every template can call: Jinja's range / namespace / dict, and transformers'
// raise_exception / strftime_now.

#include <ctime>

#include "runtime/chat/jinja_builtins.h"
#include "runtime/chat/jinja_error.h"

namespace linfer::jinja {

namespace {

Value range(CallArgs& a) {
  if (!a.keyword.empty() || a.positional.empty() || a.positional.size() > 3) {
    throw Failure("range() takes 1 to 3 integer arguments");
  }
  std::vector<int64_t> n;
  for (const Value& v : a.positional) {
    if (!v.is_int() && !v.is_bool()) throw Failure("range(): '" + type_name(v) + "' object cannot be interpreted as an integer");
    n.push_back(v.to_int());
  }
  const int64_t start = n.size() == 1 ? 0 : n[0];
  const int64_t stop = n.size() == 1 ? n[0] : n[1];
  const int64_t step = n.size() == 3 ? n[2] : 1;
  if (step == 0) throw Failure("range() arg 3 must not be zero");
  constexpr int64_t kMaxRange = 100000;  // Jinja's sandbox limit (MAX_RANGE)
  std::vector<Value> out;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
    if (out.size() >= size_t(kMaxRange)) throw Failure("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
    out.emplace_back(i);
  }
  return Value::list(std::move(out));
}

// namespace(k=v, ...) and dict(k=v, ...) both take an optional dict first
Value make_dict(CallArgs& a, const char* who) {
  Value d = Value::dict();
  if (a.positional.size() > 1) throw Failure(std::string(who) + "() takes at most one positional argument");
  if (!a.positional.empty()) {
    if (!a.positional[0].is_dict()) throw Failure(std::string(who) + "(): the positional argument must be a dict");
    d.dict_obj().items = a.positional[0].dict_obj().items;
  }
  for (auto& [k, v] : a.keyword) d.dict_obj().set(k, v);
  return d;
}

}  // namespace

void add_globals(DictObj& g) {
  g.set("range", Value::function("range", range));
  g.set("dict", Value::function("dict", [](CallArgs& a) { return make_dict(a, "dict"); }));
  g.set("namespace", Value::function("namespace", [](CallArgs& a) {
    Value ns = make_dict(a, "namespace");
    ns.dict_obj().is_namespace = true;
    return ns;
  }));
  g.set("raise_exception", Value::function("raise_exception", [](CallArgs& a) -> Value {
    Params p("raise_exception()", a, {"message"});
    throw RaisedFailure(to_str(p.get_or(0, Value(""))));
  }));
  g.set("strftime_now", Value::function("strftime_now", [](CallArgs& a) {
    Params p("strftime_now()", a, {"format"});
    const auto format = p.string_or_none(0);
    if (!format) throw Failure("strftime_now() needs a format string");
    const std::time_t now = std::time(nullptr);
    std::tm local{};
    localtime_r(&now, &local);
    char buf[512];
    const size_t n = std::strftime(buf, sizeof buf, format->c_str(), &local);
    if (n == 0 && !format->empty()) throw Failure("strftime_now(): the formatted date is empty or too long");
    return Value(std::string(buf, n));
  }));
}

}  // namespace linfer::jinja
