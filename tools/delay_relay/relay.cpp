#include "relay.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <stdexcept>

namespace delay_relay {

namespace {

sockaddr_in address_of(const Endpoint& e) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(e.port));
  ::inet_pton(AF_INET, e.host.c_str(), &a.sin_addr);  // checked by Endpoint::parse
  return a;
}

// Owns a socket: closed when the owner goes, after the pipes that use it (declared after it).
struct Socket {
  int fd;
  explicit Socket(int f) : fd(f) {}
  ~Socket() { ::close(fd); }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
};

void no_delay(int fd) {  // the relay already decides when bytes go; Nagle would add to it
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

}  // namespace

Endpoint Endpoint::parse(const std::string& text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos) throw std::invalid_argument("'" + text + "': expected HOST:PORT");
  Endpoint e{text.substr(0, colon), 0};
  const std::string p = text.substr(colon + 1);
  auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), e.port);
  if (ec != std::errc() || end != p.data() + p.size() || e.port < 0 || e.port > 65535)
    throw std::invalid_argument("'" + text + "': the port must be a number in 0..65535");
  in_addr probe{};
  if (::inet_pton(AF_INET, e.host.c_str(), &probe) != 1)
    throw std::invalid_argument("'" + text + "': the host must be an IPv4 address such as 127.0.0.1");
  return e;
}

struct Relay::Connection {
  Socket client, upstream;
  DelayedPipe up, down;
  Connection(int c, int u, std::chrono::milliseconds delay)
      : client(c), upstream(u), up(c, u, delay), down(u, c, delay) {}
  bool finished() const { return up.finished() && down.finished(); }
};

Relay::Relay(RelayOptions options) : options_(std::move(options)) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr = address_of(options_.listen);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listen_fd_, 64) != 0) {
    const std::string why = std::strerror(errno);
    ::close(listen_fd_);
    throw std::runtime_error("cannot listen on " + options_.listen.host + ":" + std::to_string(options_.listen.port) +
                             ": " + why);
  }
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

Relay::~Relay() { stop(); }

void Relay::stop() {
  if (!acceptor_.joinable()) return;
  stopping_ = true;  // the acceptor sees it within its poll interval
  acceptor_.join();
  ::close(listen_fd_);
  reap(true);
}

RelayStats Relay::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void Relay::accept_loop() {
  while (true) {
    pollfd p{listen_fd_, POLLIN, 0};
    const int r = ::poll(&p, 1, 100);  // also the pace at which finished connections are reaped
    if (stopping_) return;
    reap(false);
    if (r <= 0) continue;
    const int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) {  // e.g. out of file descriptors: wait for connections to end
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    const int u = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in to = address_of(options_.upstream);
    std::lock_guard lock(mu_);
    ++stats_.connections;
    if (::connect(u, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
      ++stats_.refused;
      ::close(u);
      ::close(c);
      continue;
    }
    no_delay(c);
    no_delay(u);
    connections_.push_back(std::make_unique<Connection>(c, u, options_.delay));
  }
}

void Relay::reap(bool all) {
  std::list<std::unique_ptr<Connection>> done;
  {
    std::lock_guard lock(mu_);
    for (auto it = connections_.begin(); it != connections_.end();) {
      auto next = std::next(it);
      if (all || (*it)->finished()) done.splice(done.end(), connections_, it);
      it = next;
    }
  }
  for (auto& c : done) {  // cut (stop) or already over; destroying joins the pipes' threads
    c->up.abort();
    c->down.abort();
  }
  std::lock_guard lock(mu_);
  for (auto& c : done) {
    stats_.bytes_up += c->up.bytes();
    stats_.bytes_down += c->down.bytes();
  }
}

}  // namespace delay_relay
