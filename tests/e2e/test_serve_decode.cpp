// `linfer serve --role decode` end to end; the reference is `linfer generate --greedy` on each prompt
// alone (the same ids the single-node server tests hold the server to).
//  - On every golden model and the demo model: a decode node, two prefill nodes behind the repo's
//    nginx config, a shared Redis: greedy outputs equal the reference, the prompts were prefilled
//    remotely (counters, cached_tokens), and a second decode node answering the same prompts takes
//    their states from Redis without asking a prefill node.
//  - Failures: prefill "nodes" that never answer (timeout), are not there (unreachable), run another
//    model (409), send a truncated state (killed mid-transfer) or a corrupted one, and Redis killed:
//    every request still completes with the reference ids, and the fallback counters say why.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "../pfaas/nginx_balancer.h"
#include "../pfaas/redis_server.h"
#include "../loopback_listener.h"
#include "decode_cases.h"
#include "serve_harness.h"

using namespace serve_test;
using namespace decode_test;
namespace fs = std::filesystem;

namespace {

const std::string kSource = LINFER_SOURCE_DIR;

std::vector<std::string> models() {
  std::vector<std::string> dirs = {kSource + "/models/demo"};
  for (const auto& e : fs::directory_iterator(kSource + "/tests/golden"))
    if (fs::exists(e.path() / "config.json")) dirs.push_back(e.path().string());
  std::sort(dirs.begin() + 1, dirs.end());
  return dirs;
}

}  // namespace

class ServeDecode : public ::testing::TestWithParam<std::string> {};

TEST_P(ServeDecode, RemotePrefillThroughNginxAndRedisEqualsGenerate) {
  if (!pfaas_test::NginxBalancer::available()) GTEST_SKIP() << "nginx is not installed (Debian package nginx)";
  if (!pfaas_test::RedisServer::available()) GTEST_SKIP() << "redis-server is not installed (Debian package redis-server)";
  const std::string model = GetParam();
  std::vector<Case> cases = cases_for(model, 6, uint32_t(std::hash<std::string>{}(model) & 0xffff));
  pfaas_test::RedisServer redis;
  ASSERT_TRUE(redis.start()) << redis.log();
  ServeProcess p1, p2;
  const std::string node_args = fmt::format("--threads 1 serve --model {} --role prefill --state-store {}", model,
                                            redis.url());
  ASSERT_TRUE(p1.start(node_args)) << p1.log();
  ASSERT_TRUE(p2.start(node_args)) << p2.log();
  pfaas_test::NginxBalancer lb;
  ASSERT_TRUE(lb.start({p1.port(), p2.port()})) << lb.log();
  const std::string decode_args = fmt::format(
      "--threads 1 serve --model {} --role decode --prefill-url http://127.0.0.1:{} --prefill-threshold 16 "
      "--state-store {}", model, lb.port(), redis.url());
  ServeProcess d1;
  ASSERT_TRUE(d1.start(decode_args)) << d1.log();
  for (size_t i = 0; i < cases.size(); ++i) {
    Answer a = complete(d1.port(), cases[i]);
    ASSERT_EQ(a.status, 200) << a.body;
    EXPECT_EQ(a.ids, cases[i].expected) << "request " << i;
    EXPECT_EQ(a.cached, int64_t(cases[i].prompt.size()) - 1) << "request " << i << " did not use the remote state";
  }
  EXPECT_EQ(metric_of(d1.port(), "linfer_remote_prefill_requests_total"), double(cases.size()));
  EXPECT_GT(metric_of(d1.port(), "linfer_remote_prefill_bytes_total"), 0);
  EXPECT_EQ(metric_of(d1.port(), "linfer_remote_prefill_seconds_count"), double(cases.size()));
  for (const char* r : {"timeout", "unreachable", "mismatch", "bad_state", "http_error", "error"})
    EXPECT_EQ(metric_of(d1.port(), fallbacks(r)), 0) << r << "\n" << d1.log();
  EXPECT_GE(metric_of(p1.port(), "linfer_prefill_requests_total{outcome=\"ok\"}"), 1);  // nginx used both
  EXPECT_GE(metric_of(p2.port(), "linfer_prefill_requests_total{outcome=\"ok\"}"), 1);

  // Another decode node, the same prompts: every state comes from Redis, no prefill node is asked.
  ServeProcess d2;
  ASSERT_TRUE(d2.start(decode_args)) << d2.log();
  for (size_t i = 0; i < cases.size(); ++i) {
    Answer a = complete(d2.port(), cases[i]);
    ASSERT_EQ(a.status, 200) << a.body;
    EXPECT_EQ(a.ids, cases[i].expected) << "request " << i;
    EXPECT_EQ(a.cached, int64_t(cases[i].prompt.size()) - 1) << "request " << i;
  }
  EXPECT_EQ(metric_of(d2.port(), "linfer_remote_prefill_store_hits_total"), double(cases.size())) << d2.log();
  EXPECT_EQ(metric_of(d2.port(), "linfer_remote_prefill_requests_total"), 0);
  EXPECT_EQ(d1.stop(), 0);
  EXPECT_EQ(d2.stop(), 0);
}

