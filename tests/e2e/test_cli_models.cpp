// The model commands end to end (the `linfer` binary), on the golden fixtures:
//   - logits / generate / inspect on a good checkpoint give the reference numbers, with the prompt in
//     one pass and in chunks (--ubatch; prefill --ubatch, then generate --load-state, too);
//   - broken checkpoints (renamed tensor, wrong shape, truncated file, unknown model_type, a header
//     whose offsets lie) make `linfer logits` exit non-zero with a message naming the problem.

#include "../cli_run.h"
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <unistd.h>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "io/npy.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const fs::path kFixture = fs::path(LINFER_SOURCE_DIR) / "tests/golden/kimi_linear_a";

CliRun run(const std::string& args) { return run_linfer(args, "2>&1"); }

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

void write_file(const fs::path& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << bytes;
}

json cases() { return json::parse(read_file(kFixture / "cases.json")); }

std::string ids_arg(const json& ids) {
  std::string s;
  for (const auto& v : ids) s += (s.empty() ? "" : ",") + std::to_string(v.get<int>());
  return s;
}

// A private copy of the fixture's model files.
class BrokenCheckpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("linfer_bad_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    fs::copy_file(kFixture / "config.json", dir_ / "config.json");
    fs::copy_file(kFixture / "model.safetensors", dir_ / "model.safetensors");
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Rewrites model.safetensors with its header passed through `edit` (data bytes unchanged).
  template <class F>
  void edit_header(F edit) {
    const std::string bytes = read_file(dir_ / "model.safetensors");
    uint64_t n;
    std::memcpy(&n, bytes.data(), 8);
    json h = json::parse(bytes.substr(8, n));
    edit(h);
    std::string text = h.dump();
    text.append((8 - text.size() % 8) % 8, ' ');
    uint64_t m = text.size();
    std::string out(8, '\0');
    std::memcpy(out.data(), &m, 8);
    write_file(dir_ / "model.safetensors", out + text + bytes.substr(8 + n));
  }

  CliRun logits() { return run("logits --model " + dir_.string() + " --prompt-ids 5,17,42 --out " + (dir_ / "o.npy").string()); }

  fs::path dir_;
};

TEST(CliModels, LogitsMatchTheFixture) {
  const auto c = cases()["cases"][1];  // 63 tokens: in chunks of 7, the last one short
  const fs::path out = fs::temp_directory_path() / ("linfer_logits_" + std::to_string(::getpid()) + ".npy");
  for (const std::string ubatch : {"", " --ubatch 7", " --ubatch 0"}) {
    CliRun r = run("logits --model " + kFixture.string() + " --prompt-ids " + ids_arg(c["prompt_ids"]) + " --out " +
                   out.string() + ubatch);
    ASSERT_EQ(r.status, 0) << ubatch << r.out;
    auto got = linfer::read_npy(out.string());
    auto ref = linfer::read_npy((kFixture / c["logits"].get<std::string>()).string());
    ASSERT_EQ(got.shape(), ref.shape());
    double d = 0, n = 0;
    for (int64_t i = 0; i < got.numel(); ++i) {
      d += double(got.f32()[i] - ref.f32()[i]) * (got.f32()[i] - ref.f32()[i]);
      n += double(ref.f32()[i]) * ref.f32()[i];
    }
    EXPECT_LT(std::sqrt(d / n), 1e-4) << ubatch;
  }
  fs::remove(out);
}

