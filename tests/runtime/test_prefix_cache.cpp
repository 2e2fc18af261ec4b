// PrefixCache: longest-prefix lookup against a brute-force scan of what was inserted, LRU eviction
// under the byte budget, stats; prefill_cached on a synthetic model (a token-by-token recurrence)
// gives the same state and logits as an uncached run while computing only the uncached suffix;
// entries held in a pool's spare slots (the serving engine's) restore exactly, share the budget and
// the LRU with host-held ones, and give their slots back when evicted.
#include <gtest/gtest.h>

#include <random>

#include "backend/host_slots.h"
#include "linfer/core/error.h"
#include "runtime/prefix_cache.h"
#include "runtime/state_pool.h"

using namespace linfer;

namespace {

StateSpec small_spec() {
  StateSpec s;
  s.tensors.push_back({0, "rec.S", StateKind::Fixed, {4}, 0, "[4]"});
  s.tensors.push_back({1, "attn.kv", StateKind::Growing, {2}, 0, "[T, 2]"});
  return s;
}

// A state whose contents identify the tokens that made it.
SequenceState state_for(std::span<const int32_t> tokens) {
  SequenceState s(small_spec());
  for (int32_t t : tokens) {
    for (int k = 0; k < 4; ++k) s.data(0)[k] = s.data(0)[k] * 0.5f + float((t * (k + 3)) % 11);
    float* row = s.append_rows(1, 1);
    row[0] = float(t);
    row[1] = float(s.n_tokens());
    s.set_n_tokens(s.n_tokens() + 1);
  }
  return s;
}

// The same recurrence as a Model, counting the tokens it is asked to compute.
class CountingModel : public Model {
 public:
  CountingModel() { info_.vocab_size = 3; spec_ = small_spec(); }
  const ModelInfo& info() const override { return info_; }
  const StateSpec& state_spec() const override { return spec_; }
  const std::string& fingerprint() const override { return fp_; }
  const std::string& dir() const override { return fp_; }
  void forward(const Batch& batch, std::span<SequenceState* const> states, float* logits,
               Logits mode) const override {
    for (int i = 0; i < batch.n_seqs(); ++i) {
      SequenceState& s = *states[i];
      for (int64_t t = batch.offsets[i]; t < batch.offsets[i + 1]; ++t) {
        int32_t tok = batch.tokens[size_t(t)];
        for (int k = 0; k < 4; ++k) s.data(0)[k] = s.data(0)[k] * 0.5f + float((tok * (k + 3)) % 11);
        float* row = s.append_rows(1, 1);
        row[0] = float(tok);
        row[1] = float(s.n_tokens());
        s.set_n_tokens(s.n_tokens() + 1);
        ++computed;
      }
      if (mode == Logits::Last)
        for (int v = 0; v < 3; ++v) logits[i * 3 + v] = s.data(0)[v] + s.data(0)[3] * float(v);
    }
  }
  mutable int64_t computed = 0;

 private:
  ModelInfo info_;
  StateSpec spec_;
  std::string fp_ = "counting";
};

void expect_same_state(const SequenceState& a, const SequenceState& b) {
  ASSERT_EQ(a.n_tokens(), b.n_tokens());
  for (size_t i = 0; i < a.n_tensors(); ++i) {
    ASSERT_EQ(a.rows(i), b.rows(i));
    for (int64_t k = 0; k < a.rows(i) * a.row_elems(i); ++k) ASSERT_EQ(a.data(i)[k], b.data(i)[k]);
  }
}

std::vector<int32_t> random_tokens(std::mt19937& rng, size_t n) {
  std::vector<int32_t> t(n);
  for (auto& x : t) x = int32_t(rng() % 4);  // few symbols: many shared prefixes
  return t;
}

}  // namespace

TEST(PrefixCache, LongestPrefixMatchesBruteForce) {
  PrefixCache cache({.byte_budget = size_t(1) << 30, .spacing = 0});
  std::mt19937 rng(1);
  std::vector<std::vector<int32_t>> inserted;
  for (int i = 0; i < 60; ++i) {
    auto t = random_tokens(rng, 1 + rng() % 12);
    cache.insert(t, state_for(t));
    inserted.push_back(t);
  }
  for (int q = 0; q < 300; ++q) {
    auto prompt = random_tokens(rng, rng() % 16);
    int64_t max_len = int64_t(rng() % 18) - 1;  // -1: no limit
    int64_t limit = max_len < 0 ? int64_t(prompt.size()) : std::min<int64_t>(max_len, prompt.size());
    int64_t best = 0;
    for (const auto& t : inserted)
      if (int64_t(t.size()) <= limit && std::equal(t.begin(), t.end(), prompt.begin()))
        best = std::max<int64_t>(best, t.size());
    auto hit = cache.lookup(prompt, max_len);
    if (best == 0) {
      EXPECT_FALSE(hit.has_value());
      continue;
    }
    ASSERT_TRUE(hit.has_value());
    ASSERT_EQ(hit->n_tokens, best);
    expect_same_state(hit->state, state_for(std::span(prompt).first(size_t(best))));
  }
}

