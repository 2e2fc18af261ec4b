// linfer serve under bad input and pressure: every malformed or out-of-range request gets its 4xx
// with an OpenAI-style error body and the server stays healthy; a client that hangs up frees its
// slot (seen in /metrics); a full queue answers 429 with Retry-After; the API key guards /v1/*;
// SIGTERM lets short requests finish, cancels long ones and exits 0.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <atomic>
#include <random>
#include <thread>

#include "serve_harness.h"

using namespace serve_test;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// A request on a socket we keep: read until some SSE data arrived, then hang up or keep reading.
struct OpenStream {
  int fd = -1;
  std::string raw;
  OpenStream(int port, const json& body) {
    fd = connect_to(port);
    send_all(fd, request_text("POST", "/v1/completions", body.dump(), {}));
  }
  bool read_until(const std::string& needle, std::chrono::seconds timeout = std::chrono::seconds(30)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    char buf[4096];
    while (raw.find(needle) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return raw.find(needle) != std::string::npos;
      raw.append(buf, size_t(n));
    }
    return raw.find(needle) != std::string::npos;
  }
  void read_to_end() {
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) raw.append(buf, size_t(n));
  }
  void hang_up() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  ~OpenStream() { hang_up(); }
};

double metric_now(int port, const std::string& name) {
  return metric(http(port, "GET", "/metrics").body, name).value_or(-1);
}

// Polls a metric until it equals `want` (the engine publishes gauges once per iteration).
bool metric_becomes(int port, const std::string& name, double want, std::chrono::seconds timeout = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (metric_now(port, name) == want) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

// Long enough to still be running whenever the test looks, on any machine (servers below use --max-context 131072):
// the demo model decodes 8,000 tokens in under 3 s on a Zen 5 core, where CI once saw such a stream end before
// the SIGTERM deadline it was meant to outlast.
const json kLong = {{"prompt", "ROMEO:"}, {"max_tokens", 120000}, {"temperature", 0}, {"ignore_eos", true}, {"stream", true}};

}  // namespace

