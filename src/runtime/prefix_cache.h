#pragma once
// Prefix-state cache: snapshots of a SequenceState keyed by the exact token prefix that produced
// them. A request whose prompt extends a cached prefix resumes from the longest one and computes only
// the rest. Snapshots are taken every `spacing` tokens while prefilling and at each request's end;
// least-recently-used entries are evicted to stay under a byte budget.
//
//   PrefixCache cache({.byte_budget = 2ull << 30, .spacing = 256});
//   SequenceState s(model.state_spec());
//   prefill_cached(model, cache, prompt, s, logits.data());   // resumes, snapshots, returns logits
//   auto st = cache.stats();                                  // hits, tokens_saved, bytes, ...
//
// Thread-safety: every member is safe to call from several threads (one mutex).

#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "linfer/model.h"
#include "linfer/state.h"

namespace linfer {

struct PrefixCacheOptions {
  size_t byte_budget = size_t(1) << 30;  // states + keys
  int64_t spacing = 256;                 // snapshot every this many tokens while prefilling (0: never)
};

struct PrefixCacheStats {
  uint64_t lookups = 0;
  uint64_t hits = 0;          // lookups that found a prefix of at least one token
  uint64_t tokens_saved = 0;  // sum of the prefix lengths found
  uint64_t inserts = 0;
  uint64_t evictions = 0;
  size_t bytes = 0;           // held now
  size_t entries = 0;
};

struct PrefixHit {
  int64_t n_tokens = 0;  // the prefix length: the state holds tokens [0, n_tokens)
  SequenceState state;   // a copy: the caller continues from it
};

class PrefixCache {
 public:
  explicit PrefixCache(PrefixCacheOptions options = {});

  // The longest cached prefix of `tokens` no longer than max_len (default: all of them). A caller
  // that needs the logits of the prompt's last token passes tokens.size() - 1.
  std::optional<PrefixHit> lookup(std::span<const int32_t> tokens,
                                  int64_t max_len = -1);
  // Stores a copy of `state`, which must hold exactly `tokens`. An existing entry is refreshed.
  void insert(std::span<const int32_t> tokens, const SequenceState& state);

  const PrefixCacheOptions& options() const { return options_; }
  PrefixCacheStats stats() const;
  void clear();

 private:
  struct Entry {
    std::vector<int32_t> tokens;
    SequenceState state;
    size_t bytes;
  };
  using Lru = std::list<Entry>;  // front: most recently used
  void evict_to(size_t budget);

  PrefixCacheOptions options_;
  mutable std::mutex mu_;
  Lru lru_;
  std::unordered_multimap<uint64_t, Lru::iterator> by_hash_;  // XXH3 of the token prefix
  std::unordered_map<int64_t, int64_t> length_count_;         // prefix length -> entries
  PrefixCacheStats stats_;
};

// Advances `state` through `tokens` (the whole prompt, of which the state may already hold a
// prefix: state.n_tokens() tokens), resuming from the longest cached prefix when that is further
// along, snapshotting into the cache at multiples of the spacing and at the end. Writes the last
// token's logits ([vocab]) if `logits` is not null. Returns the number of tokens actually computed.
int64_t prefill_cached(const Model& model, PrefixCache& cache, std::span<const int32_t> tokens,
                       SequenceState& state, float* logits);

}  // namespace linfer
