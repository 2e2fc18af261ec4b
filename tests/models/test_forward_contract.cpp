// Model::forward's failure contract (linfer/model.h): a call that throws leaves every state byte for
// byte as it was, and the linfer::Error names the problem. Checked on a golden fixture with both kinds
// of state (qwen3_next_a: Gated DeltaNet fixed-size states and attention KV that grows), with states
// that already hold tokens, so a half-advanced state would differ in contents, rows or token count.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "linfer/core/error.h"
#include "linfer/model.h"

using linfer::Batch;
using linfer::Logits;
using linfer::Model;
using linfer::SequenceState;
using linfer::StateKind;

namespace {

const std::string kGolden = std::string(LINFER_SOURCE_DIR) + "/tests/golden/";

// Same token count, tensors, rows and every stored float's bits.
bool same_bytes(const SequenceState& a, const SequenceState& b) {
  if (a.n_tokens() != b.n_tokens() || a.n_tensors() != b.n_tensors()) return false;
  for (size_t i = 0; i < a.n_tensors(); ++i) {
    if (a.shape(i) != b.shape(i)) return false;
    const auto& t = a.spec().tensors[i];
    const int64_t rows = t.kind == StateKind::Ring ? t.capacity : a.rows(i);
    if (std::memcmp(a.data(i), b.data(i), size_t(rows * a.row_elems(i)) * sizeof(float)) != 0) return false;
  }
  return true;
}

class ForwardContract : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = Model::load(kGolden + "qwen3_next_a");
    V_ = model_->info().vocab_size;
    // Two sequences that already hold 7 and 12 tokens.
    for (int n : {7, 12}) {
      states_.emplace_back(model_->state_spec());
      std::vector<int32_t> ids;
      for (int t = 0; t < n; ++t) ids.push_back(int32_t((t * 37 + n) % V_));
      SequenceState* sp = &states_.back();
      model_->forward(Batch::single(ids), {&sp, 1}, nullptr, Logits::None);
    }
    before_ = states_;
    bool has_growing = false, has_fixed = false;
    for (const auto& t : model_->state_spec().tensors)
      (t.kind == StateKind::Growing ? has_growing : has_fixed) = true;
    ASSERT_TRUE(has_growing && has_fixed) << "the fixture should have both kinds of state";
  }

  // forward(batch, states) must throw a linfer::Error containing `needle` and change no state.
  void expect_refused_unchanged(const Batch& batch, std::vector<SequenceState*> states, const std::string& needle) {
    std::vector<float> logits(size_t(batch.tokens.size() * V_));
    try {
      model_->forward(batch, states, logits.data(), Logits::All);
      ADD_FAILURE() << "not refused: " << needle;
    } catch (const linfer::Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
    for (size_t i = 0; i < states_.size(); ++i)
      EXPECT_TRUE(same_bytes(states_[i], before_[i])) << "state " << i << " changed by a refused call (" << needle << ")";
  }

  Batch two(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
    tokens_ = a;
    tokens_.insert(tokens_.end(), b.begin(), b.end());
    return {tokens_, {0, int64_t(a.size()), int64_t(tokens_.size())}};
  }

  std::shared_ptr<const Model> model_;
  int64_t V_ = 0;
  std::vector<SequenceState> states_, before_;
  std::vector<int32_t> tokens_;
};

TEST_F(ForwardContract, OutOfRangeTokenInTheSecondSequence) {
  std::vector<SequenceState*> ptrs = {&states_[0], &states_[1]};
  const int32_t bad = int32_t(V_);
  expect_refused_unchanged(two({1, 2, 3}, {4, bad, 5}), ptrs, "token id " + std::to_string(bad) + " (sequence 1");
  expect_refused_unchanged(two({1}, {-1}), ptrs, "token id -1 (sequence 1");  // the decode (step) path
}

TEST_F(ForwardContract, StateCountAndOffsets) {
  expect_refused_unchanged(two({1, 2}, {3}), {&states_[0]}, "2 sequences but 1 states");
  expect_refused_unchanged(two({1, 2}, {3}), {&states_[0], &states_[1], &states_[0]}, "2 sequences but 3 states");
  std::vector<int32_t> ids = {1, 2, 3, 4};
  expect_refused_unchanged({ids, {0, 3, 2, 4}}, {&states_[0], &states_[1], &states_[1]}, "sequence 1 has -1 tokens");
  expect_refused_unchanged({ids, {0, 2, 5}}, {&states_[0], &states_[1]}, "end at the token count (4)");
  expect_refused_unchanged({ids, {0}}, {}, "no sequences");
  Batch b = two({1}, {2});
  std::vector<SequenceState*> ptrs = {&states_[0], &states_[1]};
  EXPECT_THROW(model_->forward(b, ptrs, nullptr, Logits::Last), linfer::Error);
  for (size_t i = 0; i < states_.size(); ++i) EXPECT_TRUE(same_bytes(states_[i], before_[i]));
}

TEST_F(ForwardContract, StateOfAnotherLayout) {
  // The same shapes under another layout string: memory-safe to run, wrong to mix.
  linfer::StateSpec other = model_->state_spec();
  other.tensors.back().layout += " (other)";
  SequenceState foreign(other);
  expect_refused_unchanged(two({1, 2}, {3}), {&states_[0], &foreign}, "state 1 was not made for this model");
}

TEST_F(ForwardContract, StateOfAnotherModelEmptyOrNull) {
  auto mamba = Model::load(kGolden + "mamba2_a");
  SequenceState foreign(mamba->state_spec()), empty;
  expect_refused_unchanged(two({1, 2}, {3}), {&states_[0], &foreign}, "state 1 was not made for this model");
  expect_refused_unchanged(two({1, 2}, {3}), {&empty, &states_[1]}, "state 0 was not made for this model");
  expect_refused_unchanged(two({1, 2}, {3}), {&states_[0], nullptr}, "state 1 is null");
}

TEST_F(ForwardContract, OneStateForTwoSequences) {
  expect_refused_unchanged(two({1, 2}, {3}), {&states_[1], &states_[1]}, "one state is given for two sequences");
}

TEST_F(ForwardContract, StatesStillContinueLikeTheirCopiesAfterRefusals) {
  std::vector<SequenceState*> ptrs = {&states_[0], &states_[1]};
  expect_refused_unchanged(two({1, 2}, {3, int32_t(V_)}), ptrs, "outside the vocabulary");
  std::vector<float> got(size_t(2 * V_)), want(size_t(2 * V_));
  model_->forward(two({5, 6}, {7}), ptrs, got.data(), Logits::Last);
  std::vector<SequenceState*> ref = {&before_[0], &before_[1]};
  model_->forward(two({5, 6}, {7}), ref, want.data(), Logits::Last);
  EXPECT_EQ(got, want);
}

}  // namespace
