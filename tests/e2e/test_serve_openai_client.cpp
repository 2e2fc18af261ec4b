// linfer serve driven by the official `openai` npm client (tests/server/js/openai_client.mjs): what
// an application sees — completions, streaming with usage, token-id prompts, n > 1, stop strings,
// errors, and chat with and without a chat template, behind an API key.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "../cli_run.h"
#include "serve_harness.h"

using namespace serve_test;
namespace fs = std::filesystem;

namespace {

const char* kClientDir = "tests/server/js";

void run_client(const ServeProcess& server, const std::string& extra) {
  ASSERT_TRUE(fs::exists(fs::path(kClientDir) / "node_modules/openai"))
      << "the openai client is not installed: run `make node-deps` (make test does)";
  const CliRun r = run_shell(fmt::format("node {}/openai_client.mjs --base-url http://127.0.0.1:{}/v1 {} 2>&1",
                                         kClientDir, server.port(), extra));
  EXPECT_EQ(r.status, 0) << r.out << "\n--- server log ---\n" << server.log();
  EXPECT_NE(r.out.find("checks passed"), std::string::npos) << r.out;
}

TEST(ServeOpenAiClient, DemoModelWithoutChatTemplate) {
  ServeProcess server;
  ASSERT_TRUE(server.start("--threads 2 serve --max-context 512")) << server.log();
  run_client(server, "");
}

TEST(ServeOpenAiClient, ChatTemplateAndApiKey) {
  const fs::path dir = fs::temp_directory_path() / fmt::format("linfer_openai_chat_{}", ::getpid());
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"})
    fs::create_symlink(fs::absolute(fs::path("models/demo") / f), dir / f);
  std::ofstream(dir / "chat_template.jinja")
      << "{%- for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
         "{%- if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
  ServeProcess server;
  ASSERT_TRUE(server.start(fmt::format("--threads 2 serve --model {} --max-context 512 --api-key sk-test",
                                       dir.string())))
      << server.log();
  run_client(server, "--api-key sk-test --chat");
  fs::remove_all(dir);
}

}  // namespace
