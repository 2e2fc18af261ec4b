// HttpServer on Boost.Asio / Beast. One Session per connection, all of its work on its own strand:
//   read header (idle timeout) -> [413 if the declared body is too large; "100 Continue" if asked]
//   -> read body -> handler -> the handler's Responder calls, queued in order, written one at a time
//   -> next request (keep-alive) or close.
// While a response is in flight, a wait for readability on the socket notices a client that hangs
// up (EOF or reset), so the engine can cancel its request within an iteration. Responses are written
// as raw HTTP/1.1 bytes (Beast parses requests; writing a status line and headers needs no help).

#include "server/http_server.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <fmt/format.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include "linfer/core/error.h"

namespace linfer::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

struct HttpServer::Impl {
  HttpHandler handler;
  HttpServerOptions opt;
  // Before the io_context: sessions still queued in it when it is destroyed update these.
  std::mutex mu;
  std::condition_variable idle_cv;
  int in_flight = 0;  // requests handed to the handler whose response is not finished
  net::io_context ioc;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  tcp::acceptor acceptor{ioc};
  std::vector<std::thread> threads;

  void accept();
  void begin_request() {
    std::lock_guard lock(mu);
    ++in_flight;
  }
  void end_request() {
    std::lock_guard lock(mu);
    --in_flight;
    idle_cv.notify_all();
  }
};

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string head(int status, const std::string& content_type, const HttpHeaders& extra, bool keep_alive,
                 std::optional<size_t> content_length) {
  std::string h = fmt::format("HTTP/1.1 {} {}\r\nContent-Type: {}\r\n", status,
                              std::string(http::obsolete_reason(http::int_to_status(unsigned(status)))), content_type);
  if (content_length) h += fmt::format("Content-Length: {}\r\n", *content_length);
  else h += "Transfer-Encoding: chunked\r\nCache-Control: no-cache\r\n";
  h += keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
  for (const auto& [k, v] : extra) h += fmt::format("{}: {}\r\n", k, v);
  h += "\r\n";
  return h;
}

