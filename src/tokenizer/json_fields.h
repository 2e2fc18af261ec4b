#pragma once
// Field access for tokenizer files, with errors that name the file and the field path.

#include <nlohmann/json.hpp>

#include <string>

#include "linfer/core/error.h"

namespace linfer::tok {

using nlohmann::json;

json read_json_file(const std::string& path);

// obj[key], which must exist and not be null; `where` is "file: path.to.obj".
const json& required(const json& obj, const std::string& key, const std::string& where);

template <class T>
T value_or(const json& obj, const std::string& key, const T& fallback, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  try {
    return it->get<T>();
  } catch (const json::exception&) {
    fail("{}.{}: wrong type ({})", where, key, it->type_name());
  }
}

}  // namespace linfer::tok