TEST(ServeLimits, BadInputGetsItsStatusAndTheServerStaysHealthy) {
  ServeProcess s;
  ASSERT_TRUE(s.start("--threads 2 serve --max-seqs 2 --max-context 512 --max-body-bytes 65536")) << s.log();
  const int p = s.port();
  const json ok = {{"prompt", "Hello"}, {"max_tokens", 4}};
  auto with = [&](const char* key, json v) {
    json j = ok;
    j[key] = std::move(v);
    return j.dump();
  };
  struct Bad {
    const char* what;
    std::string method, path, body;
    int status;
  };
  const std::vector<Bad> cases = {
      {"malformed JSON", "POST", "/v1/completions", "{\"prompt\": \"x\",", 400},
      {"not an object", "POST", "/v1/completions", "[1, 2, 3]", 400},
      {"empty body", "POST", "/v1/completions", "", 400},
      {"no prompt", "POST", "/v1/completions", json{{"max_tokens", 3}}.dump(), 400},
      {"max_tokens a string", "POST", "/v1/completions", with("max_tokens", "ten"), 400},
      {"max_tokens a fraction", "POST", "/v1/completions", with("max_tokens", 2.5), 400},
      {"temperature a string", "POST", "/v1/completions", with("temperature", "hot"), 400},
      {"stream not a bool", "POST", "/v1/completions", with("stream", "yes"), 400},
      {"stop a number", "POST", "/v1/completions", with("stop", 5), 400},
      {"prompt an object", "POST", "/v1/completions", with("prompt", json::object()), 400},
      {"prompt a mixed array", "POST", "/v1/completions", with("prompt", json::array({1, "a"})), 400},
      {"token id = vocab", "POST", "/v1/completions", with("prompt", json::array({1, 4098})), 400},
      {"negative token id", "POST", "/v1/completions", with("prompt", json::array({1, -3})), 400},
      {"empty text prompt", "POST", "/v1/completions", with("prompt", ""), 400},
      {"empty id prompt", "POST", "/v1/completions", with("prompt", json::array()), 400},
      {"max_tokens negative", "POST", "/v1/completions", with("max_tokens", -1), 400},
      {"max_tokens zero", "POST", "/v1/completions", with("max_tokens", 0), 400},
      {"max_tokens huge", "POST", "/v1/completions", with("max_tokens", 1000000000000LL), 400},
      {"max_tokens past the context", "POST", "/v1/completions", with("max_tokens", 512), 400},
      {"prompt over --max-context", "POST", "/v1/completions", with("prompt", std::vector<int>(600, 5)), 400},
      {"min_tokens > max_tokens", "POST", "/v1/completions", with("min_tokens", 5), 400},
      {"n over --max-seqs", "POST", "/v1/completions", with("n", 3), 400},
      {"n zero", "POST", "/v1/completions", with("n", 0), 400},
      {"logprobs too many", "POST", "/v1/completions", with("logprobs", 50), 400},
      {"top_p zero", "POST", "/v1/completions", with("top_p", 0), 400},
      {"temperature negative", "POST", "/v1/completions", with("temperature", -1), 400},
      {"unsupported penalty", "POST", "/v1/completions", with("frequency_penalty", 0.5), 400},
      {"several prompts", "POST", "/v1/completions", with("prompt", json::array({"a", "b"})), 400},
      {"unknown model", "POST", "/v1/completions", with("model", "gpt-4"), 404},
      {"oversized body", "POST", "/v1/completions", with("prompt", std::string(100000, 'a')), 413},
      {"unknown endpoint", "POST", "/v1/embeddings", ok.dump(), 404},
      {"wrong method", "GET", "/v1/completions", "", 405},
      {"chat without messages", "POST", "/v1/chat/completions", json{{"max_tokens", 3}}.dump(), 400},
      {"detokenize bad ids", "POST", "/detokenize", json{{"tokens", {1, 99999}}}.dump(), 400},
      {"state without --state-dir", "POST", "/v1/state/save", json{{"name", "x"}, {"prompt", "hi"}}.dump(), 400},
  };
  for (const auto& c : cases) {
    auto r = http(p, c.method, c.path, c.body);
    EXPECT_EQ(r.status, c.status) << c.what << ": " << r.body;
    const json e = r.json();
    ASSERT_TRUE(e.is_object() && e.contains("error")) << c.what << ": " << r.body;
    EXPECT_TRUE(e["error"]["message"].is_string() && !e["error"]["message"].get<std::string>().empty()) << c.what;
    EXPECT_TRUE(e["error"]["type"].is_string()) << c.what;
    EXPECT_EQ(e["error"]["code"], c.status) << c.what;
  }
  // A request that is not HTTP at all.
  const int fd = connect_to(p);
  send_all(fd, "HELLO\r\n\r\n");
  char buf[512];
  const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  ::close(fd);
  EXPECT_GT(n, 0);
  EXPECT_EQ(std::string(buf, size_t(std::max<ssize_t>(n, 0))).substr(0, 12), "HTTP/1.1 400");

  EXPECT_EQ(http(p, "GET", "/health").status, 200);
  auto good = post(p, "/v1/completions", ok);
  EXPECT_EQ(good.status, 200) << good.body;
  EXPECT_EQ(good.json()["usage"]["completion_tokens"], 4);
  EXPECT_GE(metric_now(p, "linfer_requests_total{outcome=\"invalid\"}"), double(cases.size() - 1));
  EXPECT_EQ(s.stop(), 0) << s.log();
}

