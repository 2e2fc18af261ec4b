// `linfer serve` with the model on a GPU (docs/gpu.md), on the golden kimi_linear / qwen3_next / mamba2
// fixtures, each prompt of the fixture's cases.json (transformers' greedy ids beside it):
//  - the reference: an all-CPU single node; its greedy ids equal transformers';
//  - a GPU prefill node (`serve --role prefill --device cuda`) serving a CPU decode node: every prompt
//    over the threshold is prefilled on the GPU, streamed layer by layer, decoded on the CPU, and the
//    ids equal the reference exactly (float32 state); and the reverse, a CPU prefill node serving a GPU
//    decode node (`--role decode --device cuda`);
//  - `serve --device cuda` answering the same completions, sent at once so they decode as one batch in
//    the device's state slots: the same ids.
// Skips, saying why, where `linfer generate --device cuda` cannot run (a build without CUDA, no GPU).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "../cli_run.h"
#include "serve_harness.h"

using namespace serve_test;
namespace fs = std::filesystem;

namespace {

const std::string kSource = LINFER_SOURCE_DIR;
constexpr int kThreshold = 16;  // prompts longer than this go to the prefill node

struct Case {
  std::string name;
  std::vector<int32_t> prompt, greedy;  // greedy: transformers' ids (cases.json)
};

std::vector<Case> read_cases(const std::string& model) {
  std::ifstream f(fs::path(model) / "cases.json");
  const auto j = nlohmann::json::parse(f);
  std::vector<Case> out;
  for (const auto& c : j.at("cases"))
    out.push_back({c.at("name"), c.at("prompt_ids").get<std::vector<int32_t>>(),
                   c.at("greedy_ids").get<std::vector<int32_t>>()});
  return out;
}

struct Answer {
  int status = 0;
  std::vector<int32_t> ids;
  int64_t cached = -1;
  std::string body;
};

Answer complete(int port, const Case& c) {
  HttpResponse r = post(port, "/v1/completions",
                        {{"prompt", c.prompt}, {"max_tokens", c.greedy.size()}, {"temperature", 0},
                         {"ignore_eos", true}, {"return_token_ids", true}});
  Answer a{r.status, {}, -1, r.body};
  if (r.status == 200) {
    auto j = r.json();
    a.ids = j["choices"][0]["token_ids"].get<std::vector<int32_t>>();
    a.cached = j["usage"]["prompt_tokens_details"]["cached_tokens"].get<int64_t>();
  }
  return a;
}

// Every case at once (one thread each), so the server batches them.
std::vector<Answer> complete_all(int port, const std::vector<Case>& cases) {
  std::vector<Answer> out(cases.size());
  std::vector<std::thread> th;
  for (size_t i = 0; i < cases.size(); ++i) th.emplace_back([&, i] { out[i] = complete(port, cases[i]); });
  for (auto& t : th) t.join();
  return out;
}

// Each case's second turn: its prompt and answer, for as many tokens again. The server's prefix cache
// holds the first turn's state up to the answer's last token (never fed), so all but that is cached.
std::vector<Case> second_turns(const std::vector<Case>& cases, const std::vector<std::vector<int32_t>>& answers) {
  std::vector<Case> out;
  for (size_t i = 0; i < cases.size(); ++i) {
    Case c{cases[i].name + " turn 2", cases[i].prompt, cases[i].greedy};
    c.prompt.insert(c.prompt.end(), answers[i].begin(), answers[i].end());
    out.push_back(std::move(c));
  }
  return out;
}

double metric_of(int port, const std::string& name) {
  return metric(http(port, "GET", "/metrics").body, name).value_or(-1);
}

}  // namespace

class ServeCuda : public ::testing::TestWithParam<std::string> {};

