// deploy/nginx-prefill.conf, run by a private nginx (tests/pfaas/nginx_balancer.h) in front of two
// loopback backends: nginx accepts the file; requests alternate between the backends (two
// `python3 -m http.server` serving different files); a streamed response passes through as the
// backend produces it (the client sees the first chunk while the backend still holds the rest);
// a POST body reaches the backend before the client has sent all of it (proxy_request_buffering
// off); a client that reads nothing holds the backend's writes back instead of nginx collecting the
// response (proxy_buffering off); both checks fail with buffering on, which the test also runs;
// with one backend dead every request is served by the other. Skips, saying so, if nginx or python3
// is missing.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <regex>
#include <thread>

#include "../loopback_listener.h"
#include "../pfaas/nginx_balancer.h"
#include "serve_harness.h"

using namespace pfaas_test;
using serve_test::send_all;
using namespace std::chrono_literals;

namespace {

#define REQUIRE_PROGRAM(p) \
  if (test_proc::which(p).empty()) GTEST_SKIP() << p << " is not installed (Debian package " p ": make deps)"

// A loopback connection whose reads give up after 30 s (-1 if nothing listens).
int connect_to(int port) {
  const int fd = serve_test::connect_to(port);
  timeval tv{30, 0};
  if (fd >= 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

// Reads until `needle` has arrived (true) or the peer closes / 30 s pass (false); appends to `got`.
bool read_until(int fd, const std::string& needle, std::string& got) {
  char buf[4096];
  while (got.find(needle) == std::string::npos) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return false;
    got.append(buf, size_t(n));
  }
  return true;
}

std::string get(int port, const std::string& path) {
  int fd = connect_to(port);
  if (fd < 0) return "<no connection>";
  send_all(fd, "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  std::string got;
  read_until(fd, "\x01never", got);
  ::close(fd);
  size_t body = got.find("\r\n\r\n");
  return got.substr(0, 12) + "|" + (body == std::string::npos ? "" : got.substr(body + 4));
}

// What the test and the backends tell each other (shared by both backends: nginx picks one).
struct Signals {
  std::atomic<int> bodies_started{0};  // requests whose first body part reached a backend
  std::atomic<bool> release{false};    // the backend may send the rest of its response
};

// A backend that waits for the first part of a request body, then for the rest, answers with a
// chunked body whose second chunk it holds until released (at most 30 s).
class HoldingBackend {
 public:
  explicit HoldingBackend(Signals& sig)
      : sig_(sig), listener_([&sig](int c) {
          std::string got;
          if (read_until(c, "part-one", got)) ++sig.bodies_started;
          read_until(c, "part-two", got);
          send_all(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/octet-stream\r\n\r\n"
                      "5\r\nfirst\r\n");
          for (int i = 0; i < 3000 && !sig.release; ++i) std::this_thread::sleep_for(10ms);
          send_all(c, "6\r\nsecond\r\n0\r\n\r\n");
          ::close(c);
        }) {}
  ~HoldingBackend() {
    sig_.release = true;  // a connection being served finishes now
    listener_.stop();
  }
  int port() const { return listener_.port(); }

 private:
  Signals& sig_;
  LoopbackListener listener_;
};

template <class F>
bool eventually(F&& ok, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!ok()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

struct StreamResult {
  bool body_streamed = false;         // a backend saw part one of the body before part two was sent
  bool first_while_held = false;      // the first chunk arrived while the backend held the second
  std::string response;
};

// A chunked POST through the balancer, its body in two parts: the second is sent only once a backend
// has the first (or after 5 s); then the client reads until the first response chunk arrives (at most
// 10 s) before the backend is allowed to finish.
StreamResult stream_through(int lb_port, Signals& sig) {
  StreamResult r;
  sig.release = false;
  const int before = sig.bodies_started;
  int fd = connect_to(lb_port);
  if (fd < 0) return r;
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  send_all(fd, "POST /v1/prefill HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n"
               "Content-Type: application/json\r\n\r\n8\r\npart-one\r\n");
  r.body_streamed = eventually([&] { return sig.bodies_started > before; }, 5s);
  send_all(fd, "8\r\npart-two\r\n0\r\n\r\n");
  r.first_while_held = read_until(fd, "first", r.response);
  sig.release = true;
  read_until(fd, "\x01never", r.response);  // to the end
  ::close(fd);
  return r;
}

// A backend that answers every request with kFlood bytes as fast as the socket takes them, counting
// what it got out: with the response unbuffered, a client that does not read holds it back.
constexpr size_t kFlood = size_t(96) << 20;

class FloodBackend {
 public:
  explicit FloodBackend(std::atomic<size_t>& sent)
      : listener_([&sent](int c) {
          int small = 64 << 10;
          ::setsockopt(c, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
          std::string got;
          read_until(c, "\r\n\r\n", got);
          send_all(c, fmt::format("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", kFlood));
          const std::string block(1 << 16, 'x');
          for (size_t off = 0; off < kFlood; off += block.size()) {
            ssize_t n = ::send(c, block.data(), block.size(), MSG_NOSIGNAL);
            if (n <= 0) break;
            sent += size_t(n);
            if (size_t(n) < block.size()) off -= block.size() - size_t(n);
          }
          ::close(c);
        }) {}
  int port() const { return listener_.port(); }

 private:
  LoopbackListener listener_;
};

// Asks for a flood through the balancer, reads nothing for 1.5 s, and returns what the backend had
// sent by then; then reads the whole response (false in `complete` if it did not arrive whole).
size_t flood_sent_while_not_reading(int lb_port, std::atomic<size_t>& sent, bool& complete) {
  sent = 0;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  int small = 64 << 10;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(uint16_t(lb_port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return 0;
  send_all(fd, "POST /v1/prefill HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}");
  std::this_thread::sleep_for(1500ms);
  const size_t by_then = sent;
  size_t total = 0;
  char buf[1 << 16];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) total += size_t(n);
  ::close(fd);
  complete = total > kFlood;  // the head + every byte of the body
  return by_then;
}

}  // namespace

TEST(NginxPrefill, TheDeployFileIsAcceptedByNginx) {
  REQUIRE_PROGRAM("nginx");
  test_proc::TempDir dir("nginx_t");
  std::ofstream(dir / "nginx.conf") << fmt::format(
      "pid {0}/nginx.pid;\nerror_log {0}/error.log;\nevents {{}}\nhttp {{\n  include {1};\n}}\n", dir.path(),
      kDeployConf);
  auto r = test_proc::which("nginx") + " -t -p " + dir.path() + " -c " + (dir / "nginx.conf") + " -e " +
           (dir / "error.log") + " 2>&1";
  FILE* p = popen(r.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  EXPECT_EQ(pclose(p), 0) << out;
  EXPECT_NE(out.find("test is successful"), std::string::npos) << out;
}

TEST(NginxPrefill, TheTestConfigIsTheDeployFileWithOnlyTheAddressesChanged) {
  const std::string deploy = read_file(kDeployConf);
  const std::string mine = rewrite_deploy_conf(deploy, {1111, 2222}, 3333);
  EXPECT_NE(mine.find("server 127.0.0.1:1111 max_fails=2 fail_timeout=10s;"), std::string::npos) << mine;
  EXPECT_NE(mine.find("server 127.0.0.1:2222 max_fails=2 fail_timeout=10s;"), std::string::npos) << mine;
  EXPECT_NE(mine.find("listen 127.0.0.1:3333;"), std::string::npos) << mine;
  EXPECT_EQ(mine.find("10.0.0."), std::string::npos) << mine;
  // Everything else is untouched: remove the changed lines from both and compare.
  auto strip = [](std::string s) {
    s = std::regex_replace(s, std::regex(R"(\n[ \t]*server[ \t]+[^{;\n]*;)"), "");
    return std::regex_replace(s, std::regex(R"(\n[ \t]*listen[ \t]+[^;\n]+;)"), "");
  };
  EXPECT_EQ(strip(mine), strip(deploy));
}

TEST(NginxPrefill, RequestsAlternateBetweenTheTwoNodes) {
  REQUIRE_PROGRAM("nginx");
  REQUIRE_PROGRAM("python3");
  test_proc::TempDir a("node_a"), b("node_b");
  std::ofstream(a / "who.txt") << "node A";
  std::ofstream(b / "who.txt") << "node B";
  int pa = test_proc::free_port(), pb = test_proc::free_port();
  test_proc::ChildProcess sa, sb;
  ASSERT_TRUE(sa.start({"python3", "-m", "http.server", std::to_string(pa), "--bind", "127.0.0.1"}, a / "log", a.path()));
  ASSERT_TRUE(sb.start({"python3", "-m", "http.server", std::to_string(pb), "--bind", "127.0.0.1"}, b / "log", b.path()));
  ASSERT_TRUE(sa.wait_for_port(pa)) << sa.log();
  ASSERT_TRUE(sb.wait_for_port(pb)) << sb.log();
  NginxBalancer lb;
  ASSERT_TRUE(lb.start({pa, pb})) << lb.log();

  std::vector<std::string> seen;
  for (int i = 0; i < 8; ++i) {
    std::string r = get(lb.port(), "/who.txt");
    ASSERT_EQ(r.substr(0, 12), "HTTP/1.1 200") << r << lb.log();
    seen.push_back(r.substr(r.find('|') + 1));
  }
  for (size_t i = 0; i < seen.size(); ++i) {
    EXPECT_TRUE(seen[i] == "node A" || seen[i] == "node B") << seen[i];
    if (i > 0) EXPECT_NE(seen[i], seen[i - 1]) << "request " << i << " went to the same node again";
  }

  // One node dies: every request still succeeds, on the other.
  sa.kill();
  for (int i = 0; i < 4; ++i) {
    std::string r = get(lb.port(), "/who.txt");
    EXPECT_EQ(r, "HTTP/1.1 200|node B") << lb.log();
  }
}

TEST(NginxPrefill, StreamedRequestsAndResponsesPassThroughUnbuffered) {
  REQUIRE_PROGRAM("nginx");
  Signals sig;
  HoldingBackend a(sig), b(sig);
  NginxBalancer lb;
  ASSERT_TRUE(lb.start({a.port(), b.port()})) << lb.log();
  for (int i = 0; i < 2; ++i) {  // once on each node
    StreamResult r = stream_through(lb.port(), sig);
    EXPECT_TRUE(r.body_streamed) << "nginx held the request body back";
    EXPECT_TRUE(r.first_while_held) << "nginx held the response back: " << r.response;
    EXPECT_EQ(r.response.substr(0, 12), "HTTP/1.1 200") << r.response;
    EXPECT_NE(r.response.find("second"), std::string::npos) << r.response;
  }
}

TEST(NginxPrefill, AClientThatDoesNotReadHoldsTheNodeBack) {
  // Unbuffered, nginx never collects a state the decode node is not reading yet: the node's writes wait.
  REQUIRE_PROGRAM("nginx");
  std::atomic<size_t> sent{0};
  FloodBackend a(sent), b(sent);
  NginxBalancer lb;
  ASSERT_TRUE(lb.start({a.port(), b.port()})) << lb.log();
  bool complete = false;
  const size_t by_then = flood_sent_while_not_reading(lb.port(), sent, complete);
  EXPECT_LT(by_then, kFlood / 3) << "nginx took the response from the backend while the client read nothing";
  EXPECT_TRUE(complete);
}

TEST(NginxPrefill, WithBufferingOnTheSameChecksFail) {
  // The checks above can fail: the deploy file with request buffering on, then response buffering on.
  REQUIRE_PROGRAM("nginx");
  for (std::string which : {"proxy_request_buffering", "proxy_buffering"}) {
    SCOPED_TRACE(which + " on");
    test_proc::TempDir dir("nginx_buffered");
    std::ofstream(dir / "buffered.conf")
        << std::regex_replace(read_file(kDeployConf), std::regex("\\b" + which + " off;"), which + " on;");
    Signals sig;
    HoldingBackend a(sig), b(sig);
    NginxBalancer lb;
    ASSERT_TRUE(lb.start({a.port(), b.port()}, dir / "buffered.conf")) << lb.log();
    ASSERT_NE(lb.config().find(which + " on;"), std::string::npos);
    if (which == "proxy_request_buffering") {
      StreamResult r = stream_through(lb.port(), sig);
      EXPECT_FALSE(r.body_streamed);
      EXPECT_EQ(r.response.substr(0, 12), "HTTP/1.1 200") << r.response;
    } else {
      std::atomic<size_t> sent{0};
      FloodBackend fa(sent), fb(sent);
      NginxBalancer flood_lb;
      ASSERT_TRUE(flood_lb.start({fa.port(), fb.port()}, dir / "buffered.conf")) << flood_lb.log();
      bool complete = false;
      EXPECT_GE(flood_sent_while_not_reading(flood_lb.port(), sent, complete), kFlood / 3);
      EXPECT_TRUE(complete);
    }
  }
}
