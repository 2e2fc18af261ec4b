#pragma once
// config.json fields that different writers spell differently (transformers' own names vs the
// published checkpoints' names): the first key present wins.

#include <initializer_list>
#include <optional>
#include <string>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "io/config.h"
#include "linfer/core/error.h"

namespace linfer {

template <class T>
std::optional<T> opt_any(const Config& c, std::initializer_list<const char*> keys) {
  for (const char* k : keys)
    if (c.has(k)) return c.get<T>(k);
  return std::nullopt;
}

template <class T>
T get_any(const Config& c, std::initializer_list<const char*> keys, const T& fallback) {
  return opt_any<T>(c, keys).value_or(fallback);
}

template <class T>
T need_any(const Config& c, std::initializer_list<const char*> keys) {
  if (auto v = opt_any<T>(c, keys)) return *v;
  fail("{}: missing field {}", c.file(), fmt::join(keys, " / "));
}

// bos / eos may be an int or a list (the first is used); absent or null -> -1.
inline int64_t token_id_field(const Config& c, const char* key) {
  if (!c.has(key)) return -1;
  const auto& j = c.json().at(key);
  if (j.is_array()) return j.empty() ? -1 : c.get<std::vector<int64_t>>(key).front();
  return c.get<int64_t>(key);
}

}  // namespace linfer
