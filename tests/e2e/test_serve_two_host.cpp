// Prefill as a service between two "hosts": a prefill node in network namespace A, a decode node in
// namespace B, joined by a veth pair whose ends are shaped to 1 Gbit/s by tc tbf, with 20 ms added in
// each direction (netem where the kernel has it, else tools/delay_relay in A in front of the prefill
// node). On the demo model and one golden model per architecture: greedy outputs equal
// `linfer generate --greedy` (a single node prefilling locally) exactly; every prompt over the
// threshold was prefilled across the link (counters, cached_tokens, the bytes went out through A's
// tbf) with no fallback; a short prompt stayed local. The test also checks that the link really is
// what it claims, so it fails if shaping silently did nothing: a round trip to the prefill node takes
// at least 2 x 20 ms, and so does each remote prefill's first byte; 16 MiB take at least the time the
// rate allows, in each direction. Everything (processes, namespaces, veth, qdiscs) is removed however
// the test ends. Skips, saying why, where namespaces cannot be made (not root, no iproute2).
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <thread>

#include "decode_cases.h"
#include "delay_relay_process.h"
#include "serve_harness.h"
#include "two_host_link.h"

using namespace decode_test;
using namespace two_host;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

const std::string kSource = LINFER_SOURCE_DIR;
constexpr int kDelayMs = 20;
constexpr double kRateBytesPerSecond = 1e9 / 8;  // LinkOptions' "1gbit"
constexpr int kThreshold = 16;

int connect_ip(const char* ip, int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(uint16_t(port));
  ::inet_pton(AF_INET, ip, &addr.sin_addr);
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// The fastest of 3 GET /health round trips to ip:port (a new connection each), in ms; -1 on failure.
double min_round_trip_ms(const char* ip, int port) {
  double best = -1;
  for (int i = 0; i < 3; ++i) {
    const auto t0 = Clock::now();
    const int fd = connect_ip(ip, port);
    if (fd < 0) return -1;
    serve_test::send_all(fd, serve_test::request_text("GET", "/health", "", {}));
    std::string raw;
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) raw.append(buf, size_t(n));
    ::close(fd);
    if (serve_test::parse_response(raw).status != 200) return -1;
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    best = best < 0 ? ms : std::min(best, ms);
  }
  return best;
}

// Seconds to move `bytes` from a sender in namespace `from` (listening on from_ip) to a receiver in
// namespace `to`, from the connection to the last byte; -1 on failure.
double seconds_to_move(const std::string& from, const char* from_ip, const std::string& to, size_t bytes) {
  int listener = -1;
  {
    InNetns in(from);
    if (!in.ok()) return -1;
    listener = ::socket(AF_INET, SOCK_STREAM, 0);
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  ::inet_pton(AF_INET, from_ip, &addr.sin_addr);
  socklen_t len = sizeof addr;
  if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listener, 1) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(listener);
    return -1;
  }
  std::thread sender([&] {
    const int c = ::accept(listener, nullptr, nullptr);
    if (c < 0) return;
    serve_test::send_all(c, std::string(bytes, 'x'));
    ::close(c);
  });
  double seconds = -1;
  {
    InNetns in(to);
    const auto t0 = Clock::now();
    const int fd = in.ok() ? connect_ip(from_ip, ntohs(addr.sin_port)) : -1;
    size_t got = 0;
    char buf[1 << 16];
    ssize_t n;
    while (fd >= 0 && (n = ::recv(fd, buf, sizeof buf, 0)) > 0) got += size_t(n);
    if (got == bytes) seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    if (fd >= 0) ::close(fd);
  }
  ::shutdown(listener, SHUT_RDWR);  // an accept that never got its connection
  sender.join();
  ::close(listener);
  return seconds;
}

}  // namespace

class ServeTwoHost : public ::testing::TestWithParam<std::string> {};