TEST(PrefixCache, HitIsACopy) {
  PrefixCache cache;
  std::vector<int32_t> t{1, 2, 3};
  cache.insert(t, state_for(t));
  auto hit = cache.lookup(t);
  ASSERT_TRUE(hit);
  hit->state.data(0)[0] = 1e9f;
  EXPECT_NE(cache.lookup(t)->state.data(0)[0], 1e9f);
}

TEST(PrefixCache, LruUnderByteBudget) {
  std::vector<int32_t> a{1}, b{2}, c{3}, d{1, 1};
  PrefixCache probe({.spacing = 0});
  probe.insert(a, state_for(a));
  size_t one = probe.stats().bytes;  // what a one-token entry costs
  probe.insert(d, state_for(d));
  size_t two = probe.stats().bytes - one;
  // room for three one-token entries, not for those plus a two-token one
  PrefixCache cache({.byte_budget = 3 * one + two - 1, .spacing = 0});
  cache.insert(a, state_for(a));
  cache.insert(b, state_for(b));
  cache.insert(c, state_for(c));
  EXPECT_EQ(cache.stats().entries, 3u);
  EXPECT_TRUE(cache.lookup(a));  // a is now the most recent; b the least
  cache.insert(d, state_for(d));
  EXPECT_LE(cache.stats().bytes, 3 * one + two - 1);
  EXPECT_EQ(cache.stats().evictions, 1u);
  EXPECT_FALSE(cache.lookup(b));
  EXPECT_TRUE(cache.lookup(c));
  EXPECT_EQ(cache.lookup(std::vector<int32_t>{1, 1, 5})->n_tokens, 2);
  // an entry larger than the whole budget is not stored and evicts nothing
  PrefixCache tiny({.byte_budget = one - 1, .spacing = 0});
  tiny.insert(a, state_for(a));
  EXPECT_EQ(tiny.stats().entries, 0u);
  cache.clear();
  EXPECT_EQ(cache.stats().bytes, 0u);
  EXPECT_FALSE(cache.lookup(a));
}

TEST(PrefixCache, StatsCountHitsAndTokensSaved) {
  PrefixCache cache({.spacing = 0});
  std::vector<int32_t> t{1, 2, 3, 4};
  cache.insert(t, state_for(t));
  cache.insert(t, state_for(t));  // refresh, not a second entry
  EXPECT_EQ(cache.stats().entries, 1u);
  cache.lookup(std::vector<int32_t>{1, 2, 3, 4, 5});
  cache.lookup(std::vector<int32_t>{2});
  auto s = cache.stats();
  EXPECT_EQ(s.lookups, 2u);
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.tokens_saved, 4u);
  EXPECT_GT(s.bytes, state_for(t).bytes());
  EXPECT_THROW(cache.insert(std::vector<int32_t>{1, 2}, state_for(t)), Error);
}

// A pool of 2 running slots and `spare` spare ones, attached to the cache.
struct SlotFixture {
  explicit SlotFixture(PrefixCache& cache, int spare) : slots(small_spec(), 2 + spare) {
    cache.attach_slots(slots, 2, spare, StatePool::fixed_bytes(small_spec()), StatePool::kv_bytes_for(small_spec(), 1));
  }
  // Slot 0 holds `t`'s state; the cache copies it into a spare slot.
  void insert(PrefixCache& cache, std::span<const int32_t> t) {
    slots.load(0, state_for(t));
    cache.insert_slot(t, 0);
    slots.reset(0);  // the entry must not depend on the running slot afterwards
  }
  HostStateSlots slots;
};

