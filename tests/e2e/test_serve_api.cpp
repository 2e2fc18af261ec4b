// linfer serve on the demo model, through HTTP on loopback: the SSE format (completions and chat),
// streamed output equal to the whole response, n > 1 equal to separate seeded requests, stop
// strings, logprobs against `linfer logits`, tokenize / detokenize, chat rendered with a template
// (expected prompt written out by hand) and answering what /v1/completions answers for that prompt.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "../cli_run.h"
#include "io/npy.h"
#include "linfer/tokenizer.h"
#include "serve_harness.h"

using namespace serve_test;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// One server per test process (ctest runs each test in its own); killed at exit if still running.
ServeProcess& demo_server() {
  static ServeProcess s;
  static const bool started = [] {
    const bool ok = s.start("--threads 2 serve --max-seqs 4 --max-batch-tokens 64 --max-context 512");
    if (!ok) ADD_FAILURE() << "the server did not start: " << s.log();
    return ok;
  }();
  (void)started;
  return s;
}
int port() { return demo_server().port(); }

const linfer::Tokenizer& tok() {
  static auto t = linfer::Tokenizer::load("models/demo");
  return *t;
}

}  // namespace

TEST(ServeApi, CompletionStreamFormatAndEqualsTheWholeResponse) {
  const json req = {{"prompt", "ROMEO:\nWhat light"}, {"max_tokens", 24}, {"temperature", 0}, {"return_token_ids", true}};
  auto whole = post(port(), "/v1/completions", req);
  ASSERT_EQ(whole.status, 200) << whole.body;
  const json w = whole.json();
  EXPECT_EQ(w["object"], "text_completion");
  EXPECT_EQ(w["model"], "demo");
  EXPECT_EQ(w["choices"].size(), 1u);
  const auto ids = w["choices"][0]["token_ids"].get<std::vector<int32_t>>();
  EXPECT_EQ(w["usage"]["completion_tokens"], ids.size());
  EXPECT_EQ(w["usage"]["prompt_tokens"], tok().encode("ROMEO:\nWhat light").size());
  EXPECT_EQ(w["usage"]["total_tokens"], w["usage"]["prompt_tokens"].get<int>() + int(ids.size()));
  EXPECT_EQ(w["prompt_token_ids"].get<std::vector<int32_t>>(), tok().encode("ROMEO:\nWhat light"));
  EXPECT_EQ(w["choices"][0]["text"], tok().decode(ids, true));

  json sreq = req;
  sreq["stream"] = true;
  sreq["stream_options"] = {{"include_usage", true}};
  auto s = post(port(), "/v1/completions", sreq);
  ASSERT_EQ(s.status, 200);
  EXPECT_EQ(s.header("content-type"), "text/event-stream");
  EXPECT_EQ(s.header("transfer-encoding"), "chunked");
  const auto events = s.events();
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.back(), "[DONE]");
  // Every event but [DONE] is a JSON chunk; the one before [DONE] carries usage and no choices.
  std::string text;
  std::vector<int32_t> streamed;
  int finishes = 0;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    const json c = json::parse(events[i]);
    EXPECT_EQ(c["object"], "text_completion");
    EXPECT_EQ(c["id"], json::parse(events[0])["id"]);
    if (i + 2 == events.size()) {
      EXPECT_TRUE(c["choices"].empty());
      EXPECT_EQ(c["usage"], w["usage"]);
      continue;
    }
    ASSERT_EQ(c["choices"].size(), 1u);
    text += c["choices"][0]["text"].get<std::string>();
    const auto part = c["choices"][0]["token_ids"].get<std::vector<int32_t>>();
    streamed.insert(streamed.end(), part.begin(), part.end());
    if (!c["choices"][0]["finish_reason"].is_null()) ++finishes;
  }
  EXPECT_EQ(finishes, 1);
  EXPECT_EQ(text, w["choices"][0]["text"]);
  EXPECT_EQ(streamed, ids);
}

TEST(ServeApi, NChoicesEqualSeparateSeededRequests) {
  json req = {{"prompt", "JULIET:"}, {"max_tokens", 12}, {"temperature", 0.9}, {"top_k", 40}, {"seed", 7}, {"n", 3},
              {"ignore_eos", true}};
  auto r = post(port(), "/v1/completions", req);
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = r.json();
  ASSERT_EQ(j["choices"].size(), 3u);
  EXPECT_EQ(j["usage"]["completion_tokens"], 36);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(j["choices"][i]["index"], i);
    json one = req;
    one["n"] = 1;
    one["seed"] = 7 + i;  // choice i samples with seed + i
    auto single = post(port(), "/v1/completions", one);
    EXPECT_EQ(single.json()["choices"][0]["text"], j["choices"][i]["text"]) << "choice " << i;
  }
  EXPECT_NE(j["choices"][0]["text"], j["choices"][1]["text"]);
  // Greedy choices are all the same.
  auto g = post(port(), "/v1/completions", {{"prompt", "JULIET:"}, {"max_tokens", 8}, {"temperature", 0}, {"n", 2}});
  EXPECT_EQ(g.json()["choices"][0]["text"], g.json()["choices"][1]["text"]);
}