TEST(ServeLimits, AClientThatHangsUpFreesItsSlot) {
  ServeProcess s;
  ASSERT_TRUE(s.start("--threads 2 serve --max-seqs 2 --max-context 131072")) << s.log();
  const int p = s.port();
  for (bool stream : {true, false}) {
    json body = kLong;
    body["stream"] = stream;
    OpenStream c(p, body);
    if (stream) ASSERT_TRUE(c.read_until("data: ")) << c.raw;
    else ASSERT_TRUE(metric_becomes(p, "linfer_state_pool_slots_in_use", 1));
    c.hang_up();
    EXPECT_TRUE(metric_becomes(p, "linfer_state_pool_slots_in_use", 0)) << (stream ? "stream" : "whole");
  }
  // Waited for, not read once: CI once read 1 here right after the slot gauge fell to 0 (2026-12-03, a 99 ms
  // run; not reproduced in 100 local runs, cause not found); the server's log shows each request's outcome.
  EXPECT_TRUE(metric_becomes(p, "linfer_requests_total{outcome=\"cancelled\"}", 2))
      << metric_now(p, "linfer_requests_total{outcome=\"cancelled\"}") << " cancelled\n" << s.log();
  EXPECT_LT(metric_now(p, "linfer_generation_tokens_total"), 16000);
  // Waited for too: CI read 1.02e7 reserved bytes (one 8,002-token reservation) here once, right after the two
  // cancellations and the slot gauge at 0 (2026-12-07, a 98 ms run; not reproduced in 70 local runs, with and
  // without load). A reservation that stays is a leak; the log names every request's outcome.
  EXPECT_TRUE(metric_becomes(p, "linfer_kv_bytes_reserved", 0))
      << metric_now(p, "linfer_kv_bytes_reserved") << " bytes reserved, "
      << metric_now(p, "linfer_state_pool_slots_in_use") << " slots in use\n" << s.log();
  EXPECT_EQ(post(p, "/v1/completions", {{"prompt", "Hi"}, {"max_tokens", 2}}).status, 200);
  EXPECT_EQ(s.stop(), 0);
}

TEST(ServeLimits, AFullQueueAnswers429WithRetryAfter) {
  ServeProcess s;
  ASSERT_TRUE(s.start("--threads 2 serve --max-seqs 1 --max-queue 1 --max-batch-tokens 8 --max-context 131072")) << s.log();
  const int p = s.port();
  OpenStream running(p, kLong);  // holds the only slot
  ASSERT_TRUE(running.read_until("data: "));
  HttpResponse waited;
  std::thread waiter([&] { waited = post(p, "/v1/completions", {{"prompt", "Hi"}, {"max_tokens", 2}}); });
  const bool queued = metric_becomes(p, "linfer_requests_waiting", 1);
  HttpResponse refused;
  if (queued) refused = post(p, "/v1/completions", {{"prompt", "Hi"}, {"max_tokens", 2}});
  running.hang_up();  // the waiting request gets the slot
  waiter.join();
  ASSERT_TRUE(queued) << s.log();
  EXPECT_EQ(refused.status, 429) << refused.body;
  EXPECT_EQ(refused.header("retry-after"), "1");
  EXPECT_EQ(refused.json()["error"]["code"], 429);
  EXPECT_EQ(waited.status, 200) << waited.body;
  EXPECT_EQ(metric_now(p, "linfer_requests_total{outcome=\"rejected\"}"), 1);
  EXPECT_EQ(s.stop(), 0);
}

TEST(ServeLimits, ApiKey) {
  ServeProcess s;
  ASSERT_TRUE(s.start("--threads 2 serve --max-context 512 --api-key s3cret")) << s.log();
  const int p = s.port();
  const json body = {{"prompt", "Hi"}, {"max_tokens", 2}};
  auto none = post(p, "/v1/completions", body);
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.json()["error"]["type"], "authentication_error");
  EXPECT_EQ(post(p, "/v1/completions", body, {"Authorization: Bearer wrong"}).status, 401);
  EXPECT_EQ(post(p, "/v1/completions", body, {"Authorization: Bearer s3cret-and-more"}).status, 401);
  EXPECT_EQ(post(p, "/v1/completions", body, {"Authorization: s3cret"}).status, 401);
  EXPECT_EQ(http(p, "GET", "/v1/models").status, 401);
  EXPECT_EQ(post(p, "/tokenize", {{"prompt", "x"}}).status, 401);
  EXPECT_EQ(post(p, "/v1/completions", body, {"Authorization: Bearer s3cret"}).status, 200);
  EXPECT_EQ(http(p, "GET", "/health").status, 200);  // probes need no key
  EXPECT_EQ(http(p, "GET", "/metrics").status, 200);
  EXPECT_EQ(s.stop(), 0);
}

