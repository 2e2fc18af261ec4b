#pragma once
// json.dumps as transformers' `tojson` filter calls it (not Jinja's built-in tojson, which escapes
// HTML): ensure_ascii=False, indent=None, separators=None, sort_keys=False by default.
//
//   dumps(v, {})                         -> {"a": [1, 2.0]}
//   dumps(v, {.indent = "  "})           -> multi-line, "," between items
//   dumps(v, {.ensure_ascii = true})     -> "\u00e9"

#include <optional>
#include <string>

#include "runtime/chat/jinja_value.h"

namespace linfer::jinja {

struct DumpOptions {
  bool ensure_ascii = false;
  std::optional<std::string> indent;         // the text of one level; nullopt: one line
  std::optional<std::string> item_separator;  // nullopt: ", " on one line, "," with indent
  std::optional<std::string> key_separator;   // nullopt: ": "
  bool sort_keys = false;
};

std::string dumps(const Value& v, const DumpOptions& options);  // throws Failure on undefined / functions

}  // namespace linfer::jinja