TEST(PrefixCache, SlotAndHostEntriesRestoreTheLongestPrefixExactly) {
  PrefixCache cache({.byte_budget = size_t(1) << 30, .spacing = 0});
  SlotFixture f(cache, 64);
  std::mt19937 rng(3);
  std::vector<std::vector<int32_t>> in_slots, in_host;
  for (int i = 0; i < 50; ++i) {
    auto t = random_tokens(rng, 1 + rng() % 12);
    if (i % 3 == 0) {
      cache.insert(t, state_for(t));
      in_host.push_back(t);
    } else {
      f.insert(cache, t);
      in_slots.push_back(t);
    }
  }
  EXPECT_EQ(cache.stats().slots, 64u);
  EXPECT_GT(cache.stats().slot_entries, 0u);
  auto best_of = [](const std::vector<std::vector<int32_t>>& set, const std::vector<int32_t>& prompt, int64_t limit) {
    int64_t best = 0;
    for (const auto& t : set)
      if (int64_t(t.size()) <= limit && std::equal(t.begin(), t.end(), prompt.begin()))
        best = std::max<int64_t>(best, int64_t(t.size()));
    return best;
  };
  for (int q = 0; q < 300; ++q) {
    auto prompt = random_tokens(rng, rng() % 16);
    const int64_t max_len = int64_t(rng() % 18) - 1;  // -1: no limit
    const int64_t limit = max_len < 0 ? int64_t(prompt.size()) : std::min<int64_t>(max_len, int64_t(prompt.size()));
    const int64_t best = std::max(best_of(in_slots, prompt, limit), best_of(in_host, prompt, limit));
    EXPECT_EQ(cache.longest(prompt, max_len), best);
    // lookup() copies host-held states only.
    auto hit = cache.lookup(prompt, max_len);
    EXPECT_EQ(hit ? hit->n_tokens : 0, best_of(in_host, prompt, limit));
    f.slots.load(1, state_for(std::vector<int32_t>{3, 3, 3}));
    ASSERT_EQ(cache.restore(prompt, max_len, 1), best);
    if (best > 0) expect_same_state(f.slots.at(1), state_for(std::span(prompt).first(size_t(best))));
    else EXPECT_EQ(f.slots.n_tokens(1), 3);  // left alone
  }
}

TEST(PrefixCache, SlotEntriesShareTheLruAndGiveTheirSlotsBack) {
  std::vector<int32_t> a{1}, b{2}, c{3}, d{1, 2}, e{0, 0, 0};
  PrefixCache cache({.byte_budget = size_t(1) << 30, .spacing = 0});
  SlotFixture f(cache, 3);
  f.insert(cache, a);
  f.insert(cache, b);
  f.insert(cache, c);
  EXPECT_EQ(cache.restore(std::vector<int32_t>{1, 5}, -1, 1), 1);  // a is now the most recent; b the least
  f.insert(cache, d);  // no spare slot free: b's is taken
  auto st = cache.stats();
  EXPECT_EQ(st.slot_entries, 3u);
  EXPECT_EQ(st.evictions, 1u);
  EXPECT_EQ(cache.longest(b), 0);
  for (const auto& t : {a, c, d}) {
    ASSERT_EQ(cache.restore(t, -1, 1), int64_t(t.size()));
    expect_same_state(f.slots.at(1), state_for(t));
  }
  // A host-held entry needs no slot: it evicts nothing while the budget holds.
  cache.insert(e, state_for(e));
  EXPECT_EQ(cache.stats().entries, 4u);
  EXPECT_EQ(cache.stats().slot_entries, 3u);
  // The same tokens again: a refresh, not a copy.
  f.insert(cache, c);
  EXPECT_EQ(cache.stats().inserts, 5u);
  cache.clear();
  EXPECT_EQ(cache.stats().slot_entries, 0u);
  for (const auto& t : {a, b, c})  // every slot is free again
    f.insert(cache, t);
  EXPECT_EQ(cache.stats().slot_entries, 3u);
  EXPECT_EQ(cache.stats().evictions, 5u);  // b, then the four that clear() dropped
}

