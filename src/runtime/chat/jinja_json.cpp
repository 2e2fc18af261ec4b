#include "runtime/chat/jinja_json.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "runtime/chat/jinja_error.h"
#include "runtime/chat/jinja_text.h"

namespace linfer::jinja {

namespace {

struct Writer {
  const DumpOptions& o;
  std::string item_sep, key_sep;
  std::string out;

  void string(const std::string& s) {
    out += '"';
    for (char32_t c : text::decode(s)) {
      switch (c) {
        case U'"': out += "\\\""; break;
        case U'\\': out += "\\\\"; break;
        case U'\n': out += "\\n"; break;
        case U'\r': out += "\\r"; break;
        case U'\t': out += "\\t"; break;
        case U'\b': out += "\\b"; break;
        case U'\f': out += "\\f"; break;
        default:
          if (c < 0x20 || (o.ensure_ascii && c >= 0x7F)) {
            if (c >= 0x10000) {  // a surrogate pair, as Python writes it
              const char32_t v = c - 0x10000;
              out += fmt::format("\\u{:04x}\\u{:04x}", unsigned(0xD800 + (v >> 10)), unsigned(0xDC00 + (v & 0x3FF)));
            } else {
              out += fmt::format("\\u{:04x}", unsigned(c));
            }
          } else {
            text::append_utf8(out, c);
          }
      }
    }
    out += '"';
  }

  void newline(int level) {
    if (!o.indent) return;
    out += '\n';
    for (int i = 0; i < level; ++i) out += *o.indent;
  }

  void value(const Value& v, int level) {
    switch (v.kind()) {
      case Value::Kind::None: out += "null"; return;
      case Value::Kind::Bool: out += v.as_bool() ? "true" : "false"; return;
      case Value::Kind::Int: out += std::to_string(v.as_int()); return;
      case Value::Kind::Float: {
        const double d = v.as_float();
        out += std::isnan(d) ? "NaN" : std::isinf(d) ? (d < 0 ? "-Infinity" : "Infinity") : float_repr(d);
        return;
      }
      case Value::Kind::String: string(v.as_string()); return;
      case Value::Kind::List: {
        const auto& items = v.list_obj().items;
        if (items.empty()) { out += "[]"; return; }
        out += '[';
        for (size_t i = 0; i < items.size(); ++i) {
          if (i) out += item_sep;
          newline(level + 1);
          value(items[i], level + 1);
        }
        newline(level);
        out += ']';
        return;
      }
      case Value::Kind::Dict: {
        const DictObj& d = v.dict_obj();
        if (d.is_namespace) break;
        if (d.items.empty()) { out += "{}"; return; }
        std::vector<const std::pair<std::string, Value>*> entries;
        for (const auto& kv : d.items) entries.push_back(&kv);
        if (o.sort_keys) {
          std::stable_sort(entries.begin(), entries.end(), [](auto* a, auto* b) { return a->first < b->first; });
        }
        out += '{';
        for (size_t i = 0; i < entries.size(); ++i) {
          if (i) out += item_sep;
          newline(level + 1);
          string(entries[i]->first);
          out += key_sep;
          value(entries[i]->second, level + 1);
        }
        newline(level);
        out += '}';
        return;
      }
      default: break;
    }
    throw Failure("Object of type " + type_name(v) + " is not JSON serializable");
  }
};

}  // namespace

std::string dumps(const Value& v, const DumpOptions& options) {
  Writer w{options, options.item_separator.value_or(options.indent ? "," : ", "),
           options.key_separator.value_or(": "), {}};
  w.value(v, 0);
  return std::move(w.out);
}

}  // namespace linfer::jinja
