// kernels/cpu/rope.h against kernels/reference/rope.h: full and partial rotary, packed sequences
// with their own start positions, large positions; plus known values of the rotation itself.
#include <gtest/gtest.h>

#include <cmath>

#include "dense_test_util.h"
#include "kernels/cpu/rope.h"
#include "kernels/reference/rope.h"
#include "linfer/core/error.h"

using namespace linfer;
using namespace linfer::kernels;
using namespace dense_test;

TEST(Rope, InvFreqMatchesDefinition) {
  auto inv = rope_inv_freq(64, 10000.0);
  ASSERT_EQ(inv.size(), 32u);
  EXPECT_EQ(inv[0], 1.0f);
  for (size_t i = 0; i < inv.size(); ++i) EXPECT_NEAR(inv[i], std::pow(10000.0, -2.0 * i / 64), 1e-7 * inv[i] + 1e-12);
  EXPECT_THROW(rope_inv_freq(63, 10000.0), Error);
}

TEST(Rope, RotatesPairsHalfApart) {
  // D = 4, rotary 4: pairs (0, 2) and (1, 3); position 1, inv_freq {1, 0.5}
  std::vector<float> x = {1, 0, 0, 1};
  const std::vector<float> inv = {1.0f, 0.5f};
  const std::vector<int64_t> pos = {1};
  rope(x.data(), 1, 1, 4, 4, pos, inv);
  EXPECT_NEAR(x[0], std::cos(1.0), 1e-7);   // x0 cos − x2 sin
  EXPECT_NEAR(x[2], std::sin(1.0), 1e-7);   // x2 cos + x0 sin
  EXPECT_NEAR(x[1], -std::sin(0.5), 1e-7);  // x1 cos − x3 sin
  EXPECT_NEAR(x[3], std::cos(0.5), 1e-7);
}

namespace {
class RopePath : public SimdPathTest {};
}  // namespace

TEST_P(RopePath, PackedSequencesFullAndPartialAgainstReference) {
  std::mt19937 rng(21);
  // three sequences with cache lengths 0, 17 and 100000 (long-context positions)
  std::vector<int64_t> pos;
  for (int64_t i = 0; i < 5; ++i) pos.push_back(i);
  for (int64_t i = 0; i < 3; ++i) pos.push_back(17 + i);
  for (int64_t i = 0; i < 4; ++i) pos.push_back(100000 + i);
  const int64_t T = int64_t(pos.size());
  for (int64_t D : {16, 64, 128, 256})
    for (int64_t rot : {D, D / 4, D / 2}) {
      const int64_t H = 3;
      auto x = random_vec(rng, size_t(T * H * D));
      auto inv = rope_inv_freq(rot, D == 256 ? 1e7 : 10000.0);
      auto ref = x;
      ref::rope(ref.data(), T, H, D, rot, pos, inv);
      auto y = x;
      rope(y.data(), T, H, D, rot, pos, inv, path());
      EXPECT_LT(rel_err(y, ref), 1e-6) << "D=" << D << " rot=" << rot;
      for (int64_t t = 0; t < T; ++t)  // dims past rotary_dim untouched
        for (int64_t i = rot; i < D; ++i) ASSERT_EQ(y[(t * H + 1) * D + i], x[(t * H + 1) * D + i]);
    }
}

INSTANTIATE_TEST_SUITE_P(Simd, RopePath, SimdPaths(), SimdPathName);
