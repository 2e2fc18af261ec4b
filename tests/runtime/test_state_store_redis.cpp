// RedisStateStore against a real redis-server that each test starts on a free loopback port in a temp
// dir: a stored state comes back byte for byte (demo model, with its logits); the longest stored
// prefix is chosen (checked against a brute-force search over what was stored); corrupted, foreign
// and garbage values are refused, counted and deleted; Redis killed, restarted, wiped, replaced by a
// server that never answers or answers garbage: misses and no exceptions, then it works again;
// eviction under maxmemory allkeys-lru. Skips, saying so, only when redis-server is not installed.
#include <gtest/gtest.h>

#include <xxhash.h>

#include <atomic>
#include <chrono>
#include <map>
#include <random>
#include <thread>

#include "../pfaas/redis_server.h"
#include "linfer/core/error.h"
#include "linfer/model.h"
#include "runtime/state_store_redis.h"
#include "../loopback_listener.h"

using namespace linfer;
using pfaas_test::RedisServer;
using namespace std::chrono_literals;

namespace {

const std::string kSource = LINFER_SOURCE_DIR;

bool have_redis() { return RedisServer::available(); }

#define REQUIRE_REDIS()                                                                                   \
  if (!have_redis()) GTEST_SKIP() << "redis-server is not installed (Debian package redis-server: make deps)"

RedisStoreOptions options_for(int port) {
  RedisStoreOptions o;
  o.redis.port = port;
  o.redis.connect_timeout = 200ms;
  o.redis.io_timeout = 500ms;
  o.redis.retry_after = 100ms;
  return o;
}

// A small state spec; the contents of a state identify the tokens that made it.
StateSpec tiny_spec(int64_t fixed = 16) {
  StateSpec s;
  s.tensors.push_back({0, "rec.S", StateKind::Fixed, {fixed}, 0, "[N]"});
  s.tensors.push_back({1, "attn.kv", StateKind::Growing, {2}, 0, "[T, 2]"});
  return s;
}

SequenceState state_of(const StateSpec& spec, std::span<const int32_t> tokens) {
  SequenceState s(spec);
  std::mt19937 rng(uint32_t(XXH3_64bits(tokens.data(), tokens.size_bytes())));
  std::normal_distribution<float> n;
  for (int64_t k = 0; k < s.row_elems(0); ++k) s.data(0)[k] = n(rng);
  float* rows = s.append_rows(1, int64_t(tokens.size()));
  for (size_t t = 0; t < tokens.size(); ++t) {
    rows[2 * t] = float(tokens[t]);
    rows[2 * t + 1] = float(t);
  }
  s.set_n_tokens(int64_t(tokens.size()));
  return s;
}

std::vector<uint8_t> bytes_of(const SequenceState& s, const StateIdentity& id, const StateWriteOptions& o,
                              std::span<const float> logits = {}) {
  BufferSink b;
  write_state(b, s, id, o, logits);
  return b.take();
}

const StateIdentity kTiny{"tiny-0123456789abcdef", ""};

std::vector<int32_t> random_ids(size_t n, int32_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> v(n);
  for (auto& x : v) x = int32_t(rng() % uint32_t(vocab));
  return v;
}

// Direct access to the server, to inspect and tamper with values.
RedisReply command(int port, std::vector<std::string> argv) {
  RedisClient c(options_for(port).redis);
  std::vector<std::string_view> v(argv.begin(), argv.end());
  auto r = c.pipeline({v});
  EXPECT_TRUE(r.has_value()) << c.last_error();
  return r ? r->front() : RedisReply{};
}

}  // namespace

