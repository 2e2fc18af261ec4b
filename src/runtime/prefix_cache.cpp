#include "runtime/prefix_cache.h"

#include <xxhash.h>

#include <algorithm>

#include "linfer/core/error.h"

namespace linfer {

namespace {

uint64_t hash_tokens(std::span<const int32_t> t) { return XXH3_64bits(t.data(), t.size_bytes()); }

}  // namespace

PrefixCache::PrefixCache(PrefixCacheOptions options) : options_(options) {
  LINFER_CHECK(options_.spacing >= 0, "prefix cache spacing must be >= 0, not {}", options_.spacing);
}

std::optional<PrefixHit> PrefixCache::lookup(std::span<const int32_t> tokens, int64_t max_len) {
  int64_t limit = max_len < 0 ? int64_t(tokens.size()) : std::min<int64_t>(max_len, int64_t(tokens.size()));
  std::lock_guard lock(mu_);
  ++stats_.lookups;
  // Only lengths some entry has can match: try those, longest first.
  std::vector<int64_t> lengths;
  for (const auto& [len, count] : length_count_)
    if (len <= limit && len > 0) lengths.push_back(len);
  std::sort(lengths.rbegin(), lengths.rend());
  for (int64_t len : lengths) {
    auto prefix = tokens.first(size_t(len));
    auto [lo, hi] = by_hash_.equal_range(hash_tokens(prefix));
    for (auto it = lo; it != hi; ++it) {
      Entry& e = *it->second;
      if (!std::equal(e.tokens.begin(), e.tokens.end(), prefix.begin(), prefix.end())) continue;
      lru_.splice(lru_.begin(), lru_, it->second);
      ++stats_.hits;
      stats_.tokens_saved += uint64_t(len);
      return PrefixHit{len, e.state};
    }
  }
  return std::nullopt;
}

void PrefixCache::insert(std::span<const int32_t> tokens, const SequenceState& state) {
  LINFER_CHECK(state.n_tokens() == int64_t(tokens.size()), "prefix cache: a state of {} tokens stored "
               "under a prefix of {}", state.n_tokens(), tokens.size());
  if (tokens.empty()) return;
  size_t bytes = state.bytes() + tokens.size_bytes() + sizeof(Entry);
  uint64_t h = hash_tokens(tokens);
  std::lock_guard lock(mu_);
  auto [lo, hi] = by_hash_.equal_range(h);
  for (auto it = lo; it != hi; ++it) {
    if (std::equal(it->second->tokens.begin(), it->second->tokens.end(), tokens.begin(), tokens.end())) {
      lru_.splice(lru_.begin(), lru_, it->second);  // same tokens give the same state: refresh only
      return;
    }
  }
  if (bytes > options_.byte_budget) return;
  evict_to(options_.byte_budget - bytes);
  lru_.push_front(Entry{{tokens.begin(), tokens.end()}, state, bytes});
  by_hash_.emplace(h, lru_.begin());
  ++length_count_[int64_t(tokens.size())];
  stats_.bytes += bytes;
  ++stats_.entries;
  ++stats_.inserts;
}

void PrefixCache::evict_to(size_t budget) {
  while (stats_.bytes > budget && !lru_.empty()) {
    auto victim = std::prev(lru_.end());
    auto [lo, hi] = by_hash_.equal_range(hash_tokens(victim->tokens));
    for (auto it = lo; it != hi; ++it)
      if (it->second == victim) {
        by_hash_.erase(it);
        break;
      }
    int64_t len = int64_t(victim->tokens.size());
    if (--length_count_[len] == 0) length_count_.erase(len);
    stats_.bytes -= victim->bytes;
    --stats_.entries;
    ++stats_.evictions;
    lru_.erase(victim);
  }
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