TEST(ServeApi, StopStrings) {
  const json base = {{"prompt", "ROMEO:\nSpeak"}, {"max_tokens", 40}, {"temperature", 0}, {"ignore_eos", true}};
  const std::string full = post(port(), "/v1/completions", base).json()["choices"][0]["text"];
  ASSERT_GT(full.size(), 30u);
  const std::string stop = full.substr(full.size() / 2, 4);
  for (bool stream : {false, true}) {
    json req = base;
    req["stop"] = json::array({"@@@", stop});
    req["stream"] = stream;
    auto r = post(port(), "/v1/completions", req);
    ASSERT_EQ(r.status, 200);
    std::string text, finish;
    if (stream) {
      for (const auto& e : r.events()) {
        if (e == "[DONE]") continue;
        const json c = json::parse(e);
        text += c["choices"][0]["text"].get<std::string>();
        if (!c["choices"][0]["finish_reason"].is_null()) finish = c["choices"][0]["finish_reason"];
      }
    } else {
      text = r.json()["choices"][0]["text"];
      finish = r.json()["choices"][0]["finish_reason"];
    }
    EXPECT_EQ(text, full.substr(0, full.find(stop))) << (stream ? "stream" : "whole");
    EXPECT_EQ(finish, "stop");
  }
}

TEST(ServeApi, LogprobsAreTheModelsLogSoftmax) {
  const auto prompt = tok().encode("KING RICHARD:");
  const fs::path npy = fs::temp_directory_path() / fmt::format("linfer_serve_logits_{}.npy", ::getpid());
  std::string ids;
  for (size_t i = 0; i < prompt.size(); ++i) ids += (i ? "," : "") + std::to_string(prompt[i]);
  ASSERT_EQ(run_linfer(fmt::format("logits --model models/demo --prompt-ids {} --out {}", ids, npy.string()),
                       "2>/dev/null").status, 0);
  const linfer::Tensor logits = linfer::read_npy(npy.string());
  const int64_t V = logits.shape()[1];
  const float* last = logits.f32() + (logits.shape()[0] - 1) * V;
  double mx = -1e30, sum = 0;
  for (int64_t i = 0; i < V; ++i) mx = std::max(mx, double(last[i]));
  for (int64_t i = 0; i < V; ++i) sum += std::exp(double(last[i]) - mx);
  const double lse = mx + std::log(sum);
  std::vector<int64_t> order(V);
  for (int64_t i = 0; i < V; ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return last[a] > last[b]; });

  auto r = post(port(), "/v1/completions", {{"prompt", prompt}, {"max_tokens", 1}, {"temperature", 0}, {"logprobs", 5},
                                            {"return_token_ids", true}});
  ASSERT_EQ(r.status, 200) << r.body;
  const json lp = r.json()["choices"][0]["logprobs"];
  EXPECT_EQ(r.json()["choices"][0]["token_ids"][0], order[0]);
  EXPECT_NEAR(lp["token_logprobs"][0].get<double>(), last[order[0]] - lse, 1e-4);
  EXPECT_EQ(lp["tokens"][0], tok().decode(std::vector<int32_t>{int32_t(order[0])}));
  ASSERT_EQ(lp["top_logprobs"][0].size(), 5u);
  for (int k = 0; k < 5; ++k) {
    const std::string t = tok().decode(std::vector<int32_t>{int32_t(order[k])});
    EXPECT_NEAR(lp["top_logprobs"][0][t].get<double>(), last[order[k]] - lse, 1e-4) << k;
  }
  fs::remove(npy);
}

TEST(ServeApi, TokenizeDetokenizeModelsHealth) {
  auto t = post(port(), "/tokenize", {{"prompt", "Good night, good night!"}});
  ASSERT_EQ(t.status, 200);
  EXPECT_EQ(t.json()["tokens"].get<std::vector<int32_t>>(), tok().encode("Good night, good night!"));
  EXPECT_EQ(t.json()["count"], t.json()["tokens"].size());
  auto d = post(port(), "/detokenize", {{"tokens", t.json()["tokens"]}});
  EXPECT_EQ(d.json()["prompt"], "Good night, good night!");
  auto m = http(port(), "GET", "/v1/models");
  EXPECT_EQ(m.json()["data"][0]["id"], "demo");
  EXPECT_EQ(m.json()["data"][0]["max_model_len"], 512);
  auto h = http(port(), "GET", "/health");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.json()["status"], "ok");
}

