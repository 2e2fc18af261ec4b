#pragma once
// The HTTP seam between the network code (server/http_server.cpp, Boost.Beast) and the API handlers
// (server/api*.cpp), which never see a socket: a parsed request in, a Responder out. A Responder
// either sends one whole response or streams one (chunked transfer encoding, for SSE).
//
//   void handle(HttpRequest req, std::shared_ptr<Responder> res) {
//     res->start_stream(200, "text/event-stream");
//     res->write("data: {}\n\n");           // from any thread, any time later
//     res->end();
//   }
//
// Thread-safety: every Responder member may be called from any thread; calls take effect in the
// order they were made. Calls after the client has gone away are ignored.

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace linfer::server {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query as sent
  std::string path;    // target without the query
  HttpHeaders headers; // names lower-cased
  std::string body;

  // The value of a header ("" if absent); `name` lower-case.
  std::string header(std::string_view name) const {
    for (const auto& [k, v] : headers)
      if (k == name) return v;
    return {};
  }
};

class Responder {
 public:
  virtual ~Responder() = default;
  virtual void send(int status, std::string content_type, std::string body, HttpHeaders extra = {}) = 0;
  virtual void start_stream(int status, std::string content_type, HttpHeaders extra = {}) = 0;
  virtual void write(std::string data) = 0;  // one chunk of a started stream
  // Blocks the calling thread while more than `bytes` of written chunks wait for the client to read
  // them, so a producer cannot outrun a slow reader into unbounded memory; returns false once the
  // client is gone or has drained nothing for the server's write timeout. For worker threads: never
  // call it on a network thread.
  virtual bool wait_below(size_t bytes) = 0;
  virtual void end() = 0;                    // the stream's last chunk
  // `fn` runs once (on a network thread) if the client goes away before the response is complete;
  // at once if it already has.
  virtual void on_disconnect(std::function<void()> fn) = 0;
};

using HttpHandler = std::function<void(HttpRequest, std::shared_ptr<Responder>)>;

}  // namespace linfer::server
