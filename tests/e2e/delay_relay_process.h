#pragma once
// The delay_relay tool (tools/delay_relay, DELAY_RELAY_BIN set by CMake) as a child process of a
// test: started in the network namespace of the thread that starts it, dies with the test process
// (PR_SET_PDEATHSIG), killed and reaped when the object goes; stop() is the graceful way (SIGTERM)
// and returns the exit code.

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "../child_process.h"

class DelayRelayProcess {
 public:
  DelayRelayProcess() = default;
  DelayRelayProcess(const DelayRelayProcess&) = delete;
  DelayRelayProcess& operator=(const DelayRelayProcess&) = delete;
  ~DelayRelayProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (!log_.empty()) std::remove(log_.c_str());
  }

  // `delay_relay --listen LISTEN --to TO --delay-ms D`; true once it prints the port it listens on.
  bool start(const std::string& listen, const std::string& to, int delay_ms) {
    static int count = 0;
    log_ = (std::filesystem::temp_directory_path() / fmt::format("linfer_relay_{}_{}.log", ::getpid(), ++count)).string();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      FILE* f = std::fopen(log_.c_str(), "w");
      if (f) ::dup2(::fileno(f), 2);
      const std::string d = std::to_string(delay_ms);
      ::execl(DELAY_RELAY_BIN, "delay_relay", "--listen", listen.c_str(), "--to", to.c_str(), "--delay-ms", d.c_str(),
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    return test_proc::wait_until_ready(pid_, std::chrono::seconds(10), [&] {
      const std::string text = log();
      const size_t at = text.find("listening on ");
      const size_t colon = at == std::string::npos ? at : text.find(':', at);
      if (colon == std::string::npos || text.find(',', colon) == std::string::npos) return false;
      port_ = std::atoi(text.c_str() + colon + 1);
      return true;
    });
  }
  int port() const { return port_; }
  std::string log() const {
    std::ifstream in(log_);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
  // SIGTERM, then waits (SIGKILL after 10 s); the exit code, -1 if it was killed or is not running.
  int stop() {
    if (pid_ <= 0) return -1;
    ::kill(pid_, SIGTERM);
    int status = 0;
    pid_t reaped = 0;
    for (int i = 0; i < 1000 && (reaped = ::waitpid(pid_, &status, WNOHANG)) == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (reaped == 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      pid_ = -1;
      return -1;
    }
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  // Runs the tool with `args` to its end: {exit code, what it printed}.
  static std::pair<int, std::string> run(const std::string& args) {
    FILE* p = ::popen((std::string(DELAY_RELAY_BIN) + " " + args + " 2>&1").c_str(), "r");
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    const int status = ::pclose(p);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::string log_;
};