INSTANTIATE_TEST_SUITE_P(Models, ServeDecode, ::testing::ValuesIn(models()), [](const auto& info) {
  return fs::path(info.param).filename().string();
});

namespace {

// A stand-in prefill node: for each connection, reads the request head and hands the socket to
// `answer` (which may write anything, or nothing); the connection is closed afterwards.
class FakeNode {
 public:
  explicit FakeNode(std::function<void(int fd)> answer)
      : answer_(std::move(answer)), listener_([this](int c) {
          std::string got;
          char buf[65536];
          ssize_t n;
          size_t end = std::string::npos;
          while (end == std::string::npos && (n = ::recv(c, buf, sizeof buf, 0)) > 0) {
            got.append(buf, size_t(n));
            end = got.find("\r\n\r\n");
          }
          size_t length = 0;  // read the body too, so closing does not reset the connection
          size_t cl = got.find("Content-Length: ");
          if (cl != std::string::npos) length = std::stoul(got.substr(cl + 16));
          while (end != std::string::npos && got.size() < end + 4 + length && (n = ::recv(c, buf, sizeof buf, 0)) > 0)
            got.append(buf, size_t(n));
          request_ = got;
          answer_(c);
          ::close(c);
        }) {}
  std::string url() const { return fmt::format("http://127.0.0.1:{}", listener_.port()); }
  std::string request() const { return request_; }

 private:
  std::function<void(int)> answer_;
  std::string request_;
  LoopbackListener listener_;  // last: stops before the members its thread uses are destroyed
};

void write_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += size_t(n);
  }
}

// The body a real prefill node sends for `prompt` (the decode node asks for all but the last token).
std::string real_state(int node_port, const std::vector<int32_t>& prompt, const std::string& fp) {
  HttpResponse r = post(node_port, "/v1/prefill",
                        {{"prompt", std::vector<int32_t>(prompt.begin(), prompt.end() - 1)},
                         {"model_fingerprint", fp}, {"format_version", 1}});
  EXPECT_EQ(r.status, 200) << r.body;
  return r.body;
}

std::string chunked(const std::string& body) {
  return "HTTP/1.1 200 OK\r\nContent-Type: application/x-linfer-state\r\nTransfer-Encoding: chunked\r\n\r\n" +
         fmt::format("{:x}\r\n", body.size()) + body + "\r\n0\r\n\r\n";
}

}  // namespace