class Session : public Responder, public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, HttpServer::Impl& server) : stream_(std::move(socket)), srv_(server) {}
  ~Session() override { finish_counting(); }

  void run() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read_header(); });
  }

  // ---- Responder: every call hops onto the session's strand, in call order ---------------------------
  void send(int status, std::string content_type, std::string body, HttpHeaders extra) override {
    post([status, ct = std::move(content_type), body = std::move(body), extra = std::move(extra)](Session& s) mutable {
      if (s.state_ != State::Handling) return;
      s.queue(head(status, ct, extra, s.keep_alive_, body.size()) + body);
      s.state_ = State::Done;
    });
  }
  void start_stream(int status, std::string content_type, HttpHeaders extra) override {
    post([status, ct = std::move(content_type), extra = std::move(extra)](Session& s) {
      if (s.state_ != State::Handling) return;
      s.queue(head(status, ct, extra, s.keep_alive_, std::nullopt));
      s.state_ = State::Streaming;
    });
  }
  void write(std::string data) override {
    if (data.empty()) return;  // an empty chunk would end the stream
    std::string chunk = fmt::format("{:x}\r\n{}\r\n", data.size(), data);
    const size_t n = chunk.size();
    {
      std::lock_guard lock(pending_mu_);
      pending_ += n;
    }
    post([chunk = std::move(chunk), n](Session& s) mutable {
      if (s.state_ == State::Streaming) s.queue(std::move(chunk), n);
      else s.sent(n);
    });
  }
  bool wait_below(size_t bytes) override {
    // Bounded like the socket writes: a client that drains nothing for the write timeout counts as gone
    // (and a stopped server cannot leave the caller waiting).
    std::unique_lock lock(pending_mu_);
    return pending_cv_.wait_for(lock, srv_.opt.write_timeout, [&] { return pending_ <= bytes || client_gone_; }) &&
           !client_gone_;
  }
  void end() override {
    post([](Session& s) {
      if (s.state_ != State::Streaming) return;
      s.queue("0\r\n\r\n");
      s.state_ = State::Done;
    });
  }
  void on_disconnect(std::function<void()> fn) override {
    post([fn = std::move(fn)](Session& s) mutable {
      if (s.gone_) fn();
      else s.disconnect_ = std::move(fn);
    });
  }

 private:
  enum class State { Reading, Handling, Streaming, Done, Closed };

  template <class F>
  void post(F&& f) {
    net::post(stream_.get_executor(), [self = shared_from_this(), f = std::forward<F>(f)]() mutable { f(*self); });
  }

  void read_header() {
    state_ = State::Reading;
    parser_.emplace();
    parser_->header_limit(64 * 1024);
    parser_->body_limit(srv_.opt.max_body_bytes);
    stream_.expires_after(srv_.opt.idle_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
  }

  void on_header(beast::error_code ec) {
    if (ec) return reject_or_close(ec);
    auto& msg = parser_->get();
    const auto length = parser_->content_length();
    if (length && *length > srv_.opt.max_body_bytes) return reject_too_large();
    if (lower(std::string(msg[http::field::expect])) == "100-continue") {
      // Answer before the client sends the body (curl waits a second otherwise).
      interim_ = "HTTP/1.1 100 Continue\r\n\r\n";
      stream_.expires_after(srv_.opt.write_timeout);
      net::async_write(stream_, net::buffer(interim_), [self = shared_from_this()](beast::error_code ec, size_t) {
        if (ec) return self->close();
        self->read_body();
      });
      return;
    }
    read_body();
  }

  void read_body() {
    stream_.expires_after(srv_.opt.idle_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->on_body(ec); });
  }

  void on_body(beast::error_code ec) {
    if (ec) return reject_or_close(ec);
    auto& msg = parser_->get();
    HttpRequest req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    req.path = req.target.substr(0, req.target.find('?'));
    for (const auto& f : msg) req.headers.emplace_back(lower(std::string(f.name_string())), std::string(f.value()));
    req.body = std::move(msg.body());
    keep_alive_ = msg.keep_alive();
    state_ = State::Handling;
    counted_ = true;
    srv_.begin_request();
    stream_.expires_never();
    watch();
    try {
      srv_.handler(std::move(req), shared_from_this());
    } catch (const std::exception& e) {
      send(500, "application/json", "{\"error\":{\"message\":\"internal error\",\"type\":\"server_error\",\"code\":500}}", {});
    }
  }

  // A malformed request or a body over the limit: answer and close; anything else just closes.
  void reject_or_close(beast::error_code ec) {
    if (ec == http::error::body_limit) return reject_too_large();
    const bool http_error = ec.category() == http::make_error_code(http::error::bad_target).category();
    if (http_error && ec != http::error::end_of_stream && ec != http::error::partial_message)
      return respond_and_close(400, "malformed HTTP request");
    close();
  }

  void reject_too_large() {
    respond_and_close(413, fmt::format("the request body is larger than this server's limit of {} bytes",
                                       srv_.opt.max_body_bytes));
  }

  void respond_and_close(int status, const std::string& message) {
    keep_alive_ = false;
    state_ = State::Done;
    const std::string body = fmt::format(
        "{{\"error\":{{\"message\":\"{}\",\"type\":\"invalid_request_error\",\"code\":{}}}}}", message, status);
    queue(head(status, "application/json", {}, false, body.size()) + body);
  }

  // `counted` of the bytes are a written chunk's, which wait_below() waits for.
  void queue(std::string bytes, size_t counted = 0) {
    out_.push_back({std::move(bytes), counted});
    if (!writing_) write_next();
  }

  void sent(size_t counted) {
    if (counted == 0) return;
    std::lock_guard lock(pending_mu_);
    pending_ -= counted;
    pending_cv_.notify_all();
  }

  void write_next() {
    if (out_.empty()) {
      writing_ = false;
      if (state_ == State::Done) response_written();
      return;
    }
    writing_ = true;
    stream_.expires_after(srv_.opt.write_timeout);
    net::async_write(stream_, net::buffer(out_.front().bytes), [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->lost();
      self->sent(self->out_.front().counted);
      self->out_.pop_front();
      self->write_next();
    });
  }

  void response_written() {
    finish_counting();
    disconnect_ = nullptr;
    if (watching_) {
      ++watch_gen_;  // the pending wait's completion is stale now
      beast::error_code ignored;
      stream_.socket().cancel(ignored);
      watching_ = false;
    }
    if (!keep_alive_) return drain_and_close();
    read_header();
  }

  // Watches for the client hanging up while its response is being prepared or streamed.
  void watch() {
    watching_ = true;
    const uint64_t gen = ++watch_gen_;
    stream_.socket().async_wait(tcp::socket::wait_read, [self = shared_from_this(), gen](beast::error_code ec) {
      self->on_readable(ec, gen);
    });
  }

  void on_readable(beast::error_code ec, uint64_t gen) {
    if (gen != watch_gen_) return;
    watching_ = false;
    if (ec == net::error::operation_aborted) return;
    if (state_ != State::Handling && state_ != State::Streaming) return;
    if (ec) return lost();
    char c;
    beast::error_code pe, ignored;
    auto& sock = stream_.socket();
    sock.non_blocking(true, ignored);
    const size_t n = sock.receive(net::buffer(&c, 1), tcp::socket::message_peek, pe);
    sock.non_blocking(false, ignored);
    if (pe == net::error::would_block || pe == net::error::try_again) return watch();  // spurious wake-up
    if (pe || n == 0) return lost();  // EOF or reset: the client is gone
    // Otherwise the client sent its next request already (pipelining): it is read after this response.
  }

  void lost() {
    if (gone_) return;
    gone_ = true;
    {
      std::lock_guard lock(pending_mu_);
      client_gone_ = true;
      pending_cv_.notify_all();
    }
    finish_counting();
    if (auto fn = std::move(disconnect_)) fn();
    close();
  }

  // After a "Connection: close" response: stop sending, read and discard what the client still sends
  // (the rest of an oversized body) so that closing does not reset the connection under the response.
  void drain_and_close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    state_ = State::Closed;
    drain_.resize(16 * 1024);
    drain_more(0);
  }
  void drain_more(size_t total) {
    if (total > (size_t(64) << 20)) return close();
    stream_.expires_after(std::chrono::seconds(2));
    stream_.async_read_some(net::buffer(drain_), [self = shared_from_this(), total](beast::error_code ec, size_t n) {
      if (ec) return self->close();
      self->drain_more(total + n);
    });
  }

  void close() {
    state_ = State::Closed;
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  void finish_counting() {
    if (counted_) {
      counted_ = false;
      srv_.end_request();
    }
  }

  beast::tcp_stream stream_;
  HttpServer::Impl& srv_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  State state_ = State::Reading;
  bool keep_alive_ = true;
  bool writing_ = false;
  bool watching_ = false;
  bool gone_ = false;
  bool counted_ = false;
  uint64_t watch_gen_ = 0;
  struct Out {
    std::string bytes;
    size_t counted;
  };
  std::deque<Out> out_;
  std::mutex pending_mu_;  // guards pending_ and client_gone_, which worker threads wait on
  std::condition_variable pending_cv_;
  size_t pending_ = 0;  // bytes of write() chunks not yet handed to the socket
  bool client_gone_ = false;
  std::string interim_;
  std::vector<char> drain_;
  std::function<void()> disconnect_;
};

}  // namespace

