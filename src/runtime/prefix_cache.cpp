#include "runtime/prefix_cache.h"

#include <xxhash.h>

#include <algorithm>

#include "linfer/core/error.h"

namespace linfer {

namespace {

uint64_t hash_tokens(std::span<const int32_t> t) { return XXH3_64bits(t.data(), t.size_bytes()); }

int64_t limit_of(std::span<const int32_t> tokens, int64_t max_len) {
  return max_len < 0 ? int64_t(tokens.size()) : std::min<int64_t>(max_len, int64_t(tokens.size()));
}

}  // namespace

PrefixCache::PrefixCache(PrefixCacheOptions options) : options_(options) {
  LINFER_CHECK(options_.spacing >= 0, "prefix cache spacing must be >= 0, not {}", options_.spacing);
}

PrefixCache::Lru::const_iterator PrefixCache::find_longest(std::span<const int32_t> tokens, int64_t max_len,
                                                           bool host_only) const {
  const int64_t limit = limit_of(tokens, max_len);
  // Only lengths some entry has can match: try those, longest first.
  std::vector<int64_t> lengths;
  for (const auto& [len, count] : length_count_)
    if (len <= limit && len > 0) lengths.push_back(len);
  std::sort(lengths.rbegin(), lengths.rend());
  for (int64_t len : lengths) {
    auto prefix = tokens.first(size_t(len));
    auto [lo, hi] = by_hash_.equal_range(hash_tokens(prefix));
    for (auto it = lo; it != hi; ++it) {
      const Entry& e = *it->second;
      if ((!host_only || e.slot < 0) && std::equal(e.tokens.begin(), e.tokens.end(), prefix.begin(), prefix.end()))
        return it->second;
    }
  }
  return lru_.end();
}

std::optional<PrefixHit> PrefixCache::lookup(std::span<const int32_t> tokens, int64_t max_len) {
  std::lock_guard lock(mu_);
  ++stats_.lookups;
  auto it = find_longest(tokens, max_len, /*host_only=*/true);
  if (it == lru_.end()) return std::nullopt;
  lru_.splice(lru_.begin(), lru_, it);
  ++stats_.hits;
  stats_.tokens_saved += it->tokens.size();
  return PrefixHit{int64_t(it->tokens.size()), it->state};
}

int64_t PrefixCache::longest(std::span<const int32_t> tokens, int64_t max_len) const {
  std::lock_guard lock(mu_);
  auto it = find_longest(tokens, max_len, /*host_only=*/false);
  return it == lru_.end() ? 0 : int64_t(it->tokens.size());
}

int64_t PrefixCache::restore(std::span<const int32_t> tokens, int64_t max_len, int to) {
  LINFER_CHECK(slots_, "prefix cache: restore() needs attach_slots() first");
  std::lock_guard lock(mu_);  // held through the copy: no other thread evicts the entry meanwhile
  ++stats_.lookups;
  auto it = find_longest(tokens, max_len, /*host_only=*/false);
  if (it == lru_.end()) return 0;
  if (it->slot >= 0) slots_->copy(it->slot, to);
  else slots_->load(to, it->state);
  lru_.splice(lru_.begin(), lru_, it);
  ++stats_.hits;
  stats_.tokens_saved += it->tokens.size();
  return int64_t(it->tokens.size());
}

bool PrefixCache::refresh(std::span<const int32_t> tokens, uint64_t hash) {
  auto [lo, hi] = by_hash_.equal_range(hash);
  for (auto it = lo; it != hi; ++it) {
    if (std::equal(it->second->tokens.begin(), it->second->tokens.end(), tokens.begin(), tokens.end())) {
      lru_.splice(lru_.begin(), lru_, it->second);
      return true;
    }
  }
  return false;
}

void PrefixCache::insert(std::span<const int32_t> tokens, const SequenceState& state) {
  LINFER_CHECK(state.n_tokens() == int64_t(tokens.size()), "prefix cache: a state of {} tokens stored "
               "under a prefix of {}", state.n_tokens(), tokens.size());
  if (tokens.empty()) return;
  const size_t bytes = state.bytes() + tokens.size_bytes() + sizeof(Entry);
  const uint64_t h = hash_tokens(tokens);
  std::lock_guard lock(mu_);
  if (refresh(tokens, h) || bytes > options_.byte_budget) return;
  evict_to(options_.byte_budget - bytes);
  add(h, Entry{{tokens.begin(), tokens.end()}, state, -1, bytes});
}

void PrefixCache::attach_slots(StateSlots& slots, int first, int n, size_t fixed_bytes, size_t kv_bytes_per_token) {
  LINFER_CHECK(first >= 0 && n >= 0 && first + n <= slots.n_slots(), "prefix cache: spare slots [{}, {}) outside a "
               "pool of {}", first, first + n, slots.n_slots());
  std::lock_guard lock(mu_);
  LINFER_CHECK(!slots_, "prefix cache: slots are attached already");
  slots_ = &slots;
  for (int i = first + n - 1; i >= first; --i) free_slots_.push_back(i);
  slot_fixed_bytes_ = fixed_bytes;
  kv_bytes_per_token_ = kv_bytes_per_token;
  stats_.slots = size_t(n);
}

void PrefixCache::insert_slot(std::span<const int32_t> tokens, int from) {
  LINFER_CHECK(slots_, "prefix cache: insert_slot() needs attach_slots() first");
  LINFER_CHECK(slots_->n_tokens(from) == int64_t(tokens.size()), "prefix cache: slot {} holds {} tokens, stored "
               "under a prefix of {}", from, slots_->n_tokens(from), tokens.size());
  if (tokens.empty()) return;
  const size_t bytes = slot_fixed_bytes_ + kv_bytes_per_token_ * tokens.size() + tokens.size_bytes() + sizeof(Entry);
  const uint64_t h = hash_tokens(tokens);
  std::lock_guard lock(mu_);
  if (refresh(tokens, h) || bytes > options_.byte_budget) return;
  evict_to(options_.byte_budget - bytes);
  for (auto it = lru_.end(); free_slots_.empty() && it != lru_.begin();) {  // the least recently used in a slot
    if ((--it)->slot >= 0) {
      evict(it);
      break;
    }
  }
  if (free_slots_.empty()) return;  // no spare slots at all
  const int slot = free_slots_.back();
  free_slots_.pop_back();
  try {
    slots_->copy(from, slot);
  } catch (...) {
    free_slots_.push_back(slot);
    throw;
  }
  add(h, Entry{{tokens.begin(), tokens.end()}, SequenceState{}, slot, bytes});
}

void PrefixCache::add(uint64_t hash, Entry entry) {
  const size_t n = entry.tokens.size();
  stats_.bytes += entry.bytes;
  ++stats_.entries;
  ++stats_.inserts;
  if (entry.slot >= 0) ++stats_.slot_entries;
  lru_.push_front(std::move(entry));
  by_hash_.emplace(hash, lru_.begin());
  ++length_count_[int64_t(n)];
}

void PrefixCache::evict(Lru::const_iterator victim) {
  auto [lo, hi] = by_hash_.equal_range(hash_tokens(victim->tokens));
  for (auto it = lo; it != hi; ++it)
    if (it->second == victim) {
      by_hash_.erase(it);
      break;
    }
  const int64_t len = int64_t(victim->tokens.size());
  if (--length_count_[len] == 0) length_count_.erase(len);
  if (victim->slot >= 0) {
    free_slots_.push_back(victim->slot);  // its contents stay until the slot is filled again
    --stats_.slot_entries;
  }
  stats_.bytes -= victim->bytes;
  --stats_.entries;
  ++stats_.evictions;
  lru_.erase(victim);
}

void PrefixCache::evict_to(size_t budget) {
  while (stats_.bytes > budget && !lru_.empty()) evict(std::prev(lru_.end()));
}

PrefixCacheStats PrefixCache::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void PrefixCache::clear() {
  std::lock_guard lock(mu_);
  evict_to(0);
}

int64_t prefill_cached(const Model& model, PrefixCache& cache, std::span<const int32_t> tokens,
                       SequenceState& state, float* logits) {
  int64_t n = int64_t(tokens.size());
  LINFER_CHECK(state.n_tokens() <= n, "prefill_cached: the state holds {} tokens, the prompt only {}",
               state.n_tokens(), n);
  // The last token is always computed, for its logits.
  if (auto hit = cache.lookup(tokens, n - 1); hit && hit->n_tokens > state.n_tokens())
    state = std::move(hit->state);

  int64_t spacing = cache.options().spacing;
  int64_t computed = 0;
  while (state.n_tokens() < n) {
    int64_t begin = state.n_tokens();
    // Chunks end at multiples of the spacing so those snapshots line up across requests.
    int64_t end = spacing > 0 ? std::min(n, (begin / spacing + 1) * spacing) : n;
    auto chunk = tokens.subspan(size_t(begin), size_t(end - begin));
    SequenceState* states[] = {&state};
    model.forward(Batch::single(chunk), states, end == n ? logits : nullptr,
                  end == n && logits ? Logits::Last : Logits::None);
    computed += end - begin;
    cache.insert(tokens.first(size_t(end)), state);  // a spacing boundary or the request's end
  }
  return computed;
}

}  // namespace linfer
