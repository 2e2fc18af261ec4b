#pragma once
// config.json with typed getters. A missing or mistyped field is a linfer::Error naming the field
// (with its path inside nested objects) and the file. JSON null counts as absent, as Hugging Face
// writes it for unset options ("sliding_window": null).
//
//   Config c = Config::load(dir + "/config.json");
//   int64_t hidden = c.get<int64_t>("hidden_size");
//   double eps = c.get<double>("rms_norm_eps", 1e-6);               // default when absent
//   std::optional<int64_t> window = c.opt<int64_t>("sliding_window");
//   if (c.has("linear_attn_config")) { Config lin = c.sub("linear_attn_config"); ... }
//
// Supported T: bool, int, int64_t, float, double, std::string, std::vector<int64_t>,
// std::vector<double>, std::vector<std::string>. Integer getters accept integral floats (2.0) and
// reject 2.5; floating getters accept integers. Thread-safety: immutable; share freely.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace linfer {

class Config {
 public:
  static Config load(const std::string& path);
  // `label` names the source in errors (a path, or "<memory>").
  static Config parse(const std::string& text, const std::string& label);

  bool has(const std::string& key) const;  // present and not null
  template <class T>
  T get(const std::string& key) const;
  template <class T>
  T get(const std::string& key, const T& fallback) const;
  template <class T>
  std::optional<T> opt(const std::string& key) const;
  // A nested object, whose errors name "parent.key".
  Config sub(const std::string& key) const;

  const nlohmann::json& json() const { return json_; }
  const std::string& file() const { return file_; }

 private:
  Config(nlohmann::json json, std::string file, std::string prefix);
  const nlohmann::json* lookup(const std::string& key) const;
  std::string field(const std::string& key) const { return prefix_ + key; }

  nlohmann::json json_;
  std::string file_;
  std::string prefix_;  // "" or "parent." for sub-configs
};

}  // namespace linfer
