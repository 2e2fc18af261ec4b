// kernels/cpu/conv1d.h against kernels/reference/conv1d.h (transformers' causal_conv1d torch
// fallback semantics): packed sequences with nonzero starting states, sequences shorter than the
// kernel, strided input, step == prefill, split prefill == whole prefill.
#include <gtest/gtest.h>

#include "dense_test_util.h"
#include "kernels/cpu/conv1d.h"
#include "kernels/reference/conv1d.h"

using namespace linfer;
using namespace linfer::kernels;
using namespace dense_test;

namespace {

std::vector<float*> pointers(std::vector<std::vector<float>>& states) {
  std::vector<float*> p;
  for (auto& s : states) p.push_back(s.data());
  return p;
}

// Split prefill and token-by-token steps (in place, y aliasing x as the mixers use them) against one prefill.
void step_and_split_prefill_equal_whole(std::mt19937& rng, int64_t C, int64_t W, SimdLevel path) {
  const int64_t T = 11;
  auto x = random_vec(rng, size_t(T * C));
  auto w = random_vec(rng, size_t(C * W), 0.5f);
  auto bias = random_vec(rng, size_t(C));
  std::vector<std::vector<float>> whole_state = {std::vector<float>(size_t(C * (W - 1)))};
  std::vector<float> whole(size_t(T * C));
  const std::vector<int64_t> all = {0, T};
  conv1d_prefill(x.data(), 0, w.data(), bias.data(), C, W, all, pointers(whole_state), true, whole.data(), path);

  for (int64_t split : {1, 2, 3, 7}) {  // prefill(a); prefill(b)
    std::vector<std::vector<float>> st = {std::vector<float>(size_t(C * (W - 1)))};
    std::vector<float> y(size_t(T * C));
    const std::vector<int64_t> a = {0, split}, b = {0, T - split};
    conv1d_prefill(x.data(), 0, w.data(), bias.data(), C, W, a, pointers(st), true, y.data(), path);
    conv1d_prefill(x.data() + split * C, 0, w.data(), bias.data(), C, W, b, pointers(st), true, y.data() + split * C,
                   path);
    EXPECT_EQ(y, whole) << "split " << split;
    EXPECT_EQ(st, whole_state);
  }
  // token by token, in place (y aliasing x as the mixers use it)
  std::vector<std::vector<float>> st = {std::vector<float>(size_t(C * (W - 1)))};
  std::vector<float> y = x;
  for (int64_t t = 0; t < T; ++t)
    conv1d_step(y.data() + t * C, 0, w.data(), bias.data(), C, W, pointers(st), true, y.data() + t * C, path);
  EXPECT_EQ(y, whole);
  EXPECT_EQ(st, whole_state);
}

class Conv1dPath : public SimdPathTest {};

}  // namespace

TEST_P(Conv1dPath, PrefillPackedSequencesAgainstReference) {
  std::mt19937 rng(11);
  const std::vector<int64_t> offsets = {0, 1, 3, 8, 73, 75};  // lengths 1, 2, 5, 65, 2
  const int64_t T = offsets.back(), S = int64_t(offsets.size()) - 1;
  for (int64_t W : {2, 3, 4})
    for (int64_t C : {1, 7, 33, 600})
      for (int64_t pad : {0, 5}) {
        const int64_t stride = C + pad;
        auto x = random_vec(rng, size_t(T * stride));
        auto w = random_vec(rng, size_t(C * W), 0.5f);
        auto bias = random_vec(rng, size_t(C));
        for (bool silu : {false, true}) {
          std::vector<std::vector<float>> init;
          for (int64_t s = 0; s < S; ++s) init.push_back(random_vec(rng, size_t(C * (W - 1))));
          auto ref_states = init;
          std::vector<float> ref(size_t(T * C));
          ref::conv1d_prefill(x.data(), pad ? stride : 0, w.data(), silu ? bias.data() : nullptr, C, W, offsets,
                              pointers(ref_states), silu, ref.data());
          auto states = init;
          std::vector<float> y(size_t(T * C));
          conv1d_prefill(x.data(), pad ? stride : 0, w.data(), silu ? bias.data() : nullptr, C, W, offsets,
                         pointers(states), silu, y.data(), path());
          EXPECT_LT(rel_err(y, ref), 1e-6) << "W=" << W << " C=" << C;
          for (int64_t s = 0; s < S; ++s) EXPECT_EQ(states[s], ref_states[s]) << "state of sequence " << s;
        }
      }
}

TEST_P(Conv1dPath, StepAndSplitPrefillEqualWholePrefill) {
  std::mt19937 rng(12);
  for (int64_t W : {1, 2, 3, 4, 5})
    for (int64_t C : {45, 600}) {  // 600: more than one block of channels
      SCOPED_TRACE("W=" + std::to_string(W) + " C=" + std::to_string(C));
      step_and_split_prefill_equal_whole(rng, C, W, path());
    }
}

TEST_P(Conv1dPath, BatchedStepAgainstReference) {
  std::mt19937 rng(13);
  for (int64_t W : {1, 2, 3, 4, 5})
    for (int64_t C : {1, 7, 130, 1100})  // 1100: blocks of channels over the pool, a short last one
      for (int64_t B : {1, 5})
        for (bool silu : {false, true}) {
          SCOPED_TRACE("W=" + std::to_string(W) + " C=" + std::to_string(C) + " B=" + std::to_string(B));
          const int64_t stride = C + 20;
          auto x = random_vec(rng, size_t(B * stride));
          auto w = random_vec(rng, size_t(C * W), 0.5f);
          auto bias = random_vec(rng, size_t(C));
          std::vector<std::vector<float>> init;
          for (int64_t b = 0; b < B; ++b) init.push_back(random_vec(rng, size_t(C * (W - 1))));
          auto ref_states = init;
          std::vector<float> ref(size_t(B * C));
          ref::conv1d_step(x.data(), stride, w.data(), silu ? bias.data() : nullptr, C, W, pointers(ref_states), silu,
                           ref.data());
          auto states = init;
          std::vector<float> y(size_t(B * C));
          conv1d_step(x.data(), stride, w.data(), silu ? bias.data() : nullptr, C, W, pointers(states), silu, y.data(),
                      path());
          EXPECT_LT(rel_err(y, ref), 1e-6);
          EXPECT_EQ(states, ref_states);
        }
}

INSTANTIATE_TEST_SUITE_P(Simd, Conv1dPath, SimdPaths(), SimdPathName);
