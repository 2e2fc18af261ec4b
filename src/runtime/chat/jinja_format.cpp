// String formatting: Python's `'%s' % x` (also the `format` filter) and `'{}'.format(x)`.
// Format specs go through fmt, whose spec language is Python's.

#include <cmath>

#include "runtime/chat/jinja_builtins.h"
#include "runtime/chat/jinja_error.h"
#include "runtime/chat/jinja_text.h"

namespace linfer::jinja {

namespace {

std::string apply_spec(const Value& v, const std::string& spec) {
  if (spec.empty()) return to_str(v);
  try {
    const std::string pattern = "{:" + spec + "}";
    const auto f = fmt::runtime(pattern);
    if (v.is_int() || v.is_bool()) return fmt::format(f, v.to_int());
    if (v.is_float()) return fmt::format(f, v.as_float());
    return fmt::format(f, to_str(v));
  } catch (const fmt::format_error& e) {
    throw Failure("format spec '" + spec + "' cannot format a " + type_name(v) + ": " + e.what());
  }
}

int64_t as_integer(const Value& v, char conv) {
  if (v.is_int() || v.is_bool()) return v.to_int();
  if (v.is_float() && conv != 'x' && conv != 'X' && conv != 'o') return int64_t(std::trunc(v.as_float()));
  throw Failure(fmt::format("%{} format: a real number is required, not {}", conv, type_name(v)));
}

}  // namespace

std::string printf_format(const std::string& f, const Value& args) {
  const bool tuple = args.is_list() && args.list_obj().tuple;
  std::vector<Value> positional = tuple ? args.list_obj().items : std::vector<Value>{args};
  size_t next = 0;
  std::string out;
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i] != '%') { out += f[i]; continue; }
    if (++i >= f.size()) throw Failure("incomplete format");
    const Value* arg = nullptr;
    if (f[i] == '(') {  // %(name)s takes a key of a dict argument
      const size_t close = f.find(')', i);
      if (close == std::string::npos) throw Failure("incomplete format key");
      if (!args.is_dict()) throw Failure("format requires a mapping");
      arg = args.dict_obj().find(f.substr(i + 1, close - i - 1));
      if (!arg) throw Failure("format key '" + f.substr(i + 1, close - i - 1) + "' not found");
      i = close + 1;
    }
    std::string flags, width, precision;
    while (i < f.size() && std::string_view("-+ #0").find(f[i]) != std::string_view::npos) flags += f[i++];
    while (i < f.size() && std::isdigit(static_cast<unsigned char>(f[i]))) width += f[i++];
    if (i < f.size() && f[i] == '.') {
      ++i;
      while (i < f.size() && std::isdigit(static_cast<unsigned char>(f[i]))) precision += f[i++];
      if (precision.empty()) precision = "0";
    }
    if (i >= f.size()) throw Failure("incomplete format");
    const char conv = f[i];
    if (conv == '%') { out += '%'; continue; }
    if (!arg) {
      if (next >= positional.size()) throw Failure("not enough arguments for format string");
      arg = &positional[next++];
    }
    const bool left = flags.find('-') != std::string::npos;
    std::string spec = left ? "<" : ">";
    if (flags.find('+') != std::string::npos) spec += '+';
    else if (flags.find(' ') != std::string::npos) spec += ' ';
    if (flags.find('#') != std::string::npos) spec += '#';
    if (!left && flags.find('0') != std::string::npos && conv != 's' && conv != 'r') spec = spec.substr(1) + "0";
    spec += width;
    switch (conv) {
      case 's': case 'r': case 'a': {
        std::string s = conv == 's' ? to_str(*arg) : repr(*arg);
        if (!precision.empty()) s = text::encode(text::decode(s).substr(0, std::stoul(precision)));
        out += fmt::format(fmt::runtime("{:" + spec + "}"), s);
        break;
      }
      case 'd': case 'i': case 'u':
        out += fmt::format(fmt::runtime("{:" + spec + "d}"), as_integer(*arg, conv));
        break;
      case 'x': case 'X': case 'o':
        out += fmt::format(fmt::runtime("{:" + spec + conv + "}"), as_integer(*arg, conv));
        break;
      case 'f': case 'F': case 'e': case 'E': case 'g': case 'G': {
        if (!arg->is_number()) throw Failure(fmt::format("%{} format: a real number is required, not {}", conv, type_name(*arg)));
        out += fmt::format(fmt::runtime("{:" + spec + "." + (precision.empty() ? "6" : precision) + conv + "}"), arg->to_double());
        break;
      }
      case 'c':
        if (arg->is_string() && text::length(arg->as_string()) == 1) out += arg->as_string();
        else if (arg->is_int()) text::append_utf8(out, char32_t(arg->as_int()));
        else throw Failure("%c requires an int or a single character");
        break;
      default:
        throw Failure(fmt::format("unsupported format character '{}'", conv));
    }
  }
  if (next < positional.size() && tuple) throw Failure("not all arguments converted during string formatting");
  return out;
}

std::string str_format(const std::string& f, CallArgs& args) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < f.size(); ++i) {
    const char c = f[i];
    if (c == '}') {
      if (i + 1 < f.size() && f[i + 1] == '}') { out += '}'; ++i; continue; }
      throw Failure("Single '}' encountered in format string");
    }
    if (c != '{') { out += c; continue; }
    if (i + 1 < f.size() && f[i + 1] == '{') { out += '{'; ++i; continue; }
    const size_t close = f.find('}', i);
    if (close == std::string::npos) throw Failure("Single '{' encountered in format string");
    std::string field = f.substr(i + 1, close - i - 1);
    i = close;
    std::string spec;
    char conversion = 0;
    if (const size_t colon = field.find(':'); colon != std::string::npos) {
      spec = field.substr(colon + 1);
      field.resize(colon);
    }
    if (const size_t bang = field.find('!'); bang != std::string::npos) {
      if (bang + 2 != field.size()) throw Failure("invalid conversion in format string");
      conversion = field[bang + 1];
      field.resize(bang);
    }
    const Value* v = nullptr;
    if (field.empty() || std::isdigit(static_cast<unsigned char>(field[0]))) {
      const size_t index = field.empty() ? auto_index++ : std::stoul(field);
      if (index >= args.positional.size()) throw Failure("Replacement index " + std::to_string(index) + " out of range");
      v = &args.positional[index];
    } else {
      for (const auto& [k, kv] : args.keyword) if (k == field) v = &kv;
      if (!v) throw Failure("format: no argument named '" + field + "'");
    }
    Value shown = conversion == 'r' ? Value(repr(*v)) : conversion == 's' ? Value(to_str(*v)) : *v;
    out += apply_spec(shown, spec);
  }
  return out;
}

}  // namespace linfer::jinja