TEST(CliModels, GreedyGenerateMatchesTransformers) {
  const auto c = cases()["cases"][2];
  const std::string n = " -n " + std::to_string(c["greedy_ids"].size()) + " --greedy --print-ids";
  for (const std::string ubatch : {"", " --ubatch 5"}) {
    CliRun r = run("generate --model " + kFixture.string() + " --prompt-ids " + ids_arg(c["prompt_ids"]) + n + ubatch);
    ASSERT_EQ(r.status, 0) << ubatch << r.out;
    EXPECT_NE(r.out.find(ids_arg(c["greedy_ids"]) + "\n"), std::string::npos) << ubatch << r.out;
  }
  // The prompt prefilled in chunks into a state file, then continued by another process.
  const fs::path state = fs::temp_directory_path() / ("linfer_ubatch_" + std::to_string(::getpid()) + ".state");
  CliRun p = run("prefill --model " + kFixture.string() + " --prompt-ids " + ids_arg(c["prompt_ids"]) +
                 " --ubatch 5 --save-state " + state.string());
  ASSERT_EQ(p.status, 0) << p.out;
  CliRun g = run("generate --model " + kFixture.string() + " --load-state " + state.string() + n);
  ASSERT_EQ(g.status, 0) << g.out;
  EXPECT_NE(g.out.find(ids_arg(c["greedy_ids"]) + "\n"), std::string::npos) << g.out;
  fs::remove(state);
}

TEST(CliModels, InspectDescribesTheModel) {
  CliRun r = run("inspect --model " + kFixture.string());
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("architecture: kimi_linear"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("kda+dense, kda+moe x2, mla+moe"), std::string::npos) << r.out;
  CliRun c = run("inspect --config-only --model " + kFixture.string());
  ASSERT_EQ(c.status, 0) << c.out;
  // The parameter count from config.json alone equals the checkpoint's.
  auto params = [](const std::string& s) { return s.substr(s.find("parameters:"), s.find('(', s.find("parameters:")) - s.find("parameters:")); };
  EXPECT_EQ(params(r.out), params(c.out));
}

TEST_F(BrokenCheckpoint, RenamedTensor) {
  edit_header([](json& h) {
    h["model.layers.0.self_attn.q_proj.wieght"] = h["model.layers.0.self_attn.q_proj.weight"];
    h.erase("model.layers.0.self_attn.q_proj.weight");
  });
  CliRun r = logits();
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("model.layers.0.self_attn.q_proj.weight"), std::string::npos) << r.out;
}

TEST_F(BrokenCheckpoint, UnexpectedTensor) {
  // Shares the bytes of an existing tensor, under a name no layer uses.
  edit_header([](json& h) { h["model.layers.9.self_attn.q_proj.weight"] = h["model.layers.0.self_attn.q_proj.weight"]; });
  CliRun r = logits();
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("model.layers.9.self_attn.q_proj.weight"), std::string::npos) << r.out;
}

TEST_F(BrokenCheckpoint, WrongShape) {
  edit_header([](json& h) { h["model.layers.0.self_attn.o_proj.weight"]["shape"] = {32, 128}; });
  CliRun r = logits();
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("model.layers.0.self_attn.o_proj.weight"), std::string::npos) << r.out;
}

TEST_F(BrokenCheckpoint, TruncatedFile) {
  const std::string bytes = read_file(dir_ / "model.safetensors");
  write_file(dir_ / "model.safetensors", bytes.substr(0, bytes.size() / 2));
  CliRun r = logits();
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("model.safetensors"), std::string::npos) << r.out;
}

TEST_F(BrokenCheckpoint, HeaderLiesAboutOffsets) {
  edit_header([](json& h) {
    auto& off = h["model.norm.weight"]["data_offsets"];
    off[1] = off[1].get<int64_t>() + (int64_t(1) << 30);
  });
  CliRun r = logits();
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("model.norm.weight"), std::string::npos) << r.out;
}

TEST_F(BrokenCheckpoint, UnknownModelType) {
  json c = json::parse(read_file(dir_ / "config.json"));
  c["model_type"] = "llama9";
  write_file(dir_ / "config.json", c.dump());
  CliRun r = logits();
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("unsupported model_type 'llama9'"), std::string::npos) << r.out;
}

TEST_F(BrokenCheckpoint, MissingConfigField) {
  json c = json::parse(read_file(dir_ / "config.json"));
  c.erase("kv_lora_rank");
  write_file(dir_ / "config.json", c.dump());
  CliRun r = logits();
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("kv_lora_rank"), std::string::npos) << r.out;
}

}  // namespace