TEST(PrefixCache, SlotEntriesCountTheirCacheRowsAgainstTheBudget) {
  const std::vector<int32_t> a{1}, b{2}, long_one(40, 3);
  PrefixCache probe({.spacing = 0});
  SlotFixture p(probe, 2);
  p.insert(probe, a);
  const size_t one = probe.stats().bytes;
  // Room for two one-token entries, not for a 40-token one beside them.
  PrefixCache cache({.byte_budget = 2 * one + 10, .spacing = 0});
  SlotFixture f(cache, 8);
  f.insert(cache, a);
  f.insert(cache, b);
  EXPECT_EQ(cache.stats().entries, 2u);
  f.insert(cache, long_one);  // larger than the whole budget: not stored, nothing evicted
  EXPECT_EQ(cache.stats().entries, 2u);
  EXPECT_EQ(cache.stats().evictions, 0u);
  EXPECT_THROW(cache.insert_slot(std::vector<int32_t>{1, 2}, 1), Error);  // slot 1 holds no 2 tokens
  PrefixCache unattached;
  EXPECT_THROW(unattached.restore(a, -1, 0), Error);
}

// Host slots whose copies fail on demand (a device out of memory for a cache's rows).
class FailingSlots : public StateSlots {
 public:
  FailingSlots() : host_(small_spec(), 4) {}
  int n_slots() const override { return host_.n_slots(); }
  void load(int slot, const SequenceState& s) override { host_.load(slot, s); }
  void save(int slot, SequenceState& out) const override { host_.save(slot, out); }
  void copy(int from, int to) override {
    if (fail) throw Error("out of device memory (test)");
    host_.copy(from, to);
  }
  void reset(int slot) override { host_.reset(slot); }
  int64_t n_tokens(int slot) const override { return host_.n_tokens(slot); }
  bool fail = true;

 private:
  HostStateSlots host_;
};

TEST(PrefixCache, AFailedSlotCopyStoresNothingAndKeepsItsSlot) {
  FailingSlots slots;
  PrefixCache cache({.spacing = 0});
  cache.attach_slots(slots, 1, 3, StatePool::fixed_bytes(small_spec()), StatePool::kv_bytes_for(small_spec(), 1));
  const std::vector<int32_t> a{1, 2};
  slots.load(0, state_for(a));
  EXPECT_THROW(cache.insert_slot(a, 0), Error);
  EXPECT_EQ(cache.stats().entries, 0u);
  EXPECT_EQ(cache.longest(a), 0);
  slots.fail = false;
  for (int32_t t = 0; t < 3; ++t) {  // all three spare slots are still there
    const std::vector<int32_t> b{t, 3};
    slots.load(0, state_for(b));
    cache.insert_slot(b, 0);
  }
  EXPECT_EQ(cache.stats().slot_entries, 3u);
  EXPECT_EQ(cache.stats().evictions, 0u);
}

TEST(PrefixCache, PrefillComputesOnlyTheNewSuffix) {
  CountingModel model;
  PrefixCache cache({.spacing = 64});
  std::mt19937 rng(2);
  auto first = random_tokens(rng, 150);
  float logits[3], ref_logits[3];

  SequenceState s(model.state_spec());
  EXPECT_EQ(prefill_cached(model, cache, first, s, logits), 150);
  // snapshots at 64, 128 and the request's end (150)
  EXPECT_EQ(cache.stats().entries, 3u);

  // the second request extends the first: only its 40 new tokens are computed
  auto second = first;
  auto more = random_tokens(rng, 40);
  second.insert(second.end(), more.begin(), more.end());
  SequenceState s2(model.state_spec());
  model.computed = 0;
  EXPECT_EQ(prefill_cached(model, cache, second, s2, logits), 40);
  EXPECT_EQ(model.computed, 40);

  SequenceState ref(model.state_spec());
  SequenceState* refs[] = {&ref};
  model.forward(Batch::single(second), refs, ref_logits, Logits::Last);
  expect_same_state(s2, ref);
  for (int v = 0; v < 3; ++v) EXPECT_EQ(logits[v], ref_logits[v]);

  // a request sharing only the first 100 tokens resumes from the snapshot at 64
  auto third = std::vector<int32_t>(first.begin(), first.begin() + 100);
  third.push_back(99);
  SequenceState s3(model.state_spec());
  EXPECT_EQ(prefill_cached(model, cache, third, s3, logits), 101 - 64);
  SequenceState ref3(model.state_spec());
  SequenceState* refs3[] = {&ref3};
  model.forward(Batch::single(third), refs3, ref_logits, Logits::Last);
  expect_same_state(s3, ref3);

  // the exact same prompt again: the last token is always computed (its logits are needed), so the
  // longest usable prefix is the first request's end, 150
  SequenceState s4(model.state_spec());
  EXPECT_EQ(prefill_cached(model, cache, second, s4, logits), 190 - 150);
  EXPECT_EQ(cache.stats().tokens_saved, 150u + 64 + 150);
}
