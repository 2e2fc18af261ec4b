// linfer against Hugging Face transformers 5.17 on the committed golden fixtures
// (tests/golden/<case>/, written by tools/golden/ on a GPU; format: the fixture contract).
// For every fixture folder with a model:
//   - logits at every prompt position within 1e-4 relative (‖Δ‖ / ‖ref‖ per position);
//   - greedy decoding (prefill, then one token per step) gives the reference ids;
//   - prefill of a prefix, then token-by-token steps give the full pass's logits;
//   - all prompts packed into one forward give each prompt's logits;
//   - alt/ (the other tensor layout / config format), for every fixture that has one on disk, gives
//     bit-identical logits.
// The fixtures are committed: a missing expected folder, a model folder without cases, an empty case
// list or a case without its logits is a failure, not a skip.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "golden_cases.h"
#include "linfer/model.h"

namespace fs = std::filesystem;
using linfer::Batch;
using linfer::Logits;
using linfer::Model;
using linfer::SequenceState;
using namespace linfer::test;

namespace {

constexpr double kTol = 1e-4;

struct Fixture {
  fs::path model_dir;
  std::vector<GoldenCase> cases;
};

fs::path model_dir_of(const fs::path& dir, const nlohmann::json& j) {
  return j.contains("model_dir") ? fs::path(LINFER_SOURCE_DIR) / j["model_dir"].get<std::string>() : dir;
}

// Throws (json::out_of_range naming the key) when a case lacks a field.
Fixture read_fixture(const fs::path& dir) {
  const auto j = read_cases_json(dir);
  Fixture fx;
  fx.model_dir = model_dir_of(dir, j);
  fx.cases = golden_cases(dir, j);
  return fx;
}

// Model fixture folders present (a cases.json with a model_type).
std::vector<std::string> fixture_names() {
  std::vector<std::string> out;
  if (!fs::exists(kGolden)) return out;
  for (const auto& e : fs::directory_iterator(kGolden)) {
    if (!fs::exists(e.path() / "cases.json")) continue;
    std::ifstream f(e.path() / "cases.json");
    auto j = nlohmann::json::parse(f, nullptr, false);
    if (!j.is_discarded() && j.contains("model_type")) out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Fixtures whose model folder has an alt/ folder (the same weights in another layout / config format).
std::vector<std::string> fixtures_with_alt() {
  std::vector<std::string> out;
  for (const auto& name : fixture_names())
    if (fs::is_directory(model_dir_of(kGolden / name, read_cases_json(kGolden / name)) / "alt")) out.push_back(name);
  return out;
}

class Golden : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    fx_ = read_fixture(kGolden / GetParam());
    model_ = Model::load(fx_.model_dir.string());
    vocab_ = model_->info().vocab_size;
    // Every test below loops over the cases: with none, each would pass without checking anything.
    ASSERT_FALSE(fx_.cases.empty()) << GetParam() << "/cases.json lists no cases (fixtures are committed)";
    for (const auto& c : fx_.cases) {
      ASSERT_FALSE(c.prompt.empty()) << GetParam() << " " << c.name << ": empty prompt";
      ASSERT_FALSE(c.greedy.empty()) << GetParam() << " " << c.name << ": no greedy ids";
      ASSERT_EQ(c.logits.shape(), (linfer::Shape{int64_t(c.prompt.size()), vocab_}))
          << GetParam() << " " << c.name << ": logits must be [prompt length, vocab]";
    }
  }
  Fixture fx_;
  std::shared_ptr<const Model> model_;
  int64_t vocab_ = 0;
};

TEST(GoldenFixtures, ExpectedFoldersArePresent) {
  const auto names = fixture_names();
  for (const char* want : {"kimi_linear_a", "kimi_linear_b", "qwen3_next_a", "qwen3_next_b", "mamba2_a", "mamba2_b"})
    EXPECT_NE(std::find(names.begin(), names.end(), want), names.end())
        << "fixture folder tests/golden/" << want << " is missing (fixtures are committed; run tools/golden/)";
}

TEST(GoldenFixtures, EveryModelFolderHasCases) {
  // A model folder whose cases.json is missing or unreadable would drop out of fixture_names().
  const auto names = fixture_names();
  int models = 0;
  for (const auto& e : fs::directory_iterator(kGolden)) {
    if (!fs::exists(e.path() / "config.json")) continue;
    ++models;
    EXPECT_NE(std::find(names.begin(), names.end(), e.path().filename().string()), names.end())
        << e.path() << " has a model but no readable cases.json with a model_type";
  }
  EXPECT_GE(models, 6);
}

TEST(GoldenFixtures, AltLayoutsArePresent) {
  const auto alt = fixtures_with_alt();
  for (const char* want : {"kimi_linear_a", "kimi_linear_b", "qwen3_next_a", "qwen3_next_b"})
    EXPECT_NE(std::find(alt.begin(), alt.end(), want), alt.end()) << "tests/golden/" << want << "/alt is missing";
}

TEST_P(Golden, LogitsMatchTransformers) {
  double worst = 0;
  for (const auto& c : fx_.cases) {
    const int64_t T = int64_t(c.prompt.size());
    auto got = full_logits(*model_, c.prompt);
    const double err = max_rel_err(got.data(), c.logits.f32(), T, vocab_);
    EXPECT_LE(err, kTol) << GetParam() << " " << c.name;
    worst = std::max(worst, err);
  }
  std::printf("%s: worst relative logits error %.2e\n", GetParam().c_str(), worst);
}

TEST_P(Golden, GreedyTokensMatch) {
  for (const auto& c : fx_.cases)
    EXPECT_EQ(greedy_ids(*model_, c.prompt, c.greedy.size()), c.greedy)
        << GetParam() << " " << c.name << ": greedy ids differ from transformers";
}

TEST_P(Golden, StepDecodeMatchesFullPass) {
  const GoldenCase& c = *std::max_element(fx_.cases.begin(), fx_.cases.end(), [](const GoldenCase& a, const GoldenCase& b) {
    return a.prompt.size() < b.prompt.size();
  });
  const int64_t T = std::min<int64_t>(int64_t(c.prompt.size()), 100), split = T / 3;
  SequenceState s(model_->state_spec());
  SequenceState* sp = &s;
  std::vector<float> got(T * vocab_);
  model_->forward(Batch::single({c.prompt.data(), size_t(split)}), {&sp, 1}, got.data(), Logits::All);
  for (int64_t t = split; t < T; ++t)
    model_->forward(Batch::single({&c.prompt[t], 1}), {&sp, 1}, got.data() + t * vocab_, Logits::Last);
  EXPECT_LE(max_rel_err(got.data(), c.logits.f32(), T, vocab_), kTol) << GetParam() << " " << c.name;
}

TEST_P(Golden, PackedSequencesMatchOneAtATime) {
  std::vector<int32_t> tokens;
  Batch b;
  b.offsets = {0};
  for (const auto& c : fx_.cases) {
    tokens.insert(tokens.end(), c.prompt.begin(), c.prompt.end());
    b.offsets.push_back(int64_t(tokens.size()));
  }
  b.tokens = tokens;
  std::vector<SequenceState> states(fx_.cases.size(), SequenceState(model_->state_spec()));
  std::vector<SequenceState*> ptrs;
  for (auto& s : states) ptrs.push_back(&s);
  std::vector<float> got(tokens.size() * vocab_);
  model_->forward(b, ptrs, got.data(), Logits::All);
  for (size_t i = 0; i < fx_.cases.size(); ++i) {
    const auto& c = fx_.cases[i];
    EXPECT_LE(max_rel_err(got.data() + b.offsets[i] * vocab_, c.logits.f32(), int64_t(c.prompt.size()), vocab_), kTol)
        << GetParam() << " " << c.name << " packed with the other prompts";
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Golden, ::testing::ValuesIn(fixture_names()),
                         [](const auto& info) { return info.param; });

class GoldenAlt : public Golden {};

TEST_P(GoldenAlt, AltLayoutGivesIdenticalLogits) {
  const fs::path alt = fx_.model_dir / "alt";
  ASSERT_TRUE(fs::exists(alt / "config.json")) << alt << " has no config.json";
  auto alt_model = Model::load(alt.string());
  for (const auto& c : fx_.cases) {
    auto a = full_logits(*alt_model, c.prompt);
    auto b = full_logits(*model_, c.prompt);
    EXPECT_EQ(a, b) << GetParam() << " " << c.name << ": alt/ layout gives different logits";
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GoldenAlt, ::testing::ValuesIn(fixtures_with_alt()),
                         [](const auto& info) { return info.param; });

}  // namespace
