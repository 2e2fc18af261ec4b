#include "io/config.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include "linfer/core/error.h"

namespace linfer {

namespace {

const char* type_name(const nlohmann::json& j) { return j.type_name(); }

// Conversions from one JSON value; `what` names the field and file in errors.
template <class T>
struct Read;

template <>
struct Read<bool> {
  static bool from(const nlohmann::json& j, const std::string& what) {
    LINFER_CHECK(j.is_boolean(), "{}: expected true/false, found {} {}", what, type_name(j), j.dump());
    return j.get<bool>();
  }
};

template <>
struct Read<int64_t> {
  static int64_t from(const nlohmann::json& j, const std::string& what) {
    if (j.is_number_unsigned()) {
      uint64_t v = j.get<uint64_t>();
      LINFER_CHECK(v <= uint64_t(INT64_MAX), "{}: {} is out of range", what, v);
      return int64_t(v);
    }
    if (j.is_number_integer()) return j.get<int64_t>();
    if (j.is_number_float()) {
      double v = j.get<double>();
      // configs sometimes write integers as 2.0; accept those, refuse 2.5
      LINFER_CHECK(std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 9.0e18,
                   "{}: expected an integer, found {}", what, j.dump());
      return int64_t(v);
    }
    fail("{}: expected an integer, found {} {}", what, type_name(j), j.dump());
  }
};

template <>
struct Read<int> {
  static int from(const nlohmann::json& j, const std::string& what) {
    int64_t v = Read<int64_t>::from(j, what);
    LINFER_CHECK(v >= INT32_MIN && v <= INT32_MAX, "{}: {} does not fit in 32 bits", what, v);
    return int(v);
  }
};

template <>
struct Read<double> {
  static double from(const nlohmann::json& j, const std::string& what) {
    LINFER_CHECK(j.is_number(), "{}: expected a number, found {} {}", what, type_name(j), j.dump());
    return j.get<double>();
  }
};

template <>
struct Read<float> {
  static float from(const nlohmann::json& j, const std::string& what) {
    return float(Read<double>::from(j, what));
  }
};

template <>
struct Read<std::string> {
  static std::string from(const nlohmann::json& j, const std::string& what) {
    LINFER_CHECK(j.is_string(), "{}: expected a string, found {} {}", what, type_name(j), j.dump());
    return j.get<std::string>();
  }
};

template <class E>
struct Read<std::vector<E>> {
  static std::vector<E> from(const nlohmann::json& j, const std::string& what) {
    LINFER_CHECK(j.is_array(), "{}: expected a list, found {} {}", what, type_name(j), j.dump());
    std::vector<E> out;
    out.reserve(j.size());
    for (size_t i = 0; i < j.size(); ++i) out.push_back(Read<E>::from(j[i], fmt::format("{}[{}]", what, i)));
    return out;
  }
};

}  // namespace

Config::Config(nlohmann::json json, std::string file, std::string prefix)
    : json_(std::move(json)), file_(std::move(file)), prefix_(std::move(prefix)) {}

Config Config::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  LINFER_CHECK(in.good(), "cannot open {}", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return parse(ss.str(), path);
}

Config Config::parse(const std::string& text, const std::string& label) {
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  LINFER_CHECK(!j.is_discarded(), "{}: not valid JSON", label);
  LINFER_CHECK(j.is_object(), "{}: expected a JSON object, found {}", label, j.type_name());
  return Config(std::move(j), label, "");
}

const nlohmann::json* Config::lookup(const std::string& key) const {
  auto it = json_.find(key);
  if (it == json_.end() || it->is_null()) return nullptr;
  return &*it;
}

bool Config::has(const std::string& key) const { return lookup(key) != nullptr; }

template <class T>
T Config::get(const std::string& key) const {
  const nlohmann::json* j = lookup(key);
  LINFER_CHECK(j != nullptr, "{}: missing field '{}'", file_, field(key));
  return Read<T>::from(*j, fmt::format("{}: field '{}'", file_, field(key)));
}

template <class T>
T Config::get(const std::string& key, const T& fallback) const {
  const nlohmann::json* j = lookup(key);
  return j ? Read<T>::from(*j, fmt::format("{}: field '{}'", file_, field(key))) : fallback;
}

template <class T>
std::optional<T> Config::opt(const std::string& key) const {
  const nlohmann::json* j = lookup(key);
  if (!j) return std::nullopt;
  return Read<T>::from(*j, fmt::format("{}: field '{}'", file_, field(key)));
}

Config Config::sub(const std::string& key) const {
  const nlohmann::json* j = lookup(key);
  LINFER_CHECK(j != nullptr, "{}: missing field '{}'", file_, field(key));
  LINFER_CHECK(j->is_object(), "{}: field '{}': expected an object, found {}", file_, field(key),
               j->type_name());
  return Config(*j, file_, field(key) + ".");
}

#define LINFER_CONFIG_TYPE(T)                                                    \
  template T Config::get<T>(const std::string&) const;                           \
  template T Config::get<T>(const std::string&, const T&) const;                 \
  template std::optional<T> Config::opt<T>(const std::string&) const;
LINFER_CONFIG_TYPE(bool)
LINFER_CONFIG_TYPE(int)
LINFER_CONFIG_TYPE(int64_t)
LINFER_CONFIG_TYPE(float)
LINFER_CONFIG_TYPE(double)
LINFER_CONFIG_TYPE(std::string)
LINFER_CONFIG_TYPE(std::vector<int64_t>)
LINFER_CONFIG_TYPE(std::vector<double>)
LINFER_CONFIG_TYPE(std::vector<std::string>)
#undef LINFER_CONFIG_TYPE

}  // namespace linfer
