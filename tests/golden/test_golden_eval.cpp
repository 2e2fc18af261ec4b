// `linfer eval` on the demo model against the training script's figure (tests/golden/demo/eval.json,
// written by tools/train_demo.py with transformers on the GPU): the mean nats/token of the
// validation snippet must agree to 3 decimals (|Δ| < 5e-4), over the same number of scored tokens.

#include "../cli_run.h"
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

namespace fs = std::filesystem;

namespace {

const fs::path kDemo = fs::path(LINFER_SOURCE_DIR) / "tests/golden/demo";

CliRun run(const std::string& args) { return run_linfer(args, ""); }

TEST(GoldenEval, DemoValidationLossMatchesTrainingScript) {
  std::ifstream f(kDemo / "eval.json");
  ASSERT_TRUE(f) << kDemo / "eval.json" << " is missing (fixtures are committed)";
  const auto ref = nlohmann::json::parse(f);
  const double want = ref.at("nats_per_token").get<double>();
  const int64_t window = ref.at("window").get<int64_t>(), n_tokens = ref.at("n_tokens").get<int64_t>();
  const fs::path text = kDemo / ref.at("text_file").get<std::string>();
  const fs::path model = fs::path(LINFER_SOURCE_DIR) / "models/demo";

  const CliRun r = run("eval --model " + model.string() + " --text-file " + text.string() +
                       " --window " + std::to_string(window));
  ASSERT_EQ(r.status, 0) << r.out;
  // "4.714226 nats/token over 1179 tokens (1 windows of up to 1180)"
  double got = NAN;
  long long scored = -1;
  ASSERT_EQ(std::sscanf(r.out.c_str(), "%lf nats/token over %lld tokens", &got, &scored), 2) << r.out;
  const int64_t windows = (n_tokens + window - 1) / window;  // each window's first token is context only
  EXPECT_EQ(scored, n_tokens - windows) << "the tokenizer or the windowing differs from the training script's";
  EXPECT_LT(std::fabs(got - want), 5e-4) << "linfer eval: " << got << " nats/token, training script: " << want;
}

}  // namespace
