// Batching changes nothing: on every golden model and on the demo model, 32 concurrent greedy
// requests with different prompts and lengths — more requests than state slots, prompts longer than
// the token budget, so requests wait, prompts are cut into chunks and decodes of many sequences share
// each forward call — each return exactly the ids `linfer generate --greedy` produces for that prompt
// alone, in another process.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <thread>

#include "../cli_run.h"
#include "decode_cases.h"
#include "serve_harness.h"

using namespace serve_test;
using decode_test::join;
using decode_test::parse_id_line;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> golden_models() {
  std::vector<std::string> dirs;
  for (const auto& e : fs::directory_iterator("tests/golden"))
    if (fs::exists(e.path() / "config.json"))
      dirs.push_back(e.path().string());
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

struct Case {
  nlohmann::json prompt;        // ids or text, as sent
  std::string generate_args;    // the same prompt for `linfer generate`
  int max_tokens = 0;
  std::vector<int32_t> expected, got;
  int status = 0;
};

// Sends every case at once (one thread each) and fills in `got`.
void run_concurrently(int port, std::vector<Case>& cases, bool ignore_eos) {
  std::vector<std::thread> threads;
  for (auto& c : cases) {
    threads.emplace_back([&c, port, ignore_eos] {
      auto r = post(port, "/v1/completions",
                    {{"prompt", c.prompt}, {"max_tokens", c.max_tokens}, {"temperature", 0}, {"ignore_eos", ignore_eos},
                     {"return_token_ids", true}});
      c.status = r.status;
      auto j = r.json();
      if (r.status == 200) c.got = j["choices"][0]["token_ids"].get<std::vector<int32_t>>();
    });
  }
  for (auto& t : threads) t.join();
}

}  // namespace

class ServeBatching : public ::testing::TestWithParam<std::string> {};

TEST_P(ServeBatching, ConcurrentGreedyEqualsGenerateAlone) {
  const std::string model = GetParam();
  std::mt19937 rng(std::hash<std::string>{}(model) & 0xffff);
  std::vector<Case> cases(32);
  for (auto& c : cases) {
    std::vector<int32_t> ids;
    const int len = 1 + int(rng() % 150);
    for (int i = 0; i < len; ++i) ids.push_back(3 + int(rng() % 250));  // golden vocabularies are 256
    c.prompt = ids;
    c.max_tokens = 1 + int(rng() % 24);
    auto r = run_linfer(fmt::format("--threads 1 generate --model {} --prompt-ids {} -n {} --greedy --print-ids", model,
                                    join(ids), c.max_tokens), "2>/dev/null");
    ASSERT_EQ(r.status, 0) << r.out;
    c.expected = parse_id_line(r.out);
    ASSERT_EQ(int(c.expected.size()), c.max_tokens);
  }
  ServeProcess server;
  ASSERT_TRUE(server.start(fmt::format("--threads 2 serve --model {} --max-seqs 8 --max-batch-tokens 64 "
                                       "--max-context 512", model))) << server.log();
  run_concurrently(server.port(), cases, /*ignore_eos=*/true);
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(cases[i].status, 200) << "request " << i;
    EXPECT_EQ(cases[i].got, cases[i].expected) << "request " << i << ", prompt of " << cases[i].prompt.size() << " tokens";
  }
  // The requests did share forward calls: fewer iterations than tokens computed.
  const std::string m = http(server.port(), "GET", "/metrics").body;
  EXPECT_LT(*metric(m, "linfer_iterations_total"), *metric(m, "linfer_batch_sequences_total") / 2);
  // Every iteration that ran the model is timed, its forward within it.
  EXPECT_EQ(*metric(m, "linfer_iteration_seconds_count"), *metric(m, "linfer_iterations_total"));
  EXPECT_EQ(*metric(m, "linfer_forward_seconds_count"), *metric(m, "linfer_iterations_total"));
  EXPECT_GT(*metric(m, "linfer_forward_seconds_sum"), 0.0);
  EXPECT_LE(*metric(m, "linfer_forward_seconds_sum"), *metric(m, "linfer_iteration_seconds_sum"));
  EXPECT_EQ(server.stop(), 0) << server.log();
}

INSTANTIATE_TEST_SUITE_P(Golden, ServeBatching, ::testing::ValuesIn(golden_models()),
                         [](const auto& info) { return fs::path(info.param).filename().string(); });

// The demo model with text prompts (its tokenizer; generation stops at EOS as in `linfer generate`).
TEST(ServeBatchingDemo, TextPromptsEqualGenerateAlone) {
  const std::vector<std::string> words = {"ROMEO", "JULIET", "love", "night", "the", "king", "O", "sweet",
                                          "death", "my", "lord", "what", "fair", "Verona", "sword", "heaven"};
  std::mt19937 rng(17);
  std::vector<Case> cases(32);
  for (auto& c : cases) {
    std::string text;
    const int n = 1 + int(rng() % 40);
    for (int i = 0; i < n; ++i) text += (i ? " " : "") + words[rng() % words.size()];
    c.prompt = text;
    c.max_tokens = 1 + int(rng() % 20);
    auto r = run_linfer(fmt::format("--threads 1 generate --prompt '{}' -n {} --greedy --print-ids", text, c.max_tokens),
                        "2>/dev/null");
    ASSERT_EQ(r.status, 0) << r.out;
    c.expected = parse_id_line(r.out);
  }
  ServeProcess server;
  ASSERT_TRUE(server.start("--threads 2 serve --max-seqs 6 --max-batch-tokens 32 --max-context 512")) << server.log();
  run_concurrently(server.port(), cases, /*ignore_eos=*/false);
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(cases[i].status, 200) << "request " << i;
    // generate leaves out a final EOS that the server reports (it counts as a generated token)
    std::vector<int32_t> got = cases[i].got;
    if (got.size() > cases[i].expected.size()) got.resize(cases[i].expected.size());
    EXPECT_EQ(got, cases[i].expected) << "request " << i << ": " << cases[i].prompt;
  }
  EXPECT_EQ(server.stop(), 0) << server.log();
}
