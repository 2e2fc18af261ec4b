#pragma once
// Prefix-state cache: snapshots of a SequenceState keyed by the exact token prefix that produced
// them. A request whose prompt extends a cached prefix resumes from the longest one and computes only
// the rest. Snapshots are taken every `spacing` tokens while prefilling and at each request's end;
// least-recently-used entries are evicted to stay under a byte budget.
//
// An entry holds its state in one of two places: host memory (a SequenceState: what insert() stores,
// e.g. a state fetched from a prefill node or restored from disk), or a spare slot of the serving
// engine's state pool, where the model runs (what insert_slot() stores: a finished request's state,
// copied slot to slot on the device, never through the host). Both count against the one budget.
//
//   PrefixCache cache({.byte_budget = 2ull << 30, .spacing = 256});
//   SequenceState s(model.state_spec());
//   prefill_cached(model, cache, prompt, s, logits.data());   // resumes, snapshots, returns logits
//   auto st = cache.stats();                                  // hits, tokens_saved, bytes, ...
//
//   cache.attach_slots(pool.slots(), pool.n_slots(), pool.n_spare(), slot_bytes, kv_bytes_per_token);
//   cache.insert_slot(tokens, slot);                          // engine thread: slot -> a spare slot
//   int64_t n = cache.restore(prompt, prompt.size() - 1, slot2);  // the longest prefix into slot2
//
// Thread-safety: every member is safe to call from several threads (one mutex); attach_slots,
// insert_slot and restore touch the pool's slots and belong to the one thread that owns the pool.

#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "linfer/model.h"
#include "linfer/state.h"
#include "linfer/state_slots.h"

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
  size_t slot_entries = 0;    // of the entries, those held in spare slots of the pool
  size_t slots = 0;           // spare slots attached (attach_slots)
};

struct PrefixHit {
  int64_t n_tokens = 0;  // the prefix length: the state holds tokens [0, n_tokens)
  SequenceState state;   // a copy: the caller continues from it
};

class PrefixCache {
 public:
  explicit PrefixCache(PrefixCacheOptions options = {});

  // A copy of the longest host-held prefix of `tokens` no longer than max_len (default: all of them).
  // A caller that needs the logits of the prompt's last token passes tokens.size() - 1.
  std::optional<PrefixHit> lookup(std::span<const int32_t> tokens,
                                  int64_t max_len = -1);
  // The length of the longest cached prefix, wherever it is held (0: none). Counts no lookup.
  int64_t longest(std::span<const int32_t> tokens, int64_t max_len = -1) const;
  // Stores a copy of `state`, which must hold exactly `tokens`. An existing entry is refreshed.
  void insert(std::span<const int32_t> tokens, const SequenceState& state);

  // Slots [first, first + n) of `slots` are the cache's to fill (the pool's owner never uses them).
  // fixed_bytes: a slot's Fixed and Ring bytes; kv_bytes_per_token: one row of every Growing tensor.
  void attach_slots(StateSlots& slots, int first, int n, size_t fixed_bytes, size_t kv_bytes_per_token);
  // Stores a copy of pool slot `from`, which must hold exactly `tokens`, in a spare slot (evicting the
  // least recently used slot-held entry when none is free). An existing entry is refreshed. A copy that
  // throws (out of device memory for a cache's rows) leaves no entry and the spare slot free.
  void insert_slot(std::span<const int32_t> tokens, int from);
  // Pool slot `to` takes the longest cached prefix of `tokens` no longer than max_len, from a spare
  // slot or from host memory. Returns its length; 0 when there is none (the slot is left alone). A copy
  // that throws may leave the slot holding part of a state: reset it.
  int64_t restore(std::span<const int32_t> tokens, int64_t max_len, int to);

  const PrefixCacheOptions& options() const { return options_; }
  PrefixCacheStats stats() const;
  void clear();

 private:
  struct Entry {
    std::vector<int32_t> tokens;
    SequenceState state;  // host-held (slot < 0)
    int slot = -1;        // else: the spare slot holding it
    size_t bytes;
  };
  using Lru = std::list<Entry>;  // front: most recently used
  // The longest entry that is a prefix of tokens[0, max_len) (and host-held, if asked); lru_.end()
  // when none.
  Lru::const_iterator find_longest(std::span<const int32_t> tokens, int64_t max_len, bool host_only) const;
  // Refreshes the entry of exactly `tokens` if there is one (same tokens, same state); says whether.
  bool refresh(std::span<const int32_t> tokens, uint64_t hash);
  void add(uint64_t hash, Entry entry);
  void evict(Lru::const_iterator victim);
  void evict_to(size_t budget);

  PrefixCacheOptions options_;
  StateSlots* slots_ = nullptr;  // attach_slots
  std::vector<int> free_slots_;
  size_t slot_fixed_bytes_ = 0, kv_bytes_per_token_ = 0;
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