TEST(ServeDecodeFailures, EveryFailureFallsBackToLocalPrefillWithTheSameTokens) {
  const std::string demo = kSource + "/models/demo";
  std::vector<Case> cases = cases_for(demo, 6, 77);
  ServeProcess good, other;
  ASSERT_TRUE(good.start("--threads 1 serve --role prefill")) << good.log();
  ASSERT_TRUE(other.start("--threads 1 serve --role prefill --model " + kSource + "/tests/golden/kimi_linear_a"))
      << other.log();
  // The demo model's fingerprint, as the 409 of a request for another one names it.
  HttpResponse probe = post(good.port(), "/v1/prefill", {{"prompt", {1}}, {"model_fingerprint", "?"}, {"format_version", 1}});
  const std::string demo_fp = probe.header("x-linfer-model-fingerprint");
  ASSERT_FALSE(demo_fp.empty()) << probe.body;

  // Requests go to the URLs in turn; case i meets node i.
  const std::string truncated = real_state(good.port(), cases[3].prompt, demo_fp);
  const std::string corrupted = [&] {
    std::string s = real_state(good.port(), cases[4].prompt, demo_fp);
    s[s.size() / 2] ^= 0x20;
    return s;
  }();
  std::atomic<bool> release{false};
  FakeNode silent([&](int) {
    for (int i = 0; i < 3000 && !release; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  });
  FakeNode cut([&](int fd) {  // dies mid-transfer: a third of the state, then the connection drops
    std::string head = chunked(truncated);
    write_all(fd, head.substr(0, head.size() / 3));
  });
  FakeNode flipped([&](int fd) { write_all(fd, chunked(corrupted)); });
  const int nobody = test_proc::free_port();
  const std::vector<std::string> urls = {silent.url(),
                                         fmt::format("http://127.0.0.1:{}", nobody),
                                         fmt::format("http://127.0.0.1:{}", other.port()),
                                         cut.url(),
                                         flipped.url(),
                                         fmt::format("http://127.0.0.1:{}", good.port())};
  std::string list;
  for (const auto& u : urls) list += (list.empty() ? "" : ",") + u;

  if (!pfaas_test::RedisServer::available()) GTEST_SKIP() << "redis-server is not installed (Debian package redis-server)";
  pfaas_test::RedisServer redis;
  ASSERT_TRUE(redis.start()) << redis.log();
  ServeProcess decode;
  ASSERT_TRUE(decode.start(fmt::format("--threads 1 serve --role decode --prefill-url {} --prefill-threshold 16 "
                                       "--prefill-timeout 2 --state-store {}", list, redis.url())))
      << decode.log();
  redis.kill();  // the store is gone from the start: lookups fail fast and count, nothing else changes

  const char* expected_reason[] = {"timeout", "unreachable", "mismatch", "bad_state", "bad_state", nullptr};
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(fmt::format("request {} -> {}", i, urls[i % urls.size()]));
    Answer a = complete(decode.port(), cases[i]);
    ASSERT_EQ(a.status, 200) << a.body;
    EXPECT_EQ(a.ids, cases[i].expected);
    const bool remote = expected_reason[i] == nullptr;
    EXPECT_EQ(a.cached, remote ? int64_t(cases[i].prompt.size()) - 1 : 0);
  }
  release = true;
  EXPECT_EQ(metric_of(decode.port(), fallbacks("timeout")), 1) << decode.log();
  EXPECT_EQ(metric_of(decode.port(), fallbacks("unreachable")), 1);
  EXPECT_EQ(metric_of(decode.port(), fallbacks("mismatch")), 1);
  EXPECT_EQ(metric_of(decode.port(), fallbacks("bad_state")), 2);
  EXPECT_EQ(metric_of(decode.port(), fallbacks("error")), 0);
  EXPECT_EQ(metric_of(decode.port(), "linfer_remote_prefill_requests_total"), 6);
  EXPECT_EQ(metric_of(decode.port(), "linfer_remote_prefill_seconds_count"), 1);  // the good node
  EXPECT_GE(metric_of(decode.port(), "linfer_state_store_failures_total"), 1);
  EXPECT_EQ(metric_of(decode.port(), "linfer_remote_prefill_store_hits_total"), 0);
  EXPECT_EQ(metric_of(other.port(), "linfer_prefill_requests_total{outcome=\"mismatch\"}"), 1);
  EXPECT_NE(cut.request().find("\"model_fingerprint\":\"" + demo_fp + "\""), std::string::npos) << cut.request();
  EXPECT_EQ(decode.stop(), 0) << decode.log();
}
