// StatePool: byte accounting against sums written out from the spec, slot reuse, reservations,
// refusals, and that an acquired slot is an empty sequence whatever it held before.
#include <gtest/gtest.h>

#include "linfer/core/error.h"
#include "runtime/state_pool.h"

using namespace linfer;

namespace {

StateSpec spec() {
  StateSpec s;
  s.tensors.push_back({0, "rec.S", StateKind::Fixed, {2, 3, 4}, 0, "[2, 3, 4]"});  // 24 floats
  s.tensors.push_back({1, "attn.k", StateKind::Growing, {5}, 0, "[T, 5]"});        // 5 per token
  s.tensors.push_back({1, "attn.v", StateKind::Growing, {3}, 0, "[T, 3]"});        // 3 per token
  s.tensors.push_back({2, "swa.kv", StateKind::Ring, {2}, 7, "[W, 2]"});           // 14 floats
  return s;
}

}  // namespace

TEST(StatePool, ByteSizes) {
  EXPECT_EQ(StatePool::fixed_bytes(spec()), (24 + 14) * sizeof(float));
  EXPECT_EQ(StatePool::kv_bytes_for(spec(), 0), 0u);
  EXPECT_EQ(StatePool::kv_bytes_for(spec(), 10), 10 * (5 + 3) * sizeof(float));
  // The fixed bytes are what a fresh SequenceState holds.
  EXPECT_EQ(StatePool::fixed_bytes(spec()), SequenceState(spec()).bytes());
}

TEST(StatePool, AcquireReleaseAndReservations) {
  StatePool pool(spec(), 3, 1000);
  EXPECT_EQ(pool.free_slots(), 3);
  int a = pool.acquire(600);
  EXPECT_EQ(pool.kv_free(), 400u);
  EXPECT_THROW(pool.acquire(401), Error);  // over the KV budget
  int b = pool.acquire(400);
  int c = pool.acquire(0);
  EXPECT_NE(a, b);
  EXPECT_NE(b, c);
  EXPECT_EQ(pool.free_slots(), 0);
  EXPECT_THROW(pool.acquire(0), Error);  // no slot
  EXPECT_EQ(pool.fixed_bytes_in_use(), 3 * StatePool::fixed_bytes(spec()));

  // Fill slot b with 4 tokens of KV; in-use bytes follow the rows held.
  SequenceState s(spec());
  s.append_rows(1, 4);
  s.append_rows(2, 4);
  s.data(0)[0] = 42.0f;
  s.set_n_tokens(4);
  pool.slots().load(b, s);
  EXPECT_EQ(pool.view(b).data(0)[0], 42.0f);
  StateSpec other = spec();
  other.tensors.pop_back();
  EXPECT_THROW(pool.slots().load(b, SequenceState(other)), Error);  // another model's state
  EXPECT_EQ(pool.kv_bytes_in_use(), StatePool::kv_bytes_for(spec(), 4));

  pool.release(b);
  EXPECT_EQ(pool.kv_bytes_in_use(), 0u);
  EXPECT_EQ(pool.kv_free(), 400u);
  EXPECT_THROW(pool.release(b), Error);  // twice
  int again = pool.acquire(100);
  EXPECT_EQ(again, b);  // the slot just released is reused first
  EXPECT_EQ(pool.view(again).n_tokens(), 0);
  EXPECT_EQ(pool.view(again).rows(1), 0);
  EXPECT_EQ(pool.view(again).data(0)[0], 0.0f);
  pool.release(a);
  pool.release(again);
  pool.release(c);
  EXPECT_EQ(pool.free_slots(), 3);
  EXPECT_EQ(pool.kv_reserved(), 0u);
}

TEST(StatePool, SpareSlotsAreNeverAcquiredAndCopiesAreExact) {
  StatePool pool(spec(), 2, 1000, 3);
  EXPECT_EQ(pool.n_slots(), 2);
  EXPECT_EQ(pool.n_spare(), 3);
  EXPECT_EQ(pool.slots().n_slots(), 5);
  const int a = pool.acquire(0), b = pool.acquire(0);
  EXPECT_LT(std::max(a, b), 2);
  EXPECT_THROW(pool.acquire(0), Error);  // the spare slots are not the scheduler's

  SequenceState s(spec());
  for (int64_t i = 0; i < 24; ++i) s.data(0)[i] = float(i) + 0.5f;
  s.append_rows(1, 6)[29] = 7.0f;
  s.append_rows(2, 6)[17] = -3.0f;
  s.data(3)[13] = 2.0f;
  s.set_n_tokens(6);
  pool.slots().load(a, s);
  pool.copy(a, 4);  // into a spare slot, then back into a running one that held something else
  pool.slots().load(b, SequenceState(spec()));
  pool.copy(4, b);
  SequenceState out(spec());
  pool.slots().save(b, out);
  EXPECT_EQ(out.n_tokens(), 6);
  for (size_t j = 0; j < s.n_tensors(); ++j) {
    ASSERT_EQ(out.rows(j), s.rows(j)) << j;
    for (int64_t i = 0; i < s.rows(j) * s.row_elems(j); ++i) EXPECT_EQ(out.data(j)[i], s.data(j)[i]) << j << " " << i;
  }
  EXPECT_EQ(pool.kv_bytes_in_use(), StatePool::kv_bytes_for(spec(), 12));  // the running slots only
}
