#pragma once
// A TCP relay that adds latency: it accepts connections on `listen`, opens one to `upstream` for
// each, and forwards bytes both ways through a DelayedPipe, so every byte arrives `delay` after the
// relay read it, in each direction (a round trip through it takes at least 2 x delay), while the
// rate is whatever the sockets on either side allow. A stand-in for `tc netem delay` on kernels
// without netem (tests/e2e/test_serve_two_host.cpp).
//
//   Relay relay({.listen = {"10.0.0.1", 9000}, .upstream = {"127.0.0.1", 8080}, .delay = 20ms});
//   ...; relay.stop();  // or the destructor
//
// A connection ends when both directions have delivered their end of stream; a client whose
// upstream refuses is closed at once. stop() stops accepting and cuts every open connection.
// Thread-safety: stats() from any thread; stop() from one.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "delayed_pipe.h"

namespace delay_relay {

struct Endpoint {
  std::string host;  // an IPv4 address
  int port = 0;
  // "HOST:PORT"; throws std::invalid_argument naming what is wrong.
  static Endpoint parse(const std::string& text);
};

struct RelayOptions {
  Endpoint listen;    // port 0: any free port (port() says which)
  Endpoint upstream;
  std::chrono::milliseconds delay{20};  // each direction
};

struct RelayStats {
  uint64_t connections = 0, refused = 0;  // accepted; of those, upstream refused
  uint64_t bytes_up = 0, bytes_down = 0;  // client -> upstream, upstream -> client (connections ended so far)
};

class Relay {
 public:
  explicit Relay(RelayOptions options);  // listens now; throws std::runtime_error if it cannot
  ~Relay();
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  int port() const { return port_; }
  void stop();
  RelayStats stats() const;

 private:
  struct Connection;
  void accept_loop();
  void reap(bool all);  // ends finished connections (every one if `all`), adding their bytes to stats_

  const RelayOptions options_;
  int listen_fd_ = -1, port_ = 0;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  std::list<std::unique_ptr<Connection>> connections_;
  RelayStats stats_;
  std::thread acceptor_;  // last: it uses everything above
};

}  // namespace delay_relay
