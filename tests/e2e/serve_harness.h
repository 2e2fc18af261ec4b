#pragma once
// Test harness for `linfer serve`: starts the server process on an ephemeral loopback port, waits for
// /health, and talks HTTP/1.1 to it over plain sockets (one connection per request, or a kept-open
// one); stops it with SIGTERM and reports the exit status. Also the place a later client test (the
// openai npm package, a load generator) can start a server from: ServeProcess::start(args) and
// port().

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "../child_process.h"

namespace serve_test {

struct HttpResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-case
  std::string body;                                          // de-chunked
  std::string header(const std::string& name) const {
    for (const auto& [k, v] : headers)
      if (k == name) return v;
    return {};
  }
  nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
  // SSE: the payload of each "data: ..." event, in order.
  std::vector<std::string> events() const {
    std::vector<std::string> out;
    size_t pos = 0;
    while (pos < body.size()) {
      size_t end = body.find("\n\n", pos);
      if (end == std::string::npos) end = body.size();
      const std::string ev = body.substr(pos, end - pos);
      if (ev.rfind("data: ", 0) == 0) out.push_back(ev.substr(6));
      pos = end + 2;
    }
    return out;
  }
};

inline int connect_to(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(uint16_t(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

inline bool send_all(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += size_t(n);
  }
  return true;
}

inline std::string request_text(const std::string& method, const std::string& path, const std::string& body,
                                 const std::vector<std::string>& headers, bool keep_alive = false) {
  std::string r = fmt::format("{} {} HTTP/1.1\r\nHost: 127.0.0.1\r\n", method, path);
  if (!keep_alive) r += "Connection: close\r\n";
  for (const auto& h : headers) r += h + "\r\n";
  if (!body.empty() || method == "POST") r += fmt::format("Content-Type: application/json\r\nContent-Length: {}\r\n", body.size());
  return r + "\r\n" + body;
}

// Parses one complete response from `raw` (as read until the server closed the connection).
inline HttpResponse parse_response(const std::string& raw) {
  HttpResponse r;
  const size_t head_end = raw.find("\r\n\r\n");
  if (raw.size() < 12 || head_end == std::string::npos) return r;
  r.status = std::atoi(raw.substr(9, 3).c_str());
  size_t pos = raw.find("\r\n") + 2;
  bool chunked = false;
  while (pos < head_end) {
    const size_t eol = raw.find("\r\n", pos);
    const std::string line = raw.substr(pos, eol - pos);
    const size_t colon = line.find(':');
    std::string k = line.substr(0, colon), v = line.substr(colon + 1);
    for (char& c : k) c = char(std::tolower(static_cast<unsigned char>(c)));
    while (!v.empty() && v[0] == ' ') v.erase(0, 1);
    if (k == "transfer-encoding" && v == "chunked") chunked = true;
    r.headers.emplace_back(k, v);
    pos = eol + 2;
  }
  const std::string body = raw.substr(head_end + 4);
  if (!chunked) {
    r.body = body;
    return r;
  }
  size_t p = 0;
  while (p < body.size()) {
    const size_t eol = body.find("\r\n", p);
    if (eol == std::string::npos) break;
    const size_t n = std::stoul(body.substr(p, eol - p), nullptr, 16);
    if (n == 0) break;
    r.body += body.substr(eol + 2, n);
    p = eol + 2 + n + 2;
  }
  return r;
}

inline HttpResponse http(int port, const std::string& method, const std::string& path, const std::string& body = "",
                         const std::vector<std::string>& headers = {}) {
  const int fd = connect_to(port);
  if (fd < 0) return {};
  send_all(fd, request_text(method, path, body, headers));
  std::string raw;
  char buf[65536];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) raw.append(buf, size_t(n));
  ::close(fd);
  return parse_response(raw);
}

inline HttpResponse post(int port, const std::string& path, const nlohmann::json& body,
                         const std::vector<std::string>& headers = {}) {
  return http(port, "POST", path, body.dump(), headers);
}

// A `linfer serve` child process on an ephemeral port (127.0.0.1 unless args say --host 0.0.0.0), in
// the network namespace of the thread that starts it; stderr goes to a file.
class ServeProcess {
 public:
  // args: everything after `linfer` (e.g. "--threads 2 serve --model DIR"); `--port 0` is added.
  bool start(const std::string& args, std::chrono::seconds timeout = std::chrono::seconds(120)) {
    log_ = (std::filesystem::temp_directory_path() / fmt::format("linfer_serve_{}_{}.log", ::getpid(), ++count()))
               .string();
    // stdout to /dev/null: a server left behind must not hold the test's output pipe open (ctest
    // waits for it); and it dies with the test process (PR_SET_PDEATHSIG), even if the test aborts.
    const std::string cmd = fmt::format("exec {} {} --port 0 >/dev/null 2>{}", LINFER_BIN, args, log_);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    return test_proc::wait_until_ready(pid_, timeout, [&] {
      if (port_ == 0) {
        const std::string text = log();
        // "listening on http://HOST:PORT" (HOST 127.0.0.1, or 0.0.0.0 for a server also reachable
        // from another network namespace: /health is asked on 127.0.0.1 either way)
        const size_t at = text.find("listening on http://");
        const size_t colon = at == std::string::npos ? at : text.find(':', at + 20);
        if (colon != std::string::npos) port_ = std::atoi(text.c_str() + colon + 1);
      }
      return port_ != 0 && http(port_, "GET", "/health").status == 200;
    });
  }
  int port() const { return port_; }
  std::string log() const {
    std::ifstream in(log_);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
  void signal(int sig) const {
    if (pid_ > 0) ::kill(pid_, sig);
  }
  // SIGTERM, then waits; returns the exit code (-1: killed by a signal or gone).
  int stop(std::chrono::seconds timeout = std::chrono::seconds(60)) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, SIGTERM);
    return wait(timeout);
  }
  int wait(std::chrono::seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
        return -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  ~ServeProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (!log_.empty()) std::remove(log_.c_str());
  }

 private:
  static int& count() {
    static int n = 0;
    return n;
  }
  pid_t pid_ = -1;
  int port_ = 0;
  std::string log_;
};

// A metric's value from /metrics text ("name" or "name{labels}"); nullopt if absent.
inline std::optional<double> metric(const std::string& text, const std::string& name) {
  size_t pos = 0;
  while ((pos = text.find(name + " ", pos)) != std::string::npos) {
    if (pos == 0 || text[pos - 1] == '\n') return std::stod(text.substr(pos + name.size() + 1));
    pos += name.size();
  }
  return std::nullopt;
}

}  // namespace serve_test
