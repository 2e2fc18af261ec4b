// io/config: typed getters read the values written in the JSON text; missing / mistyped / null
// fields are Errors naming the field path and the file.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "io/config.h"
#include "linfer/core/error.h"

using namespace linfer;

namespace {

const char* kText = R"({
  "model_type": "kimi_linear", "hidden_size": 1024, "rms_norm_eps": 1e-06, "tie": false,
  "rope_theta": 10000.0, "heads_as_float": 16.0, "half": 2.5, "sliding_window": null,
  "big": 9223372036854775807, "too_big": 18446744073709551615, "neg": -3,
  "layer_types": ["linear_attention", "full_attention"], "ids": [1, 4, 7], "mixed": [1, "a"],
  "linear_attn_config": {"kda_layers": [1, 2, 3], "num_heads": 32, "inner": {"x": "y"}}
})";

template <class F>
std::string error_of(F&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

}  // namespace

TEST(Config, TypedGetters) {
  Config c = Config::parse(kText, "cfg.json");
  EXPECT_EQ(c.get<std::string>("model_type"), "kimi_linear");
  EXPECT_EQ(c.get<int64_t>("hidden_size"), 1024);
  EXPECT_EQ(c.get<int>("hidden_size"), 1024);
  EXPECT_DOUBLE_EQ(c.get<double>("rms_norm_eps"), 1e-6);
  EXPECT_FLOAT_EQ(c.get<float>("rope_theta"), 10000.0f);
  EXPECT_DOUBLE_EQ(c.get<double>("hidden_size"), 1024.0);  // integers are numbers too
  EXPECT_EQ(c.get<int64_t>("heads_as_float"), 16);         // integral float accepted
  EXPECT_EQ(c.get<bool>("tie"), false);
  EXPECT_EQ(c.get<int64_t>("big"), INT64_MAX);
  EXPECT_EQ(c.get<int64_t>("neg"), -3);
  EXPECT_EQ(c.get<std::vector<std::string>>("layer_types"),
            (std::vector<std::string>{"linear_attention", "full_attention"}));
  EXPECT_EQ(c.get<std::vector<int64_t>>("ids"), (std::vector<int64_t>{1, 4, 7}));
  EXPECT_EQ(c.get<std::vector<double>>("ids"), (std::vector<double>{1, 4, 7}));
}

TEST(Config, DefaultsAndOptionals) {
  Config c = Config::parse(kText, "cfg.json");
  EXPECT_EQ(c.get<int64_t>("absent", 7), 7);
  EXPECT_EQ(c.get<int64_t>("hidden_size", 7), 1024);
  EXPECT_EQ(c.get<int64_t>("sliding_window", 4096), 4096);  // null = absent
  EXPECT_FALSE(c.opt<int64_t>("sliding_window").has_value());
  EXPECT_FALSE(c.opt<int64_t>("absent").has_value());
  EXPECT_EQ(c.opt<int64_t>("hidden_size").value(), 1024);
  EXPECT_TRUE(c.has("hidden_size"));
  EXPECT_FALSE(c.has("sliding_window"));
  EXPECT_FALSE(c.has("absent"));
  // a default does not hide a mistyped value
  EXPECT_THROW(c.get<int64_t>("model_type", 3), Error);
}

TEST(Config, ErrorsNameFieldAndFile) {
  Config c = Config::parse(kText, "dir/config.json");
  auto e = error_of([&] { c.get<int64_t>("num_layers"); });
  EXPECT_NE(e.find("dir/config.json"), std::string::npos) << e;
  EXPECT_NE(e.find("'num_layers'"), std::string::npos) << e;
  EXPECT_NE(e.find("missing"), std::string::npos) << e;

  e = error_of([&] { c.get<int64_t>("model_type"); });
  EXPECT_NE(e.find("'model_type'"), std::string::npos) << e;
  EXPECT_NE(e.find("integer"), std::string::npos) << e;

  EXPECT_NE(error_of([&] { c.get<int64_t>("half"); }).find("'half'"), std::string::npos);
  EXPECT_NE(error_of([&] { c.get<int64_t>("too_big"); }).find("out of range"), std::string::npos);
  EXPECT_NE(error_of([&] { c.get<int>("big"); }).find("32 bits"), std::string::npos);
  EXPECT_NE(error_of([&] { c.get<bool>("hidden_size"); }).find("true/false"), std::string::npos);
  EXPECT_NE(error_of([&] { c.get<std::string>("ids"); }).find("string"), std::string::npos);
  EXPECT_NE(error_of([&] { c.get<int64_t>("sliding_window"); }).find("missing"), std::string::npos);
  e = error_of([&] { c.get<std::vector<int64_t>>("mixed"); });
  EXPECT_NE(e.find("'mixed'[1]"), std::string::npos) << e;
  EXPECT_NE(error_of([&] { c.get<std::vector<int64_t>>("hidden_size"); }).find("list"), std::string::npos);
}

TEST(Config, NestedObjectsNameTheirPath) {
  Config c = Config::parse(kText, "config.json");
  Config lin = c.sub("linear_attn_config");
  EXPECT_EQ(lin.get<int64_t>("num_heads"), 32);
  EXPECT_EQ(lin.get<std::vector<int64_t>>("kda_layers"), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(lin.sub("inner").get<std::string>("x"), "y");
  auto e = error_of([&] { lin.get<int64_t>("head_dim"); });
  EXPECT_NE(e.find("'linear_attn_config.head_dim'"), std::string::npos) << e;
  EXPECT_NE(e.find("config.json"), std::string::npos) << e;
  e = error_of([&] { lin.sub("inner").get<int64_t>("x"); });
  EXPECT_NE(e.find("'linear_attn_config.inner.x'"), std::string::npos) << e;
  EXPECT_NE(error_of([&] { c.sub("hidden_size"); }).find("object"), std::string::npos);
  EXPECT_NE(error_of([&] { c.sub("nope"); }).find("'nope'"), std::string::npos);
}

TEST(Config, BadDocuments) {
  EXPECT_NE(error_of([] { Config::parse("{\"a\": ", "x.json"); }).find("x.json: not valid JSON"),
            std::string::npos);
  EXPECT_NE(error_of([] { Config::parse("[1, 2]", "x.json"); }).find("object"), std::string::npos);
  EXPECT_NE(error_of([] { Config::parse("", "x.json"); }).find("x.json"), std::string::npos);
  EXPECT_NE(error_of([] { Config::load("/nonexistent/config.json"); }).find("/nonexistent/config.json"),
            std::string::npos);
}

TEST(Config, LoadFromFile) {
  auto path = std::filesystem::temp_directory_path() / fmt::format("linfer_cfg_{}.json", ::getpid());
  std::ofstream(path) << kText;
  Config c = Config::load(path.string());
  EXPECT_EQ(c.file(), path.string());
  EXPECT_EQ(c.get<int64_t>("hidden_size"), 1024);
  std::filesystem::remove(path);
}