TEST(RedisStateStore, RoundTripGivesBackTheStateBytes) {
  REQUIRE_REDIS();
  RedisServer redis;
  ASSERT_TRUE(redis.start()) << redis.log();
  auto m = Model::load(kSource + "/models/demo");
  const StateIdentity id{m->fingerprint(), "tok"};
  auto ids = random_ids(300, int32_t(m->info().vocab_size), 1);
  SequenceState s(m->state_spec());
  std::vector<float> logits(size_t(m->info().vocab_size));
  SequenceState* st[] = {&s};
  m->forward(Batch::single(ids), st, logits.data(), Logits::Last);

  for (StateWriteOptions w : {StateWriteOptions{}, StateWriteOptions{.dtype = DType::BF16, .compress = true}}) {
    RedisStoreOptions o = options_for(redis.port());
    o.write = w;
    o.key_prefix = fmt::format("t{}{}", int(w.dtype), w.compress);
    RedisStateStore store(o, m->state_spec(), id);
    ASSERT_TRUE(store.store(ids, s, logits));
    const auto want = bytes_of(s, id, w, logits);
    // What Redis holds is the wire format of the state, as write_state gives it.
    RedisReply raw = command(redis.port(), {"GET", store.value_key(ids)});
    ASSERT_EQ(raw.type, RedisReply::Type::String);
    EXPECT_EQ(std::vector<uint8_t>(raw.str.begin(), raw.str.end()), want);
    auto hit = store.lookup(ids);
    ASSERT_TRUE(hit);
    EXPECT_EQ(hit->n_tokens, 300);
    EXPECT_EQ(bytes_of(hit->state, id, w, hit->logits), want);
    EXPECT_EQ(hit->logits, logits);
    auto st2 = store.stats();
    EXPECT_EQ(st2.hits, 1u);
    EXPECT_EQ(st2.stores, 1u);
    EXPECT_EQ(st2.failures, 0u);
  }
}

TEST(RedisStateStore, FindsTheLongestStoredPrefix) {
  REQUIRE_REDIS();
  RedisServer redis;
  ASSERT_TRUE(redis.start()) << redis.log();
  RedisStoreOptions o = options_for(redis.port());
  o.spacing = 16;
  o.write = {};
  const StateSpec spec = tiny_spec();
  RedisStateStore store(o, spec, kTiny);

  // A few conversations that share beginnings; snapshots at multiples of the spacing and at ends, as
  // prefill_cached takes them. The reference: every stored token sequence, searched by brute force.
  std::mt19937 rng(7);
  std::vector<std::vector<int32_t>> stored;
  auto put = [&](std::span<const int32_t> t) {
    ASSERT_TRUE(store.store(t, state_of(spec, t)));
    stored.emplace_back(t.begin(), t.end());
  };
  std::vector<std::vector<int32_t>> bases;
  for (int c = 0; c < 6; ++c) {
    std::vector<int32_t> t = c > 0 && c % 2 ? bases[size_t(c - 1)] : std::vector<int32_t>{};
    t.resize(t.size() / 2);  // odd ones branch off the previous one half way
    auto more = random_ids(20 + rng() % 60, 5, uint32_t(100 + c));
    t.insert(t.end(), more.begin(), more.end());
    bases.push_back(t);
    for (size_t m = 16; m <= t.size(); m += 16) put(std::span(t).first(m));
    if (t.size() % 16) put(t);
  }
  size_t checked_hits = 0;
  for (int q = 0; q < 60; ++q) {
    // Queries: a base, cut somewhere and continued randomly; sometimes a limit below the length.
    std::vector<int32_t> query = bases[rng() % bases.size()];
    query.resize(rng() % (query.size() + 1));
    auto tail = random_ids(rng() % 40, 5, uint32_t(1000 + q));
    query.insert(query.end(), tail.begin(), tail.end());
    int64_t limit = q % 3 == 0 ? int64_t(rng() % (query.size() + 1)) : -1;
    int64_t lim = limit < 0 ? int64_t(query.size()) : limit;
    int64_t want = 0;
    for (const auto& t : stored)
      if (int64_t(t.size()) <= lim && t.size() <= query.size() && std::equal(t.begin(), t.end(), query.begin()))
        want = std::max(want, int64_t(t.size()));
    auto hit = store.lookup(query, limit);
    SCOPED_TRACE(fmt::format("query {} of {} tokens, limit {}", q, query.size(), limit));
    if (want == 0) {
      EXPECT_FALSE(hit);
      continue;
    }
    ASSERT_TRUE(hit);
    EXPECT_EQ(hit->n_tokens, want);
    EXPECT_EQ(bytes_of(hit->state, kTiny, {}), bytes_of(state_of(spec, std::span(query).first(size_t(want))), kTiny, {}));
    ++checked_hits;
  }
  EXPECT_GT(checked_hits, 20u);
  EXPECT_EQ(store.stats().failures, 0u);
}

