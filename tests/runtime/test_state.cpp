// SequenceState (include/linfer/state.h): allocation from a StateSpec, Growing rows kept intact
// across growth (checked against a plain std::vector of the same appends), Ring row bookkeeping,
// snapshot independence, reset, byte accounting.
#include <gtest/gtest.h>

#include <random>

#include "linfer/core/error.h"
#include "linfer/state.h"

using namespace linfer;

namespace {

// A hybrid layer stack in miniature: recurrent matrix + conv window, attention KV, sliding window.
StateSpec hybrid_spec() {
  StateSpec s;
  s.tensors.push_back({0, "kda.S", StateKind::Fixed, {2, 3, 4}, 0, "[HV, V, K] v-major"});
  s.tensors.push_back({0, "conv.q", StateKind::Fixed, {8, 3}, 0, "[C, W-1]"});
  s.tensors.push_back({1, "mla.latent", StateKind::Growing, {5}, 0, "[T, R]"});
  s.tensors.push_back({2, "swa.k", StateKind::Ring, {2, 3}, 4, "[T, H, D] ring"});
  return s;
}

}  // namespace

TEST(SequenceState, AllocatesFromSpec) {
  SequenceState s(hybrid_spec());
  ASSERT_EQ(s.n_tensors(), 4u);
  EXPECT_EQ(s.n_tokens(), 0);
  EXPECT_EQ(s.row_elems(0), 24);
  EXPECT_EQ(s.row_elems(2), 5);
  EXPECT_EQ(s.rows(0), 1);
  EXPECT_EQ(s.rows(2), 0);
  EXPECT_EQ(s.rows(3), 0);
  EXPECT_EQ(s.shape(0), (Shape{2, 3, 4}));
  EXPECT_EQ(s.shape(2), (Shape{0, 5}));
  for (int i = 0; i < 24; ++i) EXPECT_EQ(s.data(0)[i], 0.0f);
  for (int i = 0; i < 24; ++i) EXPECT_EQ(s.data(3)[i], 0.0f);  // ring: capacity 4 x 6
  // fixed 24 + 24 floats, ring 4 x 6, growing empty
  EXPECT_EQ(s.bytes(), (24 + 24 + 24) * sizeof(float));
}

TEST(SequenceState, GrowingMatchesPlainVector) {
  SequenceState s(hybrid_spec());
  std::vector<float> ref;
  std::mt19937 rng(5);
  int64_t total = 0;
  for (int step = 0; step < 300; ++step) {
    int64_t n = step % 17 == 0 ? 1 + rng() % 40 : 1;  // mostly single-token decode, some prefills
    float* rows = s.append_rows(2, n);
    for (int64_t i = 0; i < n * 5; ++i) {
      float v = float(rng() % 1000);
      rows[i] = v;
      ref.push_back(v);
    }
    total += n;
    ASSERT_EQ(s.rows(2), total);
    ASSERT_EQ(s.shape(2), (Shape{total, 5}));
  }
  ASSERT_EQ(ref.size(), size_t(total * 5));
  for (size_t i = 0; i < ref.size(); ++i) ASSERT_EQ(s.data(2)[i], ref[i]) << i;
  EXPECT_EQ(uintptr_t(s.data(2)) % 64, 0u);
}

TEST(SequenceState, GrowthIsAmortised) {
  StateSpec spec;
  spec.tensors.push_back({0, "attn.k", StateKind::Growing, {16}, 0, "[T, D]"});
  SequenceState s(spec);
  int moves = 0;
  const float* last = nullptr;
  for (int t = 0; t < 20000; ++t) {
    s.append_rows(0, 1);
    if (s.data(0) != last) ++moves;
    last = s.data(0);
  }
  EXPECT_LE(moves, 20);  // doubling: about log2(20000) reallocations, not one per token
}

TEST(SequenceState, RingRows) {
  SequenceState s(hybrid_spec());
  for (int64_t n : {1, 3, 4, 5, 100}) {
    s.set_n_tokens(n);
    EXPECT_EQ(s.rows(3), std::min<int64_t>(n, 4));
    EXPECT_EQ(s.shape(3), (Shape{std::min<int64_t>(n, 4), 2, 3}));
  }
}

TEST(SequenceState, CopyIsASnapshot) {
  SequenceState s(hybrid_spec());
  s.data(0)[7] = 1.5f;
  s.append_rows(2, 3)[14] = 2.5f;
  s.data(3)[0] = 3.5f;
  s.set_n_tokens(3);
  SequenceState snap = s;
  s.data(0)[7] = -1;
  s.append_rows(2, 1)[0] = 9;
  s.data(2)[14] = -2;
  s.data(3)[0] = -3;
  s.set_n_tokens(4);
  EXPECT_EQ(snap.n_tokens(), 3);
  EXPECT_EQ(snap.data(0)[7], 1.5f);
  EXPECT_EQ(snap.rows(2), 3);
  EXPECT_EQ(snap.data(2)[14], 2.5f);
  EXPECT_EQ(snap.data(3)[0], 3.5f);
  s = snap;  // restore
  EXPECT_EQ(s.data(0)[7], 1.5f);
  EXPECT_EQ(s.rows(2), 3);
  EXPECT_EQ(s.n_tokens(), 3);
}

TEST(SequenceState, ResetAndBytes) {
  SequenceState s(hybrid_spec());
  s.append_rows(2, 10);
  s.data(0)[0] = 1;
  s.data(3)[5] = 1;
  s.set_n_tokens(10);
  EXPECT_EQ(s.bytes(), (24 + 24 + 24 + 50) * sizeof(float));
  s.reset();
  EXPECT_EQ(s.n_tokens(), 0);
  EXPECT_EQ(s.rows(2), 0);
  EXPECT_EQ(s.data(0)[0], 0.0f);
  EXPECT_EQ(s.data(3)[5], 0.0f);
  EXPECT_EQ(s.bytes(), (24 + 24 + 24) * sizeof(float));
}

TEST(SequenceState, BadSpecsAndMisuse) {
  StateSpec bad;
  bad.tensors.push_back({0, "swa.k", StateKind::Ring, {4}, 0, ""});
  EXPECT_THROW(SequenceState{bad}, Error);
  StateSpec neg;
  neg.tensors.push_back({0, "x", StateKind::Fixed, {-1, 4}, 0, ""});
  EXPECT_THROW(SequenceState{neg}, Error);
  SequenceState s(hybrid_spec());
  EXPECT_THROW(s.append_rows(0, 1), Error);  // Fixed
  EXPECT_THROW(s.append_rows(2, -1), Error);
}
