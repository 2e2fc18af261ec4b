// /v1/state/save and /v1/state/restore across two server processes: a conversation saved by one
// server, restored by a fresh one, continues with exactly the ids of an uninterrupted run (`linfer
// generate` on the whole conversation), and the restored state is what the continuation computed
// from (cached_tokens = the saved tokens). Names cannot leave the directory; corrupted files and
// states of another model are refused; the server stays healthy.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "../cli_run.h"
#include "decode_cases.h"
#include "linfer/tokenizer.h"
#include "serve_harness.h"

using namespace serve_test;
using decode_test::join;
using decode_test::parse_id_line;
namespace fs = std::filesystem;
using nlohmann::json;

TEST(ServeState, SaveRestoreContinueEqualsUninterrupted) {
  const fs::path dir = fs::temp_directory_path() / fmt::format("linfer_serve_states_{}", ::getpid());
  fs::remove_all(dir);
  auto tok = linfer::Tokenizer::load("models/demo");
  const auto prompt = tok->encode("ROMEO:\nWhat light through yonder window breaks?\n");

  std::vector<int32_t> conversation;
  {
    ServeProcess a;
    ASSERT_TRUE(a.start(fmt::format("--threads 2 serve --max-context 1024 --state-dir {}", dir.string()))) << a.log();
    auto turn1 = post(a.port(), "/v1/completions", {{"prompt", prompt}, {"max_tokens", 20}, {"temperature", 0},
                                                     {"ignore_eos", true}, {"return_token_ids", true}});
    ASSERT_EQ(turn1.status, 200) << turn1.body;
    conversation = prompt;
    for (const auto& id : turn1.json()["choices"][0]["token_ids"]) conversation.push_back(id.get<int32_t>());
    auto saved = post(a.port(), "/v1/state/save", {{"name", "conv1"}, {"prompt", conversation}});
    ASSERT_EQ(saved.status, 200) << saved.body;
    EXPECT_EQ(saved.json()["n_tokens"], conversation.size());
    EXPECT_TRUE(fs::exists(dir / "conv1.lstate"));
    EXPECT_TRUE(fs::exists(dir / "conv1.tokens.json"));
    EXPECT_EQ(a.stop(), 0);
  }

  const auto more = tok->encode("JULIET:\nIt is the east");
  std::vector<int32_t> turn2_prompt = conversation;
  turn2_prompt.insert(turn2_prompt.end(), more.begin(), more.end());
  auto ref = run_linfer(fmt::format("--threads 1 generate --prompt-ids {} -n 16 --greedy --print-ids", join(turn2_prompt)),
                        "2>/dev/null");
  ASSERT_EQ(ref.status, 0);
  const auto expected = parse_id_line(ref.out);

  ServeProcess b;
  ASSERT_TRUE(b.start(fmt::format("--threads 2 serve --max-context 1024 --state-dir {}", dir.string()))) << b.log();
  auto restored = post(b.port(), "/v1/state/restore", {{"name", "conv1"}});
  ASSERT_EQ(restored.status, 200) << restored.body;
  EXPECT_EQ(restored.json()["n_tokens"], conversation.size());
  auto turn2 = post(b.port(), "/v1/completions", {{"prompt", turn2_prompt}, {"max_tokens", 16}, {"temperature", 0},
                                                   {"ignore_eos", true}, {"return_token_ids", true}});
  ASSERT_EQ(turn2.status, 200) << turn2.body;
  EXPECT_EQ(turn2.json()["usage"]["prompt_tokens_details"]["cached_tokens"], conversation.size());
  EXPECT_EQ(turn2.json()["choices"][0]["token_ids"].get<std::vector<int32_t>>(), expected);

  // Names that would leave the directory, or do not exist.
  for (const char* name : {"../conv1", "a/b", ".hidden", "", "x\\y"})
    EXPECT_EQ(post(b.port(), "/v1/state/restore", {{"name", name}}).status, 400) << name;
  EXPECT_EQ(post(b.port(), "/v1/state/restore", {{"name", 5}}).status, 400);
  EXPECT_EQ(post(b.port(), "/v1/state/restore", {{"name", "nope"}}).status, 404);
  // A corrupted copy: refused with the reader's reason.
  fs::copy_file(dir / "conv1.tokens.json", dir / "bad.tokens.json");
  fs::copy_file(dir / "conv1.lstate", dir / "bad.lstate");
  {
    std::fstream f(dir / "bad.lstate", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(std::streamoff(fs::file_size(dir / "bad.lstate") / 2));
    f.put('\x5a');
  }
  auto bad = post(b.port(), "/v1/state/restore", {{"name", "bad"}});
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_EQ(http(b.port(), "GET", "/health").status, 200);
  EXPECT_EQ(b.stop(), 0);

  // Another model refuses the demo model's state.
  ServeProcess other;
  ASSERT_TRUE(other.start(fmt::format("--threads 2 serve --model tests/golden/mamba2_a --max-context 512 --state-dir {}",
                                      dir.string()))) << other.log();
  auto foreign = post(other.port(), "/v1/state/restore", {{"name", "conv1"}});
  EXPECT_EQ(foreign.status, 400) << foreign.body;
  EXPECT_EQ(other.stop(), 0);
  fs::remove_all(dir);
}
