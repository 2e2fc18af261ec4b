#pragma once
// An HTTP/1.1 server on Boost.Asio / Beast: a few I/O threads run every connection asynchronously,
// so an open stream (SSE) costs a socket and a small object, never a thread — thousands of idle
// streaming clients do not starve new requests (docs/server.md says why this and not cpp-httplib).
// Requests are parsed with a body limit (oversized: 413) and handed to one HttpHandler.
//
//   HttpServer http(handler, {.max_body_bytes = 8 << 20});
//   uint16_t port = http.listen("127.0.0.1", 0);   // 0: an ephemeral port
//   http.start(2);                                 // I/O threads
//   ...
//   http.stop_accepting();
//   http.wait_idle(std::chrono::seconds(2));       // responses in flight finish
//   http.stop();
//
// Thread-safety: listen, start, stop_accepting, wait_idle and stop from one controlling thread.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "server/http.h"

namespace linfer::server {

struct HttpServerOptions {
  size_t max_body_bytes = size_t(8) << 20;
  std::chrono::seconds idle_timeout{60};   // a keep-alive connection with no request is closed
  std::chrono::seconds write_timeout{60};  // a client that reads nothing for this long is dropped
};

class HttpServer {
 public:
  HttpServer(HttpHandler handler, HttpServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens; returns the port (the chosen one when `port` is 0). Throws linfer::Error.
  uint16_t listen(const std::string& host, uint16_t port);
  void start(int io_threads);
  void stop_accepting();
  // Waits until no response is in flight, or `timeout` passes; returns whether it became idle.
  bool wait_idle(std::chrono::milliseconds timeout);
  void stop();  // closes every connection and joins the I/O threads

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace linfer::server