TEST_P(ServeTwoHost, RemotePrefillAcrossAShapedLinkEqualsGenerate) {
  if (const std::string why = TwoHostLink::unavailable(); !why.empty()) GTEST_SKIP() << why;
  const std::string model = kSource + "/" + GetParam();
  std::vector<Case> cases = cases_for(model, 4, uint32_t(std::hash<std::string>{}(model) & 0xffff));
  cases.push_back({.prompt = {5, 9, 17, 33, 65, 129, 7, 11, 13, 19}});  // under the threshold: local
  reference(model, cases.back());

  TwoHostLink link({.rate = "1gbit", .delay_ms = kDelayMs});
  ASSERT_EQ(link.error(), "");
  serve_test::ServeProcess prefill, decode;  // after the link: stopped before its namespaces go
  DelayRelayProcess relay;
  int prefill_port = 0;
  {
    InNetns in(link.ns_a());
    ASSERT_TRUE(in.ok());
    ASSERT_TRUE(prefill.start(fmt::format("--threads 1 serve --model {} --role prefill --host 0.0.0.0", model)))
        << prefill.log();
    prefill_port = prefill.port();
    if (!link.netem()) {  // the delay in front of the node, on A's side of the link
      ASSERT_TRUE(relay.start(fmt::format("{}:0", kAddrA), fmt::format("127.0.0.1:{}", prefill.port()), kDelayMs))
          << relay.log();
      prefill_port = relay.port();
    }
  }
  const double sent_before = link.tbf_sent_bytes('a');
  InNetns in(link.ns_b());
  ASSERT_TRUE(in.ok());
  ASSERT_TRUE(decode.start(fmt::format("--threads 1 serve --model {} --role decode --prefill-url http://{}:{} "
                                       "--prefill-threshold {}", model, kAddrA, prefill_port, kThreshold)))
      << decode.log();

  // The link's delay is on the decode node's path to the prefill node.
  const double rtt_ms = min_round_trip_ms(kAddrA, prefill_port);
  EXPECT_GE(rtt_ms, 2 * kDelayMs) << "no delay on the link (netem: " << link.netem() << ")";
  std::printf("two-host link (%s): round trip to the prefill node %.1f ms\n",
              link.netem() ? "tbf + netem" : "tbf + delay_relay", rtt_ms);

  int remote = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(fmt::format("request {} ({} prompt tokens)", i, cases[i].prompt.size()));
    const Answer a = complete(decode.port(), cases[i]);
    ASSERT_EQ(a.status, 200) << a.body;
    EXPECT_EQ(a.ids, cases[i].expected);
    const bool long_prompt = int(cases[i].prompt.size()) > kThreshold;
    remote += long_prompt;
    EXPECT_EQ(a.cached, long_prompt ? int64_t(cases[i].prompt.size()) - 1 : 0);
  }
  EXPECT_EQ(metric_of(decode.port(), "linfer_remote_prefill_requests_total"), remote);
  const double bytes = metric_of(decode.port(), "linfer_remote_prefill_bytes_total");
  EXPECT_GT(bytes, 0);
  for (const char* r : kFallbackReasons) EXPECT_EQ(metric_of(decode.port(), fallbacks(r)), 0) << r << decode.log();
  EXPECT_EQ(metric_of(decode.port(), "linfer_remote_prefill_first_byte_seconds_count"), remote);
  EXPECT_GE(metric_of(decode.port(), "linfer_remote_prefill_first_byte_seconds_sum"), remote * 2 * kDelayMs / 1e3)
      << "a state's first byte came back sooner than a round trip allows";
  EXPECT_GE(link.tbf_sent_bytes('a') - sent_before, bytes) << "the states did not leave A through the shaped link\n"
                                                           << link.qdiscs('a');
  std::printf("%d remote prefills, %.0f state bytes; A's qdiscs:\n%s", remote, bytes, link.qdiscs('a').c_str());

  // The rate: the tbf lets out at most burst + rate x t bytes in t seconds, in each direction.
  constexpr size_t kBulk = size_t(16) << 20;
  const double floor_s = double(kBulk - size_t(link.options().burst_bytes)) / kRateBytesPerSecond;
  const double a_to_b = seconds_to_move(link.ns_a(), kAddrA, link.ns_b(), kBulk);
  const double b_to_a = seconds_to_move(link.ns_b(), kAddrB, link.ns_a(), kBulk);
  EXPECT_GE(a_to_b, floor_s) << "A -> B is not shaped to 1 Gbit/s\n" << link.qdiscs('a');
  EXPECT_GE(b_to_a, floor_s) << "B -> A is not shaped to 1 Gbit/s\n" << link.qdiscs('b');
  std::printf("16 MiB A->B %.0f ms, B->A %.0f ms (at least %.0f ms at 1 Gbit/s)\n", 1e3 * a_to_b, 1e3 * b_to_a,
              1e3 * floor_s);
  EXPECT_EQ(decode.stop(), 0) << decode.log();
  EXPECT_EQ(prefill.stop(), 0) << prefill.log();
  if (!link.netem()) {
    EXPECT_EQ(relay.stop(), 0) << relay.log();
  }
}

// One golden model per architecture beside the demo model (test_serve_decode.cpp runs them all).
INSTANTIATE_TEST_SUITE_P(Models, ServeTwoHost,
                         ::testing::Values("models/demo", "tests/golden/kimi_linear_a", "tests/golden/qwen3_next_a",
                                           "tests/golden/mamba2_a"),
                         [](const auto& info) { return fs::path(info.param).filename().string(); });

TEST(ServeTwoHostCleanup, NothingIsLeftBehind) {
  if (const std::string why = TwoHostLink::unavailable(); !why.empty()) GTEST_SKIP() << why;
  std::string a, b;
  {
    TwoHostLink link({.rate = "1gbit", .delay_ms = kDelayMs});
    ASSERT_EQ(link.error(), "");
    a = link.ns_a();
    b = link.ns_b();
    const std::string list = sh(ip_bin() + " netns list").out;
    ASSERT_NE(list.find(a), std::string::npos) << list;
    EXPECT_NE(link.qdiscs('b').find("qdisc tbf"), std::string::npos) << link.qdiscs('b');
    // A process inside, as the servers are: the namespace goes once it is stopped.
    serve_test::ServeProcess node;
    InNetns in(a);
    ASSERT_TRUE(node.start("--threads 1 serve"));
  }
  const std::string list = sh(ip_bin() + " netns list").out;
  EXPECT_EQ(list.find(a), std::string::npos) << list;
  EXPECT_EQ(list.find(b), std::string::npos) << list;
  const std::string links = sh(ip_bin() + " link show").out;  // the veth pair never was in this namespace
  EXPECT_EQ(links.find(TwoHostLink::veth_base()), std::string::npos) << links;
}
