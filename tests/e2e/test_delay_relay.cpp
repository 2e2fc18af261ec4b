// tools/delay_relay as a process between a client and an upstream on loopback: every byte arrives,
// in each direction, no sooner than the delay after it was sent (a round trip >= 2 x delay); a chunk
// sent while an earlier one is still held is not held behind it (reading goes on during the delay);
// the end of a stream passes through; a client whose upstream refuses is closed; SIGTERM cuts open
// connections and exits 0 with what it forwarded; bad arguments are an error message, not a crash.
#include <gtest/gtest.h>

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "../child_process.h"
#include "../loopback_listener.h"
#include "delay_relay_process.h"
#include "serve_harness.h"

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

int connect_with_timeout(int port) {
  const int fd = serve_test::connect_to(port);
  timeval tv{10, 0};  // a broken relay fails the test instead of hanging it
  if (fd >= 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

// Reads exactly n bytes (fewer if the stream ends or 10 s pass without data).
std::string read_n(int fd, size_t n) {
  std::string got;
  char buf[65536];
  while (got.size() < n) {
    const ssize_t k = ::recv(fd, buf, std::min(sizeof buf, n - got.size()), 0);
    if (k <= 0) break;
    got.append(buf, size_t(k));
  }
  return got;
}

// Upstream that sends back whatever it gets, and ends its side when the client ends its.
class EchoServer {
 public:
  EchoServer()
      : listener_([](int c) {
          std::thread([c] {
            char buf[65536];
            ssize_t n;
            while ((n = ::recv(c, buf, sizeof buf, 0)) > 0) serve_test::send_all(c, std::string(buf, size_t(n)));
            ::close(c);
          }).detach();
        }) {}
  int port() const { return listener_.port(); }

 private:
  LoopbackListener listener_;
};

}  // namespace

TEST(DelayRelay, EachDirectionIsDelayedAndEveryByteArrives) {
  EchoServer echo;
  DelayRelayProcess relay;
  constexpr int kDelayMs = 100;
  ASSERT_TRUE(relay.start("127.0.0.1:0", fmt::format("127.0.0.1:{}", echo.port()), kDelayMs)) << relay.log();
  const int fd = connect_with_timeout(relay.port());
  ASSERT_GE(fd, 0);
  const auto t0 = Clock::now();
  ASSERT_TRUE(serve_test::send_all(fd, "ping"));
  EXPECT_EQ(read_n(fd, 4), "ping");
  EXPECT_GE(ms_between(t0, Clock::now()), 2 * kDelayMs) << "the round trip did not take both delays";

  // 4 MiB of random bytes up while they come back down: all of them, in order.
  std::string payload(size_t(4) << 20, '\0');
  std::mt19937 rng(7);
  for (char& ch : payload) ch = char(rng());
  std::thread sender([&] { serve_test::send_all(fd, payload); });
  const std::string back = read_n(fd, payload.size());
  sender.join();
  EXPECT_TRUE(back == payload) << "got " << back.size() << " of " << payload.size() << " bytes, or other bytes";

  // Our end of stream reaches the upstream, which ends its side: the client reads the end.
  ::shutdown(fd, SHUT_WR);
  char c;
  EXPECT_EQ(::recv(fd, &c, 1, 0), 0);
  ::close(fd);
  EXPECT_EQ(relay.stop(), 0) << relay.log();
  EXPECT_NE(relay.log().find(fmt::format("1 connections (0 refused upstream), {0} bytes up, {0} down", 4 + payload.size())),
            std::string::npos) << relay.log();
}

TEST(DelayRelay, ReadingGoesOnDuringTheDelay) {
  // Chunk b is sent 100 ms after chunk a, while a is still held (300 ms): it must arrive about 100 ms
  // after a, not a whole delay after it as behind a relay that waits before reading again.
  std::mutex mu;
  std::vector<std::pair<Clock::time_point, std::string>> arrivals;
  LoopbackListener sink([&](int c) {
    char buf[256];
    ssize_t n;
    while ((n = ::recv(c, buf, sizeof buf, 0)) > 0) {
      std::lock_guard lock(mu);
      arrivals.emplace_back(Clock::now(), std::string(buf, size_t(n)));
    }
    ::close(c);
  });
  DelayRelayProcess relay;
  constexpr int kDelayMs = 300;
  ASSERT_TRUE(relay.start("127.0.0.1:0", fmt::format("127.0.0.1:{}", sink.port()), kDelayMs)) << relay.log();
  const int fd = connect_with_timeout(relay.port());
  ASSERT_GE(fd, 0);
  const auto ta = Clock::now();
  serve_test::send_all(fd, "a");
  std::this_thread::sleep_for(100ms);
  const auto tb = Clock::now();
  serve_test::send_all(fd, "b");
  ::shutdown(fd, SHUT_WR);
  std::this_thread::sleep_for(std::chrono::milliseconds(2 * kDelayMs + 300));
  ::close(fd);
  EXPECT_EQ(relay.stop(), 0) << relay.log();
  sink.stop();
  ASSERT_EQ(arrivals.size(), 2u) << "a and b did not arrive separately";
  EXPECT_EQ(arrivals[0].second, "a");
  EXPECT_EQ(arrivals[1].second, "b");
  EXPECT_GE(ms_between(ta, arrivals[0].first), kDelayMs);
  EXPECT_GE(ms_between(tb, arrivals[1].first), kDelayMs);
  EXPECT_LT(ms_between(arrivals[0].first, arrivals[1].first), kDelayMs) << "b waited for a's delay to end";
}

TEST(DelayRelay, AClientWhoseUpstreamRefusesIsClosed) {
  DelayRelayProcess relay;
  ASSERT_TRUE(relay.start("127.0.0.1:0", fmt::format("127.0.0.1:{}", test_proc::free_port()), 20)) << relay.log();
  const int fd = connect_with_timeout(relay.port());
  ASSERT_GE(fd, 0);
  char c;
  EXPECT_LE(::recv(fd, &c, 1, 0), 0);  // closed, not left hanging (the receive timeout is 10 s)
  EXPECT_NE(errno, EAGAIN);
  ::close(fd);
  EXPECT_EQ(relay.stop(), 0);
  EXPECT_NE(relay.log().find("1 connections (1 refused upstream)"), std::string::npos) << relay.log();
}

TEST(DelayRelay, SigtermCutsOpenConnectionsAndExitsZero) {
  EchoServer echo;
  DelayRelayProcess relay;
  ASSERT_TRUE(relay.start("127.0.0.1:0", fmt::format("127.0.0.1:{}", echo.port()), 20)) << relay.log();
  const int fd = connect_with_timeout(relay.port());
  ASSERT_GE(fd, 0);
  serve_test::send_all(fd, "hello");
  EXPECT_EQ(read_n(fd, 5), "hello");
  EXPECT_EQ(relay.stop(), 0) << relay.log();  // the connection is still open
  char c;
  EXPECT_EQ(::recv(fd, &c, 1, 0), 0) << "the open connection was not ended";
  ::close(fd);
  EXPECT_NE(relay.log().find("stopped; 1 connections (0 refused upstream), 5 bytes up, 5 down"), std::string::npos)
      << relay.log();
}

TEST(DelayRelay, BadArgumentsAreAnErrorMessage) {
  auto [code, out] = DelayRelayProcess::run("--listen nowhere --to 127.0.0.1:1");
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("expected HOST:PORT"), std::string::npos) << out;
  std::tie(code, out) = DelayRelayProcess::run("--listen 127.0.0.1:70000 --to 127.0.0.1:1");
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("0..65535"), std::string::npos) << out;
  std::tie(code, out) = DelayRelayProcess::run("--listen localhost:0 --to 127.0.0.1:1");
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("IPv4 address"), std::string::npos) << out;
  LoopbackListener taken([](int c) { ::close(c); });
  std::tie(code, out) = DelayRelayProcess::run(fmt::format("--listen 127.0.0.1:{} --to 127.0.0.1:1", taken.port()));
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("cannot listen"), std::string::npos) << out;
  std::tie(code, out) = DelayRelayProcess::run("--listen 127.0.0.1:0");
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("--to"), std::string::npos) << out;
}
