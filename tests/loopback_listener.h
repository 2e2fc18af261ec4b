#pragma once
// A TCP listener on 127.0.0.1 at a free port whose own thread accepts connections and hands each one
// to `serve(fd)`, which owns the socket (closes it, or keeps it open). stop() (also run by the
// destructor) stops accepting and joins the thread: after it, `serve` runs no more.
//
//   LoopbackListener node([](int fd) { send(fd, "HTTP/1.1 200 OK\r\n...", ...); ::close(fd); });
//   connect_to(node.port());

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <thread>

class LoopbackListener {
 public:
  explicit LoopbackListener(std::function<void(int fd)> serve) : serve_(std::move(serve)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(fd_, 16);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] {
      for (int c; (c = ::accept(fd_, nullptr, nullptr)) >= 0;) serve_(c);
    });
  }
  ~LoopbackListener() { stop(); }
  void stop() {
    if (!thread_.joinable()) return;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  int port() const { return port_; }

 private:
  std::function<void(int fd)> serve_;
  int fd_ = -1, port_ = 0;
  std::thread thread_;
};
