// RoPE on the GPU (kernels/cuda/rope.h) against ref::rope: partial rotary (Qwen3-Next's quarter of the head),
// full rotary, odd head counts, positions up to 10^6 (large angles), padded rows that must stay untouched.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cuda_test_util.h"
#include "kernels/cpu/rope.h"
#include "kernels/cuda/rope.h"
#include "kernels/reference/rope.h"
#include "linfer/core/error.h"

using namespace linfer::kernels;
using namespace cuda_test;

namespace {

struct RopeCase {
  const char* name;
  int64_t T, H, D, rotary, pad;
  double theta;
};

void PrintTo(const RopeCase& c, std::ostream* os) { *os << c.name; }

class CudaRope : public ::testing::TestWithParam<RopeCase> {};

TEST_P(CudaRope, MatchesReference) {
  LINFER_SKIP_WITHOUT_CUDA();
  const RopeCase& c = GetParam();
  std::mt19937 rng(uint32_t(std::hash<std::string>{}(c.name)));
  const int64_t ld = c.H * c.D + c.pad;
  const auto x = normal(rng, c.T * ld);
  std::vector<int64_t> pos(c.T);
  std::uniform_int_distribution<int64_t> any(0, 1000000);
  for (int64_t t = 0; t < c.T; ++t) pos[t] = t < 3 ? t : any(rng);  // 0, 1, 2 and far positions
  const auto inv = rope_inv_freq(c.rotary, c.theta);

  std::vector<float> dense(c.T * c.H * c.D);
  for (int64_t t = 0; t < c.T; ++t) std::copy_n(x.data() + t * ld, c.H * c.D, dense.data() + t * c.H * c.D);
  ref::rope(dense.data(), c.T, c.H, c.D, c.rotary, pos, inv);

  DeviceBuffer<float> d_x(x), d_inv(inv);
  DeviceBuffer<int64_t> d_pos(pos);
  cuda::rope({d_x.data(), c.T, c.H * c.D, ld}, c.H, c.D, c.rotary, d_pos.data(), d_inv.data(), nullptr);
  cuda::cuda_check(cudaDeviceSynchronize(), "rope");
  const auto out = d_x.download();
  std::vector<float> got(dense.size());
  size_t pad_changed = 0;
  for (int64_t t = 0; t < c.T; ++t) {
    std::copy_n(out.data() + t * ld, c.H * c.D, got.data() + t * c.H * c.D);
    for (int64_t p = c.H * c.D; p < ld; ++p) pad_changed += out[t * ld + p] != x[t * ld + p];
  }
  EXPECT_LT(rel_err(got, dense), 2e-3);
  EXPECT_LT(rel_err(got, dense), 1e-6) << "the same float32 angle and float64 cos / sin as the reference";
  EXPECT_EQ(pad_changed, 0u);
}

const RopeCase kCases[] = {
    {"qwen3_next_partial", 37, 5, 256, 64, 3, 10000.0},
    {"full_rotary", 9, 3, 70, 70, 0, 500000.0},
    {"tiny_rotary", 300, 2, 33, 2, 1, 10000.0},
};

INSTANTIATE_TEST_SUITE_P(Cuda, CudaRope, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(CudaRopeArgs, OddOrOversizedRotaryIsAnError) {
  float dummy = 0;
  EXPECT_THROW(cuda::rope({&dummy, 1, 8, 8}, 1, 8, 3, nullptr, nullptr, nullptr), linfer::Error);
  EXPECT_THROW(cuda::rope({&dummy, 1, 8, 8}, 1, 8, 10, nullptr, nullptr, nullptr), linfer::Error);
}

}  // namespace
