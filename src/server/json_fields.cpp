#include "server/json_fields.h"

#include <algorithm>
#include <cmath>

#include "server/api_error.h"

namespace linfer::server {

namespace {

const char* type_name(const Json& v) {
  switch (v.type()) {
    case Json::value_t::string: return "a string";
    case Json::value_t::boolean: return "a boolean";
    case Json::value_t::array: return "an array";
    case Json::value_t::object: return "an object";
    case Json::value_t::number_float: return "a number";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned: return "an integer";
    default: return "null";
  }
}

[[noreturn]] void bad(const char* key, const std::string& what) { throw ApiError(400, what, key); }

// Nesting depth of arrays and objects, outside strings. Checked before parsing: a body of a few
// megabytes of '[' would otherwise exhaust the stack of the thread that builds or frees the tree.
int nesting_depth(const std::string& text) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

constexpr int kMaxDepth = 64;

}  // namespace

Json parse_body(const std::string& body) {
  if (nesting_depth(body) > kMaxDepth)
    throw ApiError(400, fmt::format("the request body nests arrays / objects more than {} deep", kMaxDepth));
  Json j = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw ApiError(400, "the request body is not valid JSON");
  if (!j.is_object()) throw ApiError(400, fmt::format("the request body must be a JSON object, not {}", type_name(j)));
  return j;
}

bool Fields::has(const char* key) const { return get(key) != nullptr; }

const Json* Fields::get(const char* key) const {
  auto it = j_.find(key);
  if (it == j_.end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<int64_t> Fields::integer(const char* key, int64_t lo, int64_t hi) const {
  const Json* v = get(key);
  if (!v) return std::nullopt;
  int64_t x = 0;
  if (v->is_number_unsigned()) {
    const uint64_t u = v->get<uint64_t>();
    if (u > uint64_t(INT64_MAX)) bad(key, fmt::format("'{}' = {} is out of range [{}, {}]", key, u, lo, hi));
    x = int64_t(u);
  } else if (v->is_number_integer()) {
    x = v->get<int64_t>();
  } else if (v->is_number_float() && std::isfinite(v->get<double>()) && v->get<double>() == std::floor(v->get<double>()) &&
             std::fabs(v->get<double>()) < 9e18) {
    x = int64_t(v->get<double>());  // 16.0 is an integer too (JavaScript clients send those)
  } else {
    bad(key, fmt::format("'{}' must be an integer, not {}", key, type_name(*v)));
  }
  if (x < lo || x > hi) bad(key, fmt::format("'{}' = {} is out of range [{}, {}]", key, x, lo, hi));
  return x;
}

std::optional<double> Fields::number(const char* key, double lo, double hi) const {
  const Json* v = get(key);
  if (!v) return std::nullopt;
  if (!v->is_number()) bad(key, fmt::format("'{}' must be a number, not {}", key, type_name(*v)));
  const double x = v->get<double>();
  if (!(x >= lo && x <= hi)) bad(key, fmt::format("'{}' = {} is out of range [{}, {}]", key, x, lo, hi));
  return x;
}

std::optional<bool> Fields::boolean(const char* key) const {
  const Json* v = get(key);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) bad(key, fmt::format("'{}' must be true or false, not {}", key, type_name(*v)));
  return v->get<bool>();
}

std::optional<std::string> Fields::string(const char* key) const {
  const Json* v = get(key);
  if (!v) return std::nullopt;
  if (!v->is_string()) bad(key, fmt::format("'{}' must be a string, not {}", key, type_name(*v)));
  return v->get<std::string>();
}

std::vector<std::string> Fields::strings(const char* key, size_t max_items) const {
  const Json* v = get(key);
  if (!v) return {};
  if (v->is_string()) return {v->get<std::string>()};
  if (!v->is_array()) bad(key, fmt::format("'{}' must be a string or an array of strings, not {}", key, type_name(*v)));
  if (v->size() > max_items) bad(key, fmt::format("'{}' has {} items; at most {} are allowed", key, v->size(), max_items));
  std::vector<std::string> out;
  for (const auto& item : *v) {
    if (!item.is_string()) bad(key, fmt::format("'{}' must hold strings, not {}", key, type_name(item)));
    out.push_back(item.get<std::string>());
  }
  return out;
}

std::vector<int32_t> parse_ids(const Json& value, const char* key, int64_t vocab) {
  if (!value.is_array()) bad(key, fmt::format("'{}' must be an array of token ids, not {}", key, type_name(value)));
  std::vector<int32_t> ids;
  ids.reserve(value.size());
  for (const auto& item : value) {
    if (!item.is_number_integer()) bad(key, fmt::format("'{}' must hold integer token ids, not {}", key, type_name(item)));
    const bool neg = item.is_number_integer() && !item.is_number_unsigned() && item.get<int64_t>() < 0;
    if (neg || item.get<uint64_t>() >= uint64_t(vocab))
      bad(key, fmt::format("token id {} in '{}' is outside the vocabulary [0, {})", item.dump(), key, vocab));
    ids.push_back(int32_t(item.get<int64_t>()));
  }
  return ids;
}

Prompt parse_prompt(const Json& value, const char* key, int64_t vocab) {
  Prompt p;
  if (value.is_string()) {
    p.is_text = true;
    p.text = value.get<std::string>();
    return p;
  }
  if (value.is_array() && value.size() == 1 && (value[0].is_string() || value[0].is_array()))
    return parse_prompt(value[0], key, vocab);  // a batch of one prompt
  if (value.is_array() && !value.empty() && (value[0].is_string() || value[0].is_array()))
    bad(key, fmt::format("'{}' holds {} prompts; this server takes one prompt per request", key, value.size()));
  if (!value.is_array())
    bad(key, fmt::format("'{}' must be a string or an array of token ids, not {}", key, type_name(value)));
  p.ids = parse_ids(value, key, vocab);
  return p;
}

}  // namespace linfer::server
