#pragma once
// A small blocking Redis client (hiredis underneath) for a cache that must never hurt the request
// using it: every call is bounded by timeouts, pipelines its commands in one round trip, and turns
// any failure (refused, timed out, reset, protocol garbage) into "no result" instead of an exception.
// After a failure the connection stays down for `retry_after`, answering at once, then reconnects.
//
//   RedisClient redis(RedisOptions::from_url("redis://127.0.0.1:6379"));
//   auto replies = redis.pipeline({{"EXISTS", key1}, {"EXISTS", key2}});
//   if (!replies) { /* Redis unavailable: carry on without it */ }
//
// Thread-safety: none; one thread at a time (the state store wraps it in a mutex).

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct redisContext;

namespace linfer {

struct RedisOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::chrono::milliseconds connect_timeout{200};
  std::chrono::milliseconds io_timeout{1000};    // per read / write on the socket
  std::chrono::milliseconds retry_after{1000};   // after a failure, how long calls answer "down" at once

  // "redis://HOST:PORT" or "redis://HOST" (port 6379); throws Error naming what is wrong.
  static RedisOptions from_url(const std::string& url);
};

struct RedisReply {
  enum class Type { String, Array, Integer, Nil, Status, Error };
  Type type = Type::Nil;
  std::string str;        // String, Status, Error
  int64_t integer = 0;    // Integer
  std::vector<RedisReply> elements;  // Array
};

struct RedisClientStats {
  uint64_t failures = 0;     // calls that failed: connect, timeout, reset, protocol error
  uint64_t skipped = 0;      // calls answered "down" at once while waiting to reconnect
  uint64_t connects = 0;     // successful connections (the first one included)
};

class RedisClient {
 public:
  using Command = std::vector<std::string_view>;  // argv: binary-safe

  explicit RedisClient(RedisOptions options);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Sends every command, then reads one reply per command. nullopt when Redis is unavailable or
  // the exchange fails part-way (the connection is then dropped). Error replies (e.g. OOM) are
  // replies, not failures.
  std::optional<std::vector<RedisReply>> pipeline(const std::vector<Command>& commands);

  const RedisOptions& options() const { return options_; }
  RedisClientStats stats() const { return stats_; }
  const std::string& last_error() const { return last_error_; }

 private:
  bool connect();
  void drop(std::string why);

  RedisOptions options_;
  redisContext* ctx_ = nullptr;
  std::chrono::steady_clock::time_point down_until_{};
  RedisClientStats stats_;
  std::string last_error_;
};

}  // namespace linfer
