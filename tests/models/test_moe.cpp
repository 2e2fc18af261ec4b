// The mixture of experts against plain float64 references on random inputs:
//   - routing (moe_route): sigmoid scores + e_score_correction_bias for selection + renormalised
//     top-k + routed scaling (Kimi Linear), softmax top-k with and without norm_topk_prob
//     (Qwen3-Next), group-limited selection; exact ties go to the lower expert index;
//   - the whole block (Moe::forward): routed experts + shared expert (plain or sigmoid-gated), both
//     expert layouts (gate / up tensors, packed gate_up), prefill-sized and decode-sized T.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "ffn/moe.h"
#include "linfer/core/thread_pool.h"
#include "moe_reference.h"

namespace {

using linfer::MoeDims;
using namespace moe_test;

TEST(MoeRoute, SigmoidWithCorrectionBiasRenormalisedAndScaled) {
  std::mt19937 rng(1);
  for (auto [E, k] : {std::pair<int64_t, int64_t>{8, 2}, {32, 4}, {64, 6}, {256, 8}, {16, 16}, {5, 1}}) {
    const int64_t T = 37;
    const auto logits = normal(rng, T * E, 2.0f);
    const auto bias = normal(rng, E, 0.1f);  // large enough to change the choice, not the weights
    check_route(kimi_dims(E, k), logits, bias, T, "sigmoid+bias");
    check_route(kimi_dims(E, k), logits, {}, T, "sigmoid, no bias");
  }
}

TEST(MoeRoute, BiasChangesSelectionButNotWeights) {
  // Expert 0 has the lowest score but a bias that makes it first: it is chosen, weighted by its score.
  MoeDims d = kimi_dims(4, 2);
  d.routed_scaling = 1.0;
  const std::vector<float> logits = {-3.0f, 1.0f, 0.5f, 2.0f}, bias = {10.0f, 0.0f, 0.0f, 0.0f};
  std::vector<int32_t> ids(2);
  std::vector<float> w(2);
  linfer::moe_route(d, logits.data(), bias.data(), 1, ids.data(), w.data());
  const double s0 = 1 / (1 + std::exp(3.0)), s3 = 1 / (1 + std::exp(-2.0));
  EXPECT_EQ(ids, (std::vector<int32_t>{0, 3}));
  EXPECT_NEAR(w[0], s0 / (s0 + s3), 1e-6);
  EXPECT_NEAR(w[1], s3 / (s0 + s3), 1e-6);
}

TEST(MoeRoute, SoftmaxTopKWithAndWithoutNormTopkProb) {
  std::mt19937 rng(2);
  for (bool norm : {true, false})
    for (auto [E, k] : {std::pair<int64_t, int64_t>{8, 2}, {32, 4}, {128, 8}, {512, 10}, {3, 3}}) {
      const int64_t T = 29;
      check_route(qwen_dims(E, k, norm), normal(rng, T * E, 3.0f), {}, T, norm ? "softmax norm" : "softmax raw");
    }
}

TEST(MoeRoute, ExactTiesGoToTheLowerIndex) {
  std::mt19937 rng(3);
  const int64_t T = 64;
  for (int64_t E : {8, 32}) {
    // Four logit levels over E experts: most tokens have ties across the top-k boundary.
    const auto logits = levels(rng, T * E, {-1.0f, 0.0f, 0.5f, 2.0f});
    check_route(qwen_dims(E, 4, true), logits, {}, T, "softmax ties");
    check_route(qwen_dims(E, 4, false), logits, {}, T, "softmax ties, raw");
    check_route(kimi_dims(E, 4), logits, levels(rng, E, {0.0f, 0.25f}), T, "sigmoid ties");
    check_route(kimi_dims(E, 4), logits, {}, T, "sigmoid ties, no bias");
  }
  // All equal: the first k experts, equal weights.
  const std::vector<float> flat(8, 0.3f);
  std::vector<int32_t> ids(3);
  std::vector<float> w(3);
  linfer::moe_route(qwen_dims(8, 3, true), flat.data(), nullptr, 1, ids.data(), w.data());
  EXPECT_EQ(ids, (std::vector<int32_t>{0, 1, 2}));
  for (float x : w) EXPECT_NEAR(x, 1.0 / 3, 1e-6);
}

TEST(MoeRoute, GroupLimitedSelection) {
  std::mt19937 rng(4);
  MoeDims d = kimi_dims(32, 4);
  d.groups = 8, d.topk_groups = 2;
  const int64_t T = 41;
  check_route(d, normal(rng, T * 32, 2.0f), normal(rng, 32, 0.1f), T, "groups 8 / top 2");
  d.groups = 4, d.topk_groups = 1;
  check_route(d, normal(rng, T * 32, 2.0f), normal(rng, 32, 0.1f), T, "groups 4 / top 1");
}

TEST(MoeForward, KimiStyleMatchesReference) {
  MoeCase c{kimi_dims(8, 2)};
  c.d.intermediate = 16, c.d.shared_intermediate = 32;
  for (int64_t T : {1, 2, 3, 7, 65}) check_moe(c, T, 10 + uint32_t(T));
}

TEST(MoeForward, QwenStyleGatedSharedExpertPackedExperts) {
  MoeCase c{qwen_dims(16, 4, true)};
  c.d.intermediate = 8, c.d.shared_intermediate = 24, c.d.shared_gate = true, c.packed = true;
  for (int64_t T : {1, 4, 5, 40}) check_moe(c, T, 20 + uint32_t(T));
  c.d.renormalize = false, c.packed = false;
  for (int64_t T : {1, 33}) check_moe(c, T, 30 + uint32_t(T));
}

TEST(MoeForward, NoSharedExpertAndTwoThreads) {
  MoeCase c{qwen_dims(32, 4, false)};
  c.d.intermediate = 12;
  linfer::set_num_threads(2);
  for (int64_t T : {1, 2, 17}) check_moe(c, T, 40 + uint32_t(T));
  linfer::set_num_threads(0);
}

TEST(MoeForward, ManyTokensPerExpertOnTwoThreadsMatchesReference) {
  // Prefill-sized batches (about 75 and 375 rows per expert) on two threads: each expert's GEMM splits
  // its rows across the pool.
  MoeCase c{kimi_dims(16, 4)};
  c.d.intermediate = 32, c.d.shared_intermediate = 32, c.H = 48;
  linfer::set_num_threads(2);
  for (int64_t T : {300, 1500}) check_moe(c, T, 50 + uint32_t(T));
  linfer::set_num_threads(0);
}

}  // namespace
