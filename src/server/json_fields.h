#pragma once
// Typed, optional fields of a request body. A field that is absent or null reads as "not given"; a
// field of the wrong type or out of range throws ApiError 400 naming it.
//
//   Fields f(body);
//   int64_t max_tokens = f.integer("max_tokens", 1, INT32_MAX).value_or(16);
//   std::vector<std::string> stop = f.strings("stop", 32);

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace linfer::server {

// Request bodies keep the client's key order: chat templates write dicts with tojson.
using Json = nlohmann::ordered_json;

// Parses a request body; throws ApiError 400 when it is not a JSON object.
Json parse_body(const std::string& body);

class Fields {
 public:
  explicit Fields(const Json& object) : j_(object) {}

  bool has(const char* key) const;  // present and not null
  const Json* get(const char* key) const;  // nullptr when absent or null
  std::optional<int64_t> integer(const char* key, int64_t lo, int64_t hi) const;
  std::optional<double> number(const char* key, double lo, double hi) const;
  std::optional<bool> boolean(const char* key) const;
  std::optional<std::string> string(const char* key) const;
  // A string or an array of at most max_items strings (OpenAI's `stop`).
  std::vector<std::string> strings(const char* key, size_t max_items) const;

 private:
  const Json& j_;
};

// A prompt: text, or token ids (each checked against the vocabulary).
struct Prompt {
  bool is_text = false;
  std::string text;
  std::vector<int32_t> ids;
};
// `value` is a string, an array of integers, or an array holding one of those (a batch of one).
Prompt parse_prompt(const Json& value, const char* key, int64_t vocab);
std::vector<int32_t> parse_ids(const Json& value, const char* key, int64_t vocab);

}  // namespace linfer::server
