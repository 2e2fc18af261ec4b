// `linfer quantize` end to end on the demo model: the folder it writes loads, inspect reports its types
// and bits per weight (from the bytes the file holds), and bad input (bits, type, an occupied output
// folder, a folder that is not a model, a quantized file whose metadata lies) exits non-zero with a
// message naming the problem.

#include "../cli_run.h"
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

namespace fs = std::filesystem;

namespace {

const fs::path kDemo = fs::path(LINFER_SOURCE_DIR) / "models/demo";

CliRun run(const std::string& args) { return run_linfer(args, "2>&1"); }

class Quantize : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = fs::temp_directory_path() / ("linfer_quantize_" + std::to_string(::getpid()));
    fs::remove_all(tmp_);
    fs::create_directories(tmp_);
  }
  void TearDown() override { fs::remove_all(tmp_); }
  fs::path tmp_;
};

TEST_F(Quantize, WritesAFolderThatLoadsAndInspects) {
  const fs::path out = tmp_ / "q8";
  CliRun q = run("quantize --model " + kDemo.string() + " --out " + out.string() + " --bits 8");
  ASSERT_EQ(q.status, 0) << q.out;
  EXPECT_TRUE(fs::exists(out / "tokenizer.json")) << "tokenizer files are copied";
  EXPECT_TRUE(fs::exists(out / "config.json"));
  CliRun i = run("inspect --model " + out.string());
  ASSERT_EQ(i.status, 0) << i.out;
  // bits per weight from the file's bytes: q8_0 is 34 bytes per 32 weights
  const double file_bytes = double(fs::file_size(out / "model.safetensors"));
  EXPECT_NE(i.out.find("q8_0"), std::string::npos) << i.out;
  const size_t at = i.out.find(" bits/weight (");
  ASSERT_NE(at, std::string::npos) << i.out;
  const double bpw = std::stod(i.out.substr(i.out.rfind(' ', at - 1) + 1));
  CliRun info = run("inspect --model " + kDemo.string());
  const size_t p = info.out.find("parameters: ");
  const double params = std::stod(info.out.substr(p + 12));
  EXPECT_NEAR(bpw, 8 * file_bytes / params, 0.1) << i.out;  // the header is the only difference
  EXPECT_LT(bpw, 16.0);
  CliRun g = run("generate --model " + out.string() + " --prompt-ids 1,2,3 -n 4 --greedy --print-ids");
  EXPECT_EQ(g.status, 0) << g.out;
}

TEST_F(Quantize, RefusesBadInput) {
  auto fails_with = [&](const std::string& args, const std::string& what) {
    CliRun r = run("quantize " + args);
    EXPECT_NE(r.status, 0) << args;
    EXPECT_NE(r.out.find(what), std::string::npos) << args << "\n" << r.out;
  };
  const std::string m = " --model " + kDemo.string();
  fails_with(m + " --out " + (tmp_ / "a").string() + " --bits 3", "--bits 3");
  fails_with(m + " --out " + (tmp_ / "a").string() + " --bits 4 --type q8_0", "is not a 4-bit type");
  fails_with(m + " --out " + (tmp_ / "a").string() + " --bits 4 --type q6_k", "--type q6_k");
  std::ofstream(tmp_ / "occupied.txt") << "x";
  fails_with(m + " --out " + tmp_.string() + " --bits 8", "not empty");
  fails_with("--model " + (tmp_ / "nothing").string() + " --out " + (tmp_ / "b").string() + " --bits 8", "not a folder");
  const fs::path q = tmp_ / "q8";
  ASSERT_EQ(run("quantize" + m + " --out " + q.string() + " --bits 8").status, 0);
  fails_with("--model " + q.string() + " --out " + (tmp_ / "c").string() + " --bits 4", "is already quantized");
}

// The fingerprint covers the weights' types: a state prefilled by the bf16 model is refused by its quantized
// copy unless --state-other-weights says otherwise, and even then only for the same architecture.
TEST_F(Quantize, StatesOfOtherWeightsOnlyWhenAsked) {
  const fs::path out = tmp_ / "q8", state = tmp_ / "bf16.lstate";
  ASSERT_EQ(run("quantize --model " + kDemo.string() + " --out " + out.string() + " --bits 8").status, 0);
  ASSERT_EQ(run("prefill --model " + kDemo.string() + " --prompt-ids 5,6,7,8 --save-state " + state.string()).status, 0);
  const std::string gen = "generate -n 3 --greedy --print-ids --load-state " + state.string();
  CliRun refused = run(gen + " --model " + out.string());
  EXPECT_NE(refused.status, 0);
  EXPECT_NE(refused.out.find("state was written by model"), std::string::npos) << refused.out;
  CliRun accepted = run(gen + " --state-other-weights --model " + out.string());
  EXPECT_EQ(accepted.status, 0) << accepted.out;
  const fs::path other = fs::path(LINFER_SOURCE_DIR) / "tests/golden/mamba2_a";
  CliRun arch = run(gen + " --state-other-weights --model " + other.string());
  EXPECT_NE(arch.status, 0);
  EXPECT_NE(arch.out.find("state was written by a kimi_linear model but this model is mamba2"), std::string::npos)
      << arch.out;
}

// A quantized file whose metadata names a type its bytes cannot hold is refused at load, by tensor.
TEST_F(Quantize, RefusesLyingMetadata) {
  const fs::path out = tmp_ / "q4";
  ASSERT_EQ(run("quantize --model " + kDemo.string() + " --out " + out.string() + " --bits 4").status, 0);
  std::ifstream in(out / "model.safetensors", std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string bytes = ss.str();
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | uint8_t(bytes[size_t(i)]);
  auto header = nlohmann::json::parse(bytes.substr(8, n));
  std::string victim;
  for (auto& [k, v] : header["__metadata__"].items())
    if (k.rfind("linfer.quant.", 0) == 0 && v == "q4_k") victim = k;
  ASSERT_FALSE(victim.empty());
  header["__metadata__"][victim] = "q8_0";  // 144-byte blocks read as 34-byte ones
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');
  std::string rewritten(8, '\0');
  for (int i = 0; i < 8; ++i) rewritten[size_t(i)] = char((uint64_t(h.size()) >> (8 * i)) & 0xff);
  rewritten += h + bytes.substr(8 + n);
  std::ofstream(out / "model.safetensors", std::ios::binary | std::ios::trunc) << rewritten;
  CliRun r = run("inspect --model " + out.string());
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("not whole 34-byte blocks"), std::string::npos) << r.out;
}

}  // namespace
