// A streamed response to a slow reader: a producer that waits with Responder::wait_below before each
// chunk stays a bounded distance ahead of the client (the prefill node's state stream would otherwise
// pile a whole state up in memory for a client on a slow link), every byte still arrives in order, and
// a client that hangs up or stops reading releases the producer.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>

#include "server/http_server.h"

namespace linfer::server {
namespace {

using namespace std::chrono_literals;

constexpr size_t kChunk = size_t(1) << 20;
constexpr size_t kMaxUnsent = 4 * kChunk;
constexpr int kChunks = 96;

// Chunk i is filled with byte (i % 251), so the reader can check order and content.
std::string chunk(int i) { return std::string(kChunk, char(i % 251)); }

struct Producer {
  std::atomic<int> written{0};
  std::promise<bool> finished;  // true: every chunk written; false: wait_below said the client is gone
};

class Streamer {
 public:
  explicit Streamer(std::chrono::seconds write_timeout)
      : http_([this](HttpRequest, std::shared_ptr<Responder> res) { start(std::move(res)); },
              {.write_timeout = write_timeout}) {
    port_ = http_.listen("127.0.0.1", 0);
    http_.start(1);
  }
  ~Streamer() {
    if (thread_.joinable()) thread_.join();
    http_.stop();
  }
  uint16_t port() const { return port_; }
  Producer& producer() { return producer_; }

 private:
  void start(std::shared_ptr<Responder> res) {
    thread_ = std::thread([this, res] {
      res->start_stream(200, "application/octet-stream");
      for (int i = 0; i < kChunks; ++i) {
        if (!res->wait_below(kMaxUnsent)) {
          res->end();
          producer_.finished.set_value(false);
          return;
        }
        res->write(chunk(i));
        ++producer_.written;
      }
      res->end();
      producer_.finished.set_value(true);
    });
  }

  Producer producer_;
  std::thread thread_;
  HttpServer http_;
  uint16_t port_ = 0;
};

// A client with a small receive buffer (no autotuning), so the kernel holds little on its side.
int connect_slow_client(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  const int rcvbuf = 64 * 1024;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const std::string req = "GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  EXPECT_EQ(::send(fd, req.data(), req.size(), 0), ssize_t(req.size()));
  return fd;
}

std::string read_all(int fd) {
  std::string out;
  char buf[1 << 16];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) out.append(buf, size_t(n));
  return out;
}

// The body of a chunked response (sizes in hex, CRLF after each size line and chunk).
std::string unchunk(const std::string& raw) {
  size_t p = raw.find("\r\n\r\n");
  EXPECT_NE(p, std::string::npos);
  p += 4;
  std::string body;
  for (;;) {
    const size_t eol = raw.find("\r\n", p);
    if (eol == std::string::npos) break;
    const size_t n = std::stoul(raw.substr(p, eol - p), nullptr, 16);
    if (n == 0) break;
    body.append(raw, eol + 2, n);
    p = eol + 2 + n + 2;
  }
  return body;
}

TEST(HttpBackpressure, ProducerStaysBoundedAheadOfASlowReaderAndEveryByteArrives) {
  Streamer s(60s);
  const int fd = connect_slow_client(s.port());
  std::this_thread::sleep_for(1500ms);  // the client reads nothing yet
  // Unsent bytes wait in three places: the server's queue (≤ kMaxUnsent + one chunk), the server's
  // socket send buffer (Linux autotunes it to at most tcp_wmem's 4 MiB default) and the client's small
  // receive buffer. Without the wait, the producer writes all 96 MiB at once.
  const size_t ahead = size_t(s.producer().written) * kChunk;
  EXPECT_LT(ahead, size_t(24) << 20) << "the producer ran " << ahead << " bytes ahead of a client that read nothing";
  EXPECT_GE(ahead, kMaxUnsent) << "the producer waited before the limit was reached";

  const std::string body = unchunk(read_all(fd));
  ::close(fd);
  auto done = s.producer().finished.get_future();
  ASSERT_EQ(done.wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(done.get());
  ASSERT_EQ(body.size(), size_t(kChunks) * kChunk);
  for (int i = 0; i < kChunks; ++i)
    ASSERT_EQ(body.compare(size_t(i) * kChunk, kChunk, chunk(i)), 0) << "chunk " << i << " differs";
}

TEST(HttpBackpressure, AClientThatHangsUpReleasesTheProducer) {
  Streamer s(60s);
  const int fd = connect_slow_client(s.port());
  std::this_thread::sleep_for(500ms);
  ::close(fd);
  auto done = s.producer().finished.get_future();
  ASSERT_EQ(done.wait_for(10s), std::future_status::ready) << "the producer still waits for a closed client";
  EXPECT_FALSE(done.get());
  EXPECT_LT(s.producer().written.load(), kChunks);
}

TEST(HttpBackpressure, AClientThatStopsReadingIsDroppedAfterTheWriteTimeout) {
  Streamer s(1s);
  const int fd = connect_slow_client(s.port());
  auto done = s.producer().finished.get_future();
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(done.wait_for(15s), std::future_status::ready) << "the producer waits forever for a stalled client";
  EXPECT_FALSE(done.get());
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 900ms);
  ::close(fd);
}

}  // namespace
}  // namespace linfer::server
