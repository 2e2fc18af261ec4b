// fetch_prefill over a plain blocking socket: every wait goes through poll() with the time left
// before the deadline, and the HTTP body (chunked or with a length) is a Source the wire reader
// pulls from as bytes arrive.

#include "server/prefill_client.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "linfer/core/error.h"
#include "runtime/state_file.h"

namespace linfer::server {

namespace {

using Clock = std::chrono::steady_clock;

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// One connection to the node, every operation bounded by the deadline.
class Connection {
 public:
  Connection(const PrefillTarget& t, Clock::time_point deadline) : deadline_(deadline), name_(t.url()) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    const int rc = ::getaddrinfo(t.host.c_str(), std::to_string(t.port).c_str(), &hints, &res);
    LINFER_CHECK(rc == 0, "prefill node {}: cannot resolve '{}': {}", name_, t.host, gai_strerror(rc));
    std::string why = "no address";
    for (addrinfo* a = res; a && fd_ < 0; a = a->ai_next) {
      int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
      if (fd < 0) continue;
      if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0 || (errno == EINPROGRESS && wait(fd, POLLOUT))) {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err == 0) {
          fd_ = fd;
          break;
        }
        why = std::strerror(err);
      } else {
        why = errno == EINPROGRESS ? "timed out" : std::strerror(errno);
      }
      ::close(fd);
    }
    ::freeaddrinfo(res);
    LINFER_CHECK(fd_ >= 0, "prefill node {}: cannot connect: {}", name_, why);
  }
  ~Connection() {
    if (fd_ >= 0) ::close(fd_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void send_all(const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
      LINFER_CHECK(wait(fd_, POLLOUT), "prefill node {}: timed out sending the request", name_);
      ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      LINFER_CHECK(n > 0, "prefill node {}: cannot send: {}", name_, std::strerror(errno));
      off += size_t(n);
    }
  }
  // Up to n bytes (0 at end of stream); throws on timeout or error.
  size_t recv_some(void* data, size_t n) {
    while (true) {
      LINFER_CHECK(wait(fd_, POLLIN), "prefill node {}: timed out waiting for the state", name_);
      ssize_t r = ::recv(fd_, data, n, 0);
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      LINFER_CHECK(r >= 0, "prefill node {}: connection lost: {}", name_, std::strerror(errno));
      return size_t(r);
    }
  }
  const std::string& name() const { return name_; }

 private:
  bool wait(int fd, short events) {
    while (true) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now()).count();
      if (left <= 0) return false;
      pollfd p{fd, events, 0};
      int r = ::poll(&p, 1, int(std::min<int64_t>(left, 1000 * 1000)));
      if (r > 0) return true;
      if (r < 0 && errno != EINTR) return false;
    }
  }
  Clock::time_point deadline_;
  std::string name_;
  int fd_ = -1;
};

// The response: status and headers parsed up front, then the body as a Source (de-chunked).
class Response : public Source {
 public:
  explicit Response(Connection& c) : c_(c) {
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      LINFER_CHECK(buf_.size() < (64u << 10), "prefill node {}: response header too large", c_.name());
      LINFER_CHECK(fill(), "prefill node {}: closed the connection before answering", c_.name());
    }
    const std::string head = buf_.substr(0, end);
    buf_.erase(0, end + 4);
    LINFER_CHECK(head.rfind("HTTP/1.", 0) == 0 && head.size() >= 12, "prefill node {}: not an HTTP response",
                 c_.name());
    status_ = std::atoi(head.c_str() + 9);
    size_t pos = head.find("\r\n");
    while (pos != std::string::npos && pos < head.size()) {
      size_t eol = head.find("\r\n", pos + 2);
      std::string line = head.substr(pos + 2, (eol == std::string::npos ? head.size() : eol) - pos - 2);
      size_t colon = line.find(':');
      if (colon != std::string::npos) {
        std::string k = lower(line.substr(0, colon)), v = line.substr(colon + 1);
        while (!v.empty() && v.front() == ' ') v.erase(0, 1);
        if (k == "transfer-encoding" && lower(v).find("chunked") != std::string::npos) chunked_ = true;
        if (k == "content-length") left_ = std::strtoull(v.c_str(), nullptr, 10);
      }
      pos = eol;
    }
  }
  int status() const { return status_; }
  const std::string& name() const override { return c_.name(); }
  uint64_t wire_bytes() const { return wire_; }

  // The whole body (for error answers), at most `cap` bytes.
  std::string text(size_t cap) {
    std::string out(cap, '\0');
    size_t n = 0, k;
    while (n < cap && (k = get(out.data() + n, cap - n)) > 0) n += k;
    out.resize(n);
    return out;
  }

 protected:
  size_t get(void* data, size_t n) override {
    if (chunked_ && left_ == 0) {
      if (done_ || !next_chunk()) return 0;
    }
    if (!chunked_ && left_ == 0) return 0;
    if (buf_.empty() && !fill()) fail("prefill node {}: the connection closed in the middle of the state", c_.name());
    size_t k = std::min<uint64_t>({n, buf_.size(), left_});
    std::memcpy(data, buf_.data(), k);
    buf_.erase(0, k);
    left_ -= k;
    return k;
  }

 private:
  bool fill() {
    char tmp[1 << 16];
    size_t r = c_.recv_some(tmp, sizeof tmp);
    buf_.append(tmp, r);
    wire_ += r;
    return r > 0;
  }
  std::string line() {
    size_t eol;
    while ((eol = buf_.find("\r\n")) == std::string::npos) {
      LINFER_CHECK(buf_.size() < 4096, "prefill node {}: bad chunked encoding", c_.name());
      if (!fill()) fail("prefill node {}: the connection closed in the middle of the state", c_.name());
    }
    std::string l = buf_.substr(0, eol);
    buf_.erase(0, eol + 2);
    return l;
  }
  // Reads the next chunk's size line (after the previous chunk's CRLF); false at the last chunk.
  bool next_chunk() {
    if (started_) LINFER_CHECK(line().empty(), "prefill node {}: bad chunked encoding", c_.name());
    started_ = true;
    const std::string size = line();
    uint64_t n = 0;
    auto [p, ec] = std::from_chars(size.data(), size.data() + size.size(), n, 16);
    LINFER_CHECK(ec == std::errc() && p != size.data(), "prefill node {}: bad chunk size '{}'", c_.name(), size);
    if (n == 0) done_ = true;
    left_ = n;
    return n > 0;
  }

  Connection& c_;
  std::string buf_;
  int status_ = 0;
  bool chunked_ = false, started_ = false, done_ = false;
  uint64_t left_ = 0;  // of the current chunk, or of a Content-Length body
  uint64_t wire_ = 0;
};

}  // namespace