TEST(ServeLimits, SigtermFinishesShortRequestsCancelsLongOnesAndExitsZero) {
  ServeProcess s;
  ASSERT_TRUE(s.start("--threads 2 serve --max-seqs 4 --max-context 131072 --shutdown-timeout 3")) << s.log();
  const int p = s.port();
  OpenStream endless(p, kLong);
  ASSERT_TRUE(endless.read_until("data: "));
  OpenStream brief(p, {{"prompt", "Hi"}, {"max_tokens", 3}, {"temperature", 0}});
  s.signal(SIGTERM);
  brief.read_to_end();
  endless.read_to_end();
  const HttpResponse b = parse_response(brief.raw);
  EXPECT_EQ(b.status, 200) << brief.raw;
  EXPECT_EQ(b.json()["usage"]["completion_tokens"], 3);
  // The long stream was cut at the deadline: an in-band error event, then [DONE].
  const auto events = parse_response(endless.raw).events();
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events.back(), "[DONE]");
  EXPECT_TRUE(json::parse(events[events.size() - 2]).contains("error")) << events[events.size() - 2];
  EXPECT_EQ(s.wait(std::chrono::seconds(20)), 0) << s.log();
  EXPECT_NE(s.log().find("SIGTERM received"), std::string::npos);
  EXPECT_LT(connect_to(p), 0);  // nothing listens any more
}

// While the model loads, /health (and the API) answer 503; then 200. The load is held back
// deterministically: config.json is a FIFO that the test fills when it has seen the 503.
TEST(ServeLimits, HealthIs503WhileLoading) {
  const fs::path dir = fs::temp_directory_path() / fmt::format("linfer_serve_loading_{}", ::getpid());
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const char* f : {"model.safetensors", "tokenizer.json", "tokenizer_config.json"})
    fs::create_symlink(fs::absolute(fs::path("models/demo") / f), dir / f);
  ASSERT_EQ(::mkfifo((dir / "config.json").c_str(), 0600), 0);
  ServeProcess s;
  EXPECT_FALSE(s.start(fmt::format("--threads 2 serve --model {} --max-context 512", dir.string()),
                       std::chrono::seconds(3)));  // never healthy while config.json is unread
  ASSERT_GT(s.port(), 0) << s.log();
  auto h = http(s.port(), "GET", "/health");
  EXPECT_EQ(h.status, 503);
  EXPECT_EQ(h.json()["error"]["message"], "Loading model");
  EXPECT_EQ(post(s.port(), "/v1/completions", {{"prompt", "Hi"}}).status, 503);
  {
    std::ifstream config("models/demo/config.json", std::ios::binary);
    std::ofstream fifo(dir / "config.json", std::ios::binary);  // blocks until the server opens it
    fifo << config.rdbuf();
  }
  bool ready = false;
  for (int i = 0; i < 500 && !ready; ++i) {
    ready = http(s.port(), "GET", "/health").status == 200;
    if (!ready) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(ready) << s.log();
  EXPECT_EQ(post(s.port(), "/v1/completions", {{"prompt", "Hi"}, {"max_tokens", 2}}).status, 200);
  EXPECT_EQ(s.stop(), 0);
  fs::remove_all(dir);
}