TEST(RedisStateStore, RefusesCorruptedForeignAndGarbageValues) {
  REQUIRE_REDIS();
  RedisServer redis;
  ASSERT_TRUE(redis.start()) << redis.log();
  RedisStoreOptions o = options_for(redis.port());
  o.spacing = 8;
  const StateSpec spec = tiny_spec();
  RedisStateStore store(o, spec, kTiny);
  auto ids = random_ids(20, 9, 3);
  ASSERT_TRUE(store.store(std::span(ids).first(8), state_of(spec, std::span(ids).first(8))));
  ASSERT_TRUE(store.store(ids, state_of(spec, ids)));
  const std::string key = store.value_key(ids);

  // Three kinds of bad value under the longest key: each time the store must fall back to the
  // shorter good prefix, count a refusal, and delete the bad value.
  RedisReply good = command(redis.port(), {"GET", key});
  ASSERT_EQ(good.type, RedisReply::Type::String);
  std::string flipped = good.str;
  flipped[flipped.size() / 2] ^= 0x04;
  BufferSink foreign;  // a valid state, but written for another model
  write_state(foreign, state_of(spec, ids), {"other-model-fedcba9876543210", ""}, o.write);
  std::string foreign_str(foreign.bytes().begin(), foreign.bytes().end());
  uint64_t refused = 0;
  for (const std::string& bad : {flipped, foreign_str, std::string("hello, not a state")}) {
    command(redis.port(), {"SET", key, bad});
    auto hit = store.lookup(ids);
    ASSERT_TRUE(hit);
    EXPECT_EQ(hit->n_tokens, 8);
    EXPECT_EQ(store.stats().refused, ++refused);
    EXPECT_EQ(command(redis.port(), {"EXISTS", key}).integer, 0) << "the bad value was not deleted";
  }
  EXPECT_EQ(store.stats().failures, 0u);
}

TEST(RedisStateStore, RedisKilledRestartedOrWipedGivesMissesNotErrors) {
  REQUIRE_REDIS();
  RedisServer redis;
  ASSERT_TRUE(redis.start()) << redis.log();
  const StateSpec spec = tiny_spec();
  RedisStateStore store(options_for(redis.port()), spec, kTiny);
  auto ids = random_ids(300, 50, 4);
  auto s = state_of(spec, ids);
  ASSERT_TRUE(store.store(ids, s));
  ASSERT_TRUE(store.lookup(ids));

  redis.kill();
  for (int i = 0; i < 5; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_FALSE(store.lookup(ids));
    EXPECT_FALSE(store.store(ids, s));
    // Bounded by the connect timeout (200 ms) or answered at once while waiting to reconnect; the
    // bound here only catches a hang.
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
    std::this_thread::sleep_for(60ms);
  }
  auto down = store.stats();
  EXPECT_GE(down.failures, 10u);
  EXPECT_GE(down.client.failures, 1u);

  ASSERT_TRUE(redis.start()) << redis.log();  // same port, empty (no persistence)
  std::this_thread::sleep_for(150ms);         // past retry_after
  EXPECT_FALSE(store.lookup(ids));            // wiped by the restart: a miss, not an error
  EXPECT_TRUE(store.store(ids, s));
  auto hit = store.lookup(ids);
  ASSERT_TRUE(hit);
  EXPECT_EQ(bytes_of(hit->state, kTiny, {}), bytes_of(s, kTiny, {}));
  EXPECT_GE(store.stats().client.connects, 2u);

  command(redis.port(), {"FLUSHALL"});
  uint64_t failures = store.stats().failures;
  EXPECT_FALSE(store.lookup(ids));
  EXPECT_EQ(store.stats().failures, failures);
}

