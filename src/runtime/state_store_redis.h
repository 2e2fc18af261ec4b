#pragma once
// Prefix states shared between nodes through Redis: a state prefilled by any node is reused by every
// node serving the same model. Values are the wire format (docs/state-format.md, zstd by default),
// so each loaded value is checked by the reader (model fingerprint, layouts, per-record checksums)
// before use; a value that fails is refused, counted and deleted. Redis' own eviction
// (maxmemory-policy allkeys-lru) bounds the store; nothing here tracks sizes.
//
// Snapshots follow the prefix cache's rule (runtime/prefix_cache.h): at multiples of `spacing` and
// at request ends. Keys (P = options.key_prefix, v = wire format version, fp = model fingerprint,
// h(L) = XXH3-128 of tokens[0, L) as little-endian int32, in hex):
//   P:s<v>:<fp>:<L>:<h(L)>          the state after the first L tokens (+ their last logits, if given)
//   P:s<v>:<fp>:e:<b>:<h(b)>        request ends in (b, b + spacing), b a multiple of spacing: a sorted
//                                   set of "<L>:<h(L)>", newest first, trimmed to ends_per_bucket
// A lookup over a prompt of n tokens sends, in one pipelined round trip, EXISTS for each multiple of
// the spacing and ZREVRANGE for each bucket's ends (about 2 n / spacing commands), keeps the lengths
// whose hashes match its own prefix, then GETs the longest (the next one if it was evicted meanwhile).
//
//   RedisStateStore store({.redis = RedisOptions::from_url(url)}, model->state_spec(), identity);
//   if (auto hit = store.lookup(tokens, tokens.size() - 1)) resume_from(hit->state);
//   store.store(tokens.first(512), state_after_512);
//
// Failures never reach the caller: Redis down, slow, wiped or answering garbage make lookup() a
// miss and store() a no-op within the client's timeouts, counted in stats(). Thread-safety: every
// member may be called from several threads (one connection behind a mutex).

#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "linfer/state.h"
#include "runtime/redis_client.h"
#include "runtime/state_format.h"

namespace linfer {

struct RedisStoreOptions {
  RedisOptions redis;
  int64_t spacing = 256;             // as PrefixCacheOptions::spacing; must be the same on every node
  StateWriteOptions write{.compress = true};
  std::string key_prefix = "linfer";
  int64_t ttl_s = 0;                 // > 0: keys expire after this many seconds (0: eviction only)
  int64_t ends_per_bucket = 32;      // request ends remembered per bucket (the oldest are dropped)
  uint64_t max_value_bytes = 511ull << 20;  // Redis refuses values over 512 MB (proto-max-bulk-len)
};

struct RedisStoreStats {
  uint64_t lookups = 0;
  uint64_t hits = 0;
  uint64_t tokens_saved = 0;   // sum of the prefix lengths found
  uint64_t stores = 0;         // values written
  uint64_t bytes_stored = 0;
  uint64_t bytes_loaded = 0;
  uint64_t refused = 0;        // values that failed the reader's checks (deleted)
  uint64_t vanished = 0;       // values gone between the lookup and the GET (evicted, expired)
  uint64_t too_large = 0;      // states not stored: above max_value_bytes
  uint64_t failures = 0;       // lookups / stores that failed on Redis (down, timeout, garbage, error reply)
  RedisClientStats client;
};

// linfer_state_store_* counters in the Prometheus text format.
std::string prometheus_text(const RedisStoreStats& s);

struct StoredPrefix {
  int64_t n_tokens = 0;        // the state holds tokens [0, n_tokens)
  SequenceState state;
  std::vector<float> logits;   // the last token's logits, when the value carries them
};

class RedisStateStore {
 public:
  RedisStateStore(RedisStoreOptions options, const StateSpec& spec, StateIdentity id);

  // The longest stored prefix of `tokens` no longer than max_len (default: all of them), checked by
  // the wire reader; nullopt on a miss or any failure.
  std::optional<StoredPrefix> lookup(std::span<const int32_t> tokens, int64_t max_len = -1);
  // Stores `state`, which must hold exactly `tokens`; `logits` (may be empty) are its last token's.
  // Returns whether Redis took it.
  bool store(std::span<const int32_t> tokens, const SequenceState& state, std::span<const float> logits = {});

  const RedisStoreOptions& options() const { return options_; }
  RedisStoreStats stats() const;

  // The keys (exposed for tests and tools): a snapshot of the first n tokens, and the ends set of the
  // bucket that starts at b.
  std::string value_key(std::span<const int32_t> tokens) const;
  std::string ends_key(std::span<const int32_t> bucket_start) const;

 private:
  RedisStoreOptions options_;
  StateSpec spec_;
  StateIdentity id_;
  std::string base_;  // "P:s<v>:<fp>:"
  mutable std::mutex mu_;
  RedisClient client_;
  RedisStoreStats stats_;
};

}  // namespace linfer