void HttpServer::Impl::accept() {
  acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
    if (!ec) {
      beast::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);  // SSE chunks are small: send each at once
      std::make_shared<Session>(std::move(socket), *this)->run();
    }
    accept();
  });
}

HttpServer::HttpServer(HttpHandler handler, HttpServerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->handler = std::move(handler);
  impl_->opt = options;
}

HttpServer::~HttpServer() { stop(); }

uint16_t HttpServer::listen(const std::string& host, uint16_t port) {
  beast::error_code ec;
  const auto address = net::ip::make_address(host, ec);
  LINFER_CHECK(!ec, "--host: '{}' is not an IP address ({})", host, ec.message());
  const tcp::endpoint ep(address, port);
  auto& a = impl_->acceptor;
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(net::socket_base::max_listen_connections, ec);
  LINFER_CHECK(!ec, "cannot listen on {}:{}: {}", host, port, ec.message());
  return a.local_endpoint().port();
}

void HttpServer::start(int io_threads) {
  impl_->work.emplace(net::make_work_guard(impl_->ioc));
  impl_->accept();
  for (int i = 0; i < std::max(io_threads, 1); ++i) impl_->threads.emplace_back([this] { impl_->ioc.run(); });
}

void HttpServer::stop_accepting() {
  net::post(impl_->ioc, [this] {
    beast::error_code ignored;
    impl_->acceptor.close(ignored);
  });
}

bool HttpServer::wait_idle(std::chrono::milliseconds timeout) {
  std::unique_lock lock(impl_->mu);
  return impl_->idle_cv.wait_for(lock, timeout, [&] { return impl_->in_flight == 0; });
}

void HttpServer::stop() {
  if (!impl_) return;
  impl_->work.reset();
  impl_->ioc.stop();
  for (auto& t : impl_->threads)
    if (t.joinable()) t.join();
  impl_->threads.clear();
}

}  // namespace linfer::server