namespace {

// A TCP server that accepts connections and either never answers or answers `reply` to anything.
class FakeServer {
 public:
  explicit FakeServer(std::string reply)
      : reply_(std::move(reply)), listener_([this](int c) {
          char buf[4096];
          if (!reply_.empty() && ::recv(c, buf, sizeof buf, 0) > 0)
            ::send(c, reply_.data(), reply_.size(), MSG_NOSIGNAL);
          clients_.push_back(c);  // held open: a silent server
        }) {}
  ~FakeServer() {
    listener_.stop();
    for (int c : clients_) ::close(c);
  }
  int port() const { return listener_.port(); }

 private:
  std::string reply_;
  std::vector<int> clients_;
  LoopbackListener listener_;
};

}  // namespace

TEST(RedisStateStore, ASilentOrGarbageServerGivesMissesWithinTheTimeout) {
  for (std::string reply : {std::string(), std::string("garbage that is not RESP\r\n")}) {
    SCOPED_TRACE(reply.empty() ? "silent" : "garbage");
    FakeServer fake(reply);
    const StateSpec spec = tiny_spec();
    RedisStateStore store(options_for(fake.port()), spec, kTiny);
    auto ids = random_ids(40, 9, 5);
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_FALSE(store.lookup(ids));
    EXPECT_FALSE(store.store(ids, state_of(spec, ids)));  // at once: down until retry_after
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
    auto st = store.stats();
    EXPECT_EQ(st.failures, 2u);
    EXPECT_EQ(st.client.failures, 1u);
    EXPECT_EQ(st.client.skipped, 1u);
  }
}

TEST(RedisStateStore, EvictionByAllkeysLruIsOnlyMisses) {
  REQUIRE_REDIS();
  RedisServer redis;
  ASSERT_TRUE(redis.start({"--maxmemory", "6mb", "--maxmemory-policy", "allkeys-lru"})) << redis.log();
  RedisStoreOptions o = options_for(redis.port());
  o.spacing = 64;
  o.write = {};  // f32, uncompressed: each value ~256 KiB of random floats
  const StateSpec spec = tiny_spec(64 << 10);
  RedisStateStore store(o, spec, kTiny);
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 60; ++i) {  // ~15 MiB into a 6 MiB Redis
    prompts.push_back(random_ids(100, 1000, uint32_t(200 + i)));
    EXPECT_TRUE(store.store(prompts.back(), state_of(spec, prompts.back()))) << store.stats().client.failures;
  }
  int hits = 0, misses = 0;
  for (const auto& p : prompts) {
    auto hit = store.lookup(p);
    if (!hit) {
      ++misses;
      continue;
    }
    ++hits;
    EXPECT_EQ(hit->n_tokens, 100);
    EXPECT_EQ(bytes_of(hit->state, kTiny, {}), bytes_of(state_of(spec, p), kTiny, {}));
  }
  EXPECT_GT(misses, 0) << "nothing was evicted: the test does not test eviction";
  EXPECT_GT(hits, 0);
  auto st = store.stats();
  EXPECT_EQ(st.failures, 0u);
  EXPECT_EQ(st.refused, 0u);
  // The ends index outlives some values: those lookups found the index entry and met a missing value.
  EXPECT_EQ(st.hits + st.vanished >= uint64_t(hits), true);
}
