// `linfer bench` end to end on a tiny fixture model: the tests it runs, the JSON it prints, the
// profile parts, prompts in chunks of --ubatch, and a clear error when there is nothing to run. (Speed itself is never asserted.)

#include "../cli_run.h"
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

namespace fs = std::filesystem;

namespace {

const fs::path kModel = fs::path(LINFER_SOURCE_DIR) / "tests/golden/kimi_linear_a";

CliRun run(const std::string& args, bool with_stderr) {
  return run_linfer(args, with_stderr ? "2>&1" : "2>/dev/null");
}

TEST(Bench, JsonListsEveryTestWithItsSamples) {
  const CliRun r = run("--threads 2 bench --model " + kModel.string() + " -p 8,16 -n 4 -r 2 --json --profile", false);
  ASSERT_EQ(r.status, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), 3u) << r.out;
  const char* names[] = {"pp8", "pp16", "tg4"};
  for (size_t i = 0; i < 3; ++i) {
    const auto& t = j[i];
    EXPECT_EQ(t["test"], names[i]);
    EXPECT_EQ(t["architecture"], "kimi_linear");
    EXPECT_EQ(t["threads"], 2);
    EXPECT_EQ(t["samples_s"].size(), 2u);
    EXPECT_EQ(t["cpu_samples_s"].size(), 2u);
    EXPECT_GT(t["tokens_per_s"].get<double>(), 0);
    EXPECT_EQ(t["n_prompt"].get<int>() + t["n_gen"].get<int>(), i == 0 ? 8 : i == 1 ? 16 : 4);
    // kimi_linear_a: KDA + MLA mixers, a dense layer and MoE layers.
    for (const char* part : {"mixer kda", "mixer mla", "ffn dense", "ffn moe", "lm head", "embed"})
      EXPECT_TRUE(t["profile"].contains(part)) << names[i] << " profile lacks '" << part << "'";
    // Decode runs the model once per token per repetition: 2 x 4 forwards.
    if (i == 2) {
      EXPECT_EQ(t["profile"]["embed"]["calls"], 8);
    }
  }
}

TEST(Bench, BatchDecodesSequencesTogether) {
  const CliRun r = run("bench --model " + kModel.string() + " -p 0 -n 3 -b 1,4 -r 1 --json --profile", false);
  ASSERT_EQ(r.status, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), 2u) << r.out;
  EXPECT_EQ(j[0]["test"], "tg3");
  EXPECT_EQ(j[1]["test"], "tg3 x 4");
  EXPECT_EQ(j[0]["batch"], 1);
  EXPECT_EQ(j[1]["batch"], 4);
  for (const auto& t : j) {
    // One forward per step whatever the batch; tokens/s counts every sequence's tokens.
    EXPECT_EQ(t["profile"]["embed"]["calls"], 3) << t["test"];
    const double tokens = t["tokens_per_s"].get<double>() * t["median_s"].get<double>();
    EXPECT_NEAR(tokens, 3.0 * t["batch"].get<double>(), 1e-6) << t["test"];
  }
  const CliRun bad = run("bench --model " + kModel.string() + " -p 0 -n 3 -b 0", true);
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.out.find("-b 0"), std::string::npos) << bad.out;
}

TEST(Bench, PromptRunsInChunksOfUbatch) {
  // -p 20 in chunks of 8 is three forward calls a run (8 + 8 + 4); 0 and the CPU's default (512) are one.
  const std::vector<std::tuple<std::string, int, int>> runs = {{" --ubatch 8", 8, 3}, {"", 512, 1}, {" --ubatch 0", 0, 1}};
  for (const auto& [option, ubatch, calls] : runs) {
    const CliRun r = run("bench --model " + kModel.string() + " -p 20 -n 0 -r 2 --json --profile" + option, false);
    ASSERT_EQ(r.status, 0) << option << r.out;
    const auto j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j.size(), 1u) << r.out;
    EXPECT_EQ(j[0]["ubatch"], ubatch) << option;
    EXPECT_EQ(j[0]["profile"]["embed"]["calls"], 2 * calls) << option;
  }
}

TEST(Bench, TableByDefault) {
  const CliRun r = run("bench --model " + kModel.string() + " -p 4 -n 0 -r 1", false);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("| kimi_linear |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| pp4 |"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("tg"), std::string::npos) << "-n 0 runs no decode test:\n" << r.out;
}

TEST(Bench, NothingToRunIsAnError) {
  const CliRun r = run("bench --model " + kModel.string() + " -p 0 -n 0", true);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("nothing to run"), std::string::npos) << r.out;
}

}  // namespace