TEST_P(ServeCuda, DisaggregatedAcrossDevicesAndGpuServeGiveTheCpuTokens) {
  const std::string model = kSource + "/tests/golden/" + GetParam();
  const CliRun probe = run_linfer(fmt::format("generate --model {} --device cuda --prompt-ids 1 -n 1 --greedy", model),
                                  "2>&1");
  if (probe.status != 0)
    GTEST_SKIP() << "the model does not run on --device cuda here (" << probe.out
                 << "); run on a GPU machine: tools/gpu_check.sh";
  const std::vector<Case> cases = read_cases(model);

  std::vector<std::vector<int32_t>> reference, reference2;
  std::vector<Case> turns2;
  {
    ServeProcess cpu;
    ASSERT_TRUE(cpu.start(fmt::format("--threads 2 serve --model {}", model))) << cpu.log();
    for (const Case& c : cases) {
      const Answer a = complete(cpu.port(), c);
      ASSERT_EQ(a.status, 200) << a.body;
      EXPECT_EQ(a.ids, c.greedy) << c.name << ": the CPU node differs from transformers";
      reference.push_back(a.ids);
    }
    turns2 = second_turns(cases, reference);
    for (const Case& c : turns2) {
      const Answer a = complete(cpu.port(), c);
      ASSERT_EQ(a.status, 200) << a.body;
      reference2.push_back(a.ids);
    }
  }

  // A prefill node and a decode node on different devices: the ids of the all-CPU node, every prompt over
  // the threshold prefilled remotely.
  auto disaggregated = [&](const std::string& prefill_device, const std::string& decode_device) {
    SCOPED_TRACE("prefill on " + prefill_device + ", decode on " + decode_device);
    ServeProcess prefill;
    ASSERT_TRUE(prefill.start(fmt::format("--threads 2 serve --model {} --device {} --role prefill", model,
                                          prefill_device))) << prefill.log();
    ServeProcess decode;
    ASSERT_TRUE(decode.start(fmt::format("--threads 2 serve --model {} --device {} --role decode --prefill-url "
                                         "http://127.0.0.1:{} --prefill-threshold {}", model, decode_device,
                                         prefill.port(), kThreshold)))
        << decode.log();
    const std::vector<Answer> remote = complete_all(decode.port(), cases);
    int n_remote = 0;
    for (size_t i = 0; i < cases.size(); ++i) {
      ASSERT_EQ(remote[i].status, 200) << remote[i].body;
      EXPECT_EQ(remote[i].ids, reference[i]) << cases[i].name << ": differs from all-CPU";
      const int64_t P = int64_t(cases[i].prompt.size());
      if (P > kThreshold) {
        ++n_remote;
        EXPECT_EQ(remote[i].cached, P - 1) << cases[i].name << " was not prefilled remotely\n" << decode.log();
      }
    }
    ASSERT_GT(n_remote, 0);
    EXPECT_EQ(metric_of(decode.port(), "linfer_remote_prefill_requests_total"), n_remote);
    EXPECT_EQ(metric_of(prefill.port(), "linfer_prefill_requests_total{outcome=\"ok\"}"), n_remote) << prefill.log();
    EXPECT_NE((prefill_device == "cuda" ? prefill : decode).log().find("on cuda"), std::string::npos);
    EXPECT_EQ(decode.stop(), 0);
    EXPECT_EQ(prefill.stop(), 0);
  };
  disaggregated("cuda", "cpu");
  disaggregated("cpu", "cuda");

  ServeProcess gpu;
  ASSERT_TRUE(gpu.start(fmt::format("--threads 2 serve --model {} --device cuda --max-seqs 4", model))) << gpu.log();
  const std::vector<Answer> local = complete_all(gpu.port(), cases);
  for (size_t i = 0; i < cases.size(); ++i) {
    ASSERT_EQ(local[i].status, 200) << local[i].body;
    EXPECT_EQ(local[i].ids, reference[i]) << cases[i].name << ": serve --device cuda differs from all-CPU";
  }
  // Second turns resume from the first turns' states, kept in the device pool's spare slots.
  const std::vector<Answer> local2 = complete_all(gpu.port(), turns2);
  for (size_t i = 0; i < turns2.size(); ++i) {
    ASSERT_EQ(local2[i].status, 200) << local2[i].body;
    EXPECT_EQ(local2[i].ids, reference2[i]) << turns2[i].name << ": serve --device cuda differs from all-CPU";
    EXPECT_EQ(local2[i].cached, int64_t(turns2[i].prompt.size()) - 1) << turns2[i].name << "\n" << gpu.log();
  }
  EXPECT_GT(metric_of(gpu.port(), "linfer_prefix_cache_slot_entries"), 0);
  EXPECT_EQ(gpu.stop(), 0);
}

INSTANTIATE_TEST_SUITE_P(Golden, ServeCuda,
                         ::testing::Values("kimi_linear_a", "kimi_linear_b", "qwen3_next_a", "qwen3_next_b", "mamba2_a",
                                           "mamba2_b"),
                         [](const auto& info) { return info.param; });