PrefillTarget PrefillTarget::from_url(const std::string& url) {
  const std::string scheme = "http://";
  LINFER_CHECK(url.rfind(scheme, 0) == 0, "prefill URL '{}': expected http://HOST[:PORT][/PATH]", url);
  std::string rest = url.substr(scheme.size());
  PrefillTarget t;
  size_t slash = rest.find('/');
  if (slash != std::string::npos && slash + 1 < rest.size()) t.path = rest.substr(slash);
  rest = rest.substr(0, slash);
  size_t colon = rest.rfind(':');
  if (colon != std::string::npos && rest.find(']', colon) == std::string::npos) {
    const std::string p = rest.substr(colon + 1);
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), t.port);
    LINFER_CHECK(ec == std::errc() && end == p.data() + p.size() && t.port > 0 && t.port < 65536,
                 "prefill URL '{}': port '{}' is not a number in 1..65535", url, p);
    rest = rest.substr(0, colon);
  }
  if (rest.size() > 2 && rest.front() == '[' && rest.back() == ']') rest = rest.substr(1, rest.size() - 2);
  LINFER_CHECK(!rest.empty(), "prefill URL '{}': no host", url);
  t.host = rest;
  return t;
}

std::string PrefillTarget::url() const {
  return fmt::format("http://{}:{}{}", host.find(':') != std::string::npos ? "[" + host + "]" : host, port, path);
}

RemoteState fetch_prefill(const PrefillTarget& node, std::span<const int32_t> prompt, const Model& model,
                          const Tokenizer* tok, const PrefillCallOptions& options) {
  const auto t0 = Clock::now();
  const StateIdentity id = state_identity(model, tok);
  const std::string body = nlohmann::json{{"prompt", std::vector<int32_t>(prompt.begin(), prompt.end())},
                                          {"model_fingerprint", id.model_fingerprint},
                                          {"format_version", kStateFormatVersion},
                                          {"bf16", options.bf16},
                                          {"zstd", options.zstd}}
                               .dump();
  Connection c(node, t0 + options.timeout);
  const std::string auth = options.api_key.empty() ? "" : "Authorization: Bearer " + options.api_key + "\r\n";
  c.send_all(fmt::format("POST {} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n"
                         "{}Connection: close\r\n\r\n",
                         node.path, node.host, node.port, body.size(), auth) +
             body);
  Response res(c);
  if (res.status() != 200) {
    std::string text = res.text(64 << 10), message = text;
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_object() && j.contains("error") && j["error"].is_object() && j["error"].contains("message"))
      message = j["error"]["message"].is_string() ? j["error"]["message"].get<std::string>() : text;
    fail("prefill node {} answered {}: {}{}", node.url(), res.status(), message,
         res.status() == 401 ? " (the decode node sends the key given by --prefill-api-key)" : "");
  }
  RemoteState out;
  StateReader reader(res);  // the header: the first bytes of the state
  out.first_byte_s = std::chrono::duration<double>(Clock::now() - t0).count();
  out.state = reader.read(model.state_spec(), id);
  out.logits = reader.logits();
  LINFER_CHECK(out.state.n_tokens() == int64_t(prompt.size()), "prefill node {}: the state holds {} tokens, the "
               "prompt has {}", node.url(), out.state.n_tokens(), prompt.size());
  LINFER_CHECK(int64_t(out.logits.size()) == model.info().vocab_size, "prefill node {}: the state carries {} logits, "
               "the vocabulary has {}", node.url(), out.logits.size(), model.info().vocab_size);
  out.bytes = res.n_bytes();
  out.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return out;
}

}  // namespace linfer::server