// Connections cost no thread: hundreds of idle keep-alive connections and dozens of open streams
// (two generating, the rest queued) leave the server answering. A thread-per-connection server with
// a bounded pool would not answer /health here.
TEST(ServeLimits, ManyOpenConnectionsDoNotStarveTheServer) {
  ServeProcess s;
  ASSERT_TRUE(s.start("--threads 2 serve --max-seqs 2 --max-queue 100 --max-context 131072 --io-threads 2")) << s.log();
  const int p = s.port();
  std::vector<int> idle;
  for (int i = 0; i < 300; ++i) {
    const int fd = connect_to(p);
    ASSERT_GE(fd, 0);
    idle.push_back(fd);
  }
  std::vector<std::unique_ptr<OpenStream>> streams;
  for (int i = 0; i < 60; ++i) streams.push_back(std::make_unique<OpenStream>(p, kLong));
  ASSERT_TRUE(streams[0]->read_until("data: "));
  // A loaded machine can take a while to accept 360 connections and parse 60 requests: wait long.
  ASSERT_TRUE(metric_becomes(p, "linfer_requests_waiting", 58, std::chrono::seconds(120)))
      << "waiting now: " << metric_now(p, "linfer_requests_waiting") << ", running "
      << metric_now(p, "linfer_requests_running") << "; the server's log ends:\n"
      << s.log().substr(s.log().size() > 4000 ? s.log().size() - 4000 : 0);
  EXPECT_EQ(http(p, "GET", "/health").status, 200);
  EXPECT_EQ(post(p, "/tokenize", {{"prompt", "still here"}}).status, 200);
  for (int fd : idle) ::close(fd);
  streams.clear();  // hang up: every request is cancelled
  EXPECT_TRUE(metric_becomes(p, "linfer_state_pool_slots_in_use", 0));
  EXPECT_TRUE(metric_becomes(p, "linfer_requests_waiting", 0));
  EXPECT_EQ(s.stop(), 0);
}

// Megabytes of nested brackets would exhaust a thread's stack inside the JSON library: refused first.
TEST(ServeLimits, DeeplyNestedJsonIsRefused) {
  ServeProcess s;
  ASSERT_TRUE(s.start("--threads 2 serve --max-context 512")) << s.log();
  const size_t n = 2000000;
  const std::string body = "{\"prompt\":" + std::string(n, '[') + std::string(n, ']') + "}";
  auto r = http(s.port(), "POST", "/v1/completions", body);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(http(s.port(), "GET", "/health").status, 200);
  EXPECT_EQ(s.stop(), 0);
}

// Every request gets its whole answer: 8 clients x 60 short requests, streamed and not, on fresh
// connections, each body a packet after its headers, and no request is taken for a hang-up.
TEST(ServeLimits, ManyShortRequestsAreAllAnsweredWhole) {
  ServeProcess s;
  ASSERT_TRUE(s.start("--threads 2 serve --max-seqs 4 --max-context 512")) << s.log();
  const int p = s.port();
  std::atomic<int> ok{0}, bad{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&, t] {
      for (int i = 0; i < 60; ++i) {
        const bool stream = (i + t) % 2 == 0;
        // The body in a second packet, a moment after the headers, as many clients send it.
        const std::string body = json{{"prompt", "ROMEO:"}, {"max_tokens", 1 + i % 3}, {"stream", stream}}.dump();
        const std::string req = request_text("POST", "/v1/completions", body, {});
        const int fd = connect_to(p);
        send_all(fd, req.substr(0, req.size() - body.size()));
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        send_all(fd, body);
        std::string raw;
        char buf[4096];
        ssize_t n;
        while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) raw.append(buf, size_t(n));
        ::close(fd);
        const HttpResponse r = parse_response(raw);
        const bool whole = r.status == 200 && (stream ? !r.events().empty() && r.events().back() == "[DONE]"
                                                      : r.json().contains("usage"));
        (whole ? ok : bad)++;
      }
    });
  }
  for (auto& c : clients) c.join();
  EXPECT_EQ(bad, 0);
  EXPECT_EQ(ok, 480);
  EXPECT_EQ(metric_now(p, "linfer_requests_total{outcome=\"cancelled\"}"), 0);
  EXPECT_EQ(s.stop(), 0);
}

