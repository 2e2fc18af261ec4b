#pragma once
// A private redis-server for tests: a free loopback port, a temp dir, no persistence; restartable on
// the same port (empty again), killed when the object goes.
//
//   RedisServer redis;
//   if (!RedisServer::available()) GTEST_SKIP() << "redis-server is not installed";
//   ASSERT_TRUE(redis.start({"--maxmemory", "6mb"})) << redis.log();

#include <string>
#include <vector>

#include "../child_process.h"

namespace pfaas_test {

class RedisServer {
 public:
  RedisServer() : dir_("redis") {}
  static bool available() { return !test_proc::which("redis-server").empty(); }
  // Starts (or restarts, on the same port) redis-server with `extra` arguments.
  bool start(std::vector<std::string> extra = {}) {
    if (port_ == 0) port_ = test_proc::free_port();
    std::vector<std::string> argv = {"redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1",
                                     "--save", "", "--appendonly", "no", "--dir", dir_.path()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return proc_.start(argv, dir_ / "redis.log") && proc_.wait_for_port(port_);
  }
  void kill() { proc_.kill(); }
  int port() const { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }
  std::string log() const { return proc_.log(); }

 private:
  test_proc::TempDir dir_;
  test_proc::ChildProcess proc_;
  int port_ = 0;
};

}  // namespace pfaas_test