// A model folder with a chat template: the demo model's files plus a template of our own.
TEST(ServeApi, ChatRendersTheTemplateAndStreams) {
  const fs::path dir = fs::temp_directory_path() / fmt::format("linfer_serve_chat_{}", ::getpid());
  fs::create_directories(dir);
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"})
    fs::create_symlink(fs::absolute(fs::path("models/demo") / f), dir / f);
  std::ofstream(dir / "chat_template.jinja")
      << "{%- for m in messages %}<|im_start|>{{ m.role }}"
         "{% for tc in m.tool_calls or [] %} call {{ tc.function.name }}({{ tc.function.arguments.city }}){% endfor %}"
         "{{ '\\n' }}{{ m.content or '' }}<|im_end|>\n{% endfor %}"
         "{%- if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
  ServeProcess server;
  ASSERT_TRUE(server.start(fmt::format("--threads 2 serve --model {} --max-context 512", dir.string()))) << server.log();
  const json messages = json::array({{{"role", "system"}, {"content", "You are a poet."}},
                                     {{"role", "user"}, {"content", json::array({{{"type", "text"}, {"text", "Write"}},
                                                                                 {{"type", "text"}, {"text", "of night."}}})}}});
  const std::string rendered =
      "<|im_start|>system\nYou are a poet.<|im_end|>\n<|im_start|>user\nWrite\nof night.<|im_end|>\n<|im_start|>assistant\n";
  const std::string name = dir.filename().string();
  auto r = post(server.port(), "/v1/chat/completions",
                {{"model", name}, {"messages", messages}, {"max_tokens", 16}, {"temperature", 0}, {"return_token_ids", true}});
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = r.json();
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["prompt_token_ids"].get<std::vector<int32_t>>(), tok().encode(rendered));
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  auto c = post(server.port(), "/v1/completions", {{"prompt", rendered}, {"max_tokens", 16}, {"temperature", 0}});
  EXPECT_EQ(j["choices"][0]["message"]["content"], c.json()["choices"][0]["text"]);

  auto s = post(server.port(), "/v1/chat/completions",
                {{"messages", messages}, {"max_tokens", 16}, {"temperature", 0}, {"stream", true}});
  const auto events = s.events();
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.back(), "[DONE]");
  const json first = json::parse(events[0]);
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  std::string content;
  for (size_t i = 1; i + 1 < events.size(); ++i) {
    const json d = json::parse(events[i])["choices"][0];
    if (d["delta"].contains("content")) content += d["delta"]["content"].get<std::string>();
    if (i + 2 == events.size()) EXPECT_FALSE(d["finish_reason"].is_null());
    else EXPECT_TRUE(d["finish_reason"].is_null());
  }
  EXPECT_EQ(content, j["choices"][0]["message"]["content"]);
  // Tool calls (arguments sent as a JSON string reach the template as an object) and tool messages.
  const json tool_chat = json::array(
      {{{"role", "user"}, {"content", "Weather?"}},
       {{"role", "assistant"}, {"content", nullptr},
        {"tool_calls", json::array({{{"id", "c1"}, {"type", "function"},
                                     {"function", {{"name", "get_weather"}, {"arguments", "{\"city\": \"Verona\"}"}}}}})}},
       {{"role", "tool"}, {"tool_call_id", "c1"}, {"content", "sunny"}}});
  auto t = post(server.port(), "/tokenize", {{"messages", tool_chat}});
  ASSERT_EQ(t.status, 200) << t.body;
  EXPECT_EQ(t.json()["tokens"].get<std::vector<int32_t>>(),
            tok().encode("<|im_start|>user\nWeather?<|im_end|>\n<|im_start|>assistant call get_weather(Verona)\n<|im_end|>\n"
                         "<|im_start|>tool\nsunny<|im_end|>\n<|im_start|>assistant\n"));
  // Non-text parts: 400.
  auto bad = post(server.port(), "/v1/chat/completions",
                  {{"messages", json::array({{{"role", "user"}, {"content", json::array({{{"type", "image_url"}}})}}})}});
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(server.stop(), 0);
  fs::remove_all(dir);
  // The demo model itself has no template: a clear 400.
  auto none = post(port(), "/v1/chat/completions", {{"messages", messages}});
  EXPECT_EQ(none.status, 400);
  EXPECT_NE(none.json()["error"]["message"].get<std::string>().find("chat template"), std::string::npos);
}

TEST(ServeApi, StopsWithExitCodeZero) { EXPECT_EQ(demo_server().stop(), 0) << demo_server().log(); }
