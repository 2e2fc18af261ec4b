// RedisClient over hiredis' blocking API: redisConnectWithTimeout + redisSetTimeout bound every
// socket operation; commands are appended to the output buffer and flushed together, so a pipeline
// is one round trip.

#include "runtime/redis_client.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <charconv>

#include "linfer/core/error.h"

namespace linfer {

namespace {

timeval to_timeval(std::chrono::milliseconds ms) {
  return {static_cast<time_t>(ms.count() / 1000), static_cast<suseconds_t>((ms.count() % 1000) * 1000)};
}

RedisReply convert(const redisReply* r) {
  RedisReply out;
  switch (r->type) {
    case REDIS_REPLY_STRING: out.type = RedisReply::Type::String; break;
    case REDIS_REPLY_ARRAY: out.type = RedisReply::Type::Array; break;
    case REDIS_REPLY_INTEGER: out.type = RedisReply::Type::Integer; break;
    case REDIS_REPLY_STATUS: out.type = RedisReply::Type::Status; break;
    case REDIS_REPLY_ERROR: out.type = RedisReply::Type::Error; break;
    default: out.type = RedisReply::Type::Nil; break;
  }
  if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR)
    out.str.assign(r->str, r->len);
  if (r->type == REDIS_REPLY_INTEGER) out.integer = r->integer;
  if (r->type == REDIS_REPLY_ARRAY)
    for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(convert(r->element[i]));
  return out;
}

}  // namespace

RedisOptions RedisOptions::from_url(const std::string& url) {
  const std::string scheme = "redis://";
  LINFER_CHECK(url.rfind(scheme, 0) == 0, "state store '{}': expected redis://HOST[:PORT]", url);
  std::string rest = url.substr(scheme.size());
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  RedisOptions o;
  size_t colon = rest.rfind(':');
  o.host = rest.substr(0, colon);
  if (colon != std::string::npos) {
    std::string p = rest.substr(colon + 1);
    int port = 0;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
    LINFER_CHECK(ec == std::errc() && end == p.data() + p.size() && port > 0 && port < 65536,
                 "state store '{}': port '{}' is not a number in 1..65535", url, p);
    o.port = port;
  }
  LINFER_CHECK(!o.host.empty() && o.host.find_first_of("/@?") == std::string::npos,
               "state store '{}': expected redis://HOST[:PORT] (no user, database or options)", url);
  return o;
}

RedisClient::RedisClient(RedisOptions options) : options_(std::move(options)) {}

RedisClient::~RedisClient() {
  if (ctx_) redisFree(ctx_);
}

void RedisClient::drop(std::string why) {
  if (ctx_) redisFree(ctx_);
  ctx_ = nullptr;
  ++stats_.failures;
  last_error_ = std::move(why);
  down_until_ = std::chrono::steady_clock::now() + options_.retry_after;
}

bool RedisClient::connect() {
  if (ctx_) return true;
  if (std::chrono::steady_clock::now() < down_until_) {
    ++stats_.skipped;
    return false;
  }
  ctx_ = redisConnectWithTimeout(options_.host.c_str(), options_.port, to_timeval(options_.connect_timeout));
  if (!ctx_ || ctx_->err) {
    drop(fmt::format("cannot connect to redis://{}:{}: {}", options_.host, options_.port,
                     ctx_ ? ctx_->errstr : "out of memory"));
    return false;
  }
  if (redisSetTimeout(ctx_, to_timeval(options_.io_timeout)) != REDIS_OK) {
    drop(fmt::format("redis://{}:{}: cannot set the socket timeout", options_.host, options_.port));
    return false;
  }
  redisEnableKeepAlive(ctx_);
  ++stats_.connects;
  return true;
}

std::optional<std::vector<RedisReply>> RedisClient::pipeline(const std::vector<Command>& commands) {
  if (!connect()) return std::nullopt;
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const Command& c : commands) {
    argv.clear();
    lens.clear();
    for (std::string_view a : c) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    if (redisAppendCommandArgv(ctx_, int(argv.size()), argv.data(), lens.data()) != REDIS_OK) {
      drop(fmt::format("redis: {}", ctx_->errstr));
      return std::nullopt;
    }
  }
  std::vector<RedisReply> replies;
  replies.reserve(commands.size());
  for (size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(ctx_, &raw) != REDIS_OK || !raw) {
      // A timeout, a reset or bytes that are not RESP: the stream is out of step, start over.
      drop(fmt::format("redis://{}:{}: {}", options_.host, options_.port, ctx_->err ? ctx_->errstr : "no reply"));
      if (raw) freeReplyObject(raw);
      return std::nullopt;
    }
    auto* r = static_cast<redisReply*>(raw);
    replies.push_back(convert(r));
    freeReplyObject(r);
  }
  return replies;
}

}  // namespace linfer