// A random mix from 8 clients: valid and invalid field values, streams and whole responses, clients
// that hang up after a few bytes. Every request read to its end is a whole 200 or a 400; afterwards
// nothing is left running or reserved and nothing failed inside the server.
TEST(ServeLimits, RandomMixedLoadLeavesNothingBehind) {
  ServeProcess s;
  ASSERT_TRUE(s.start("--threads 2 serve --max-seqs 4 --max-queue 64 --max-batch-tokens 16 --max-context 256")) << s.log();
  const int p = s.port();
  std::atomic<int> answered{0}, cut{0}, broken{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&, t] {
      std::mt19937 rng(100 + t);
      auto pick = [&](int n) { return int(rng() % uint32_t(n)); };
      for (int i = 0; i < 40; ++i) {
        json b = {{"max_tokens", 1 + pick(20)}};
        switch (pick(4)) {
          case 0: b["prompt"] = "ROMEO:"; break;
          case 1: b["prompt"] = std::string(size_t(1 + pick(300)), 'a'); break;  // may pass the context: 400
          case 2: {
            std::vector<int> ids(size_t(1 + pick(50)));
            for (int& id : ids) id = pick(4100);  // ids >= 4098 are outside the vocabulary: 400
            b["prompt"] = ids;
            break;
          }
          default: b["prompt"] = "<|im_start|>x\u00e9";
        }
        if (pick(2)) b["temperature"] = std::vector<double>{0, 0.5, 1.5}[size_t(pick(3))];
        if (pick(3) == 0) b["top_k"] = pick(60) - 1;
        if (pick(3) == 0) b["stop"] = std::vector<std::string>{"\n", "e", "ROMEO"}[size_t(pick(3))];
        if (pick(3) == 0) b["n"] = 1 + pick(4);
        if (pick(2)) b["stream"] = true;
        if (pick(3) == 0) b["min_tokens"] = pick(3);
        if (pick(3) == 0) b["logprobs"] = pick(21);
        if (pick(3) == 0) b["ignore_eos"] = true;
        const bool hang_up = pick(4) == 0;
        const int fd = connect_to(p);
        send_all(fd, request_text("POST", "/v1/completions", b.dump(), {}));
        std::string raw;
        char buf[4096];
        ssize_t n;
        while ((n = ::recv(fd, buf, hang_up ? size_t(1 + pick(300)) : sizeof buf, 0)) > 0) {
          raw.append(buf, size_t(n));
          if (hang_up) break;
        }
        ::close(fd);
        if (hang_up) {
          ++cut;
          continue;
        }
        const HttpResponse r = parse_response(raw);
        const bool stream = b.value("stream", false);
        const bool whole = (r.status == 200 && (stream ? !r.events().empty() && r.events().back() == "[DONE]"
                                                       : r.json().contains("usage"))) ||
                           (r.status == 400 && r.json().contains("error"));
        (whole ? answered : broken)++;
        if (!whole) ADD_FAILURE() << b.dump() << " -> " << raw.substr(0, 300);
      }
    });
  }
  for (auto& c : clients) c.join();
  EXPECT_EQ(broken, 0);
  EXPECT_EQ(answered + cut, 320);
  EXPECT_EQ(http(p, "GET", "/health").status, 200);
  EXPECT_TRUE(metric_becomes(p, "linfer_state_pool_slots_in_use", 0));
  EXPECT_TRUE(metric_becomes(p, "linfer_kv_bytes_reserved", 0));
  EXPECT_TRUE(metric_becomes(p, "linfer_requests_waiting", 0));
  EXPECT_EQ(metric_now(p, "linfer_requests_total{outcome=\"error\"}"), 0);
  EXPECT_EQ(s.stop(), 0);
}
