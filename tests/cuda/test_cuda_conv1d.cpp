// The conv1d decode step on the GPU (kernels/cuda/conv1d.h) against ref::conv1d_step: windows in random slots
// of a larger pool, two steps, strided input, with and without bias / SiLU, W = 1 (no window).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cuda_test_util.h"
#include "kernels/cuda/conv1d.h"
#include "kernels/reference/conv1d.h"

using namespace linfer::kernels;
using namespace cuda_test;

namespace {

struct ConvCase {
  const char* name;
  int64_t C, W, B, x_pad;
  bool bias, silu;
};

void PrintTo(const ConvCase& c, std::ostream* os) { *os << c.name; }  // gtest's name for a failing case

class CudaConv1dStep : public ::testing::TestWithParam<ConvCase> {};

TEST_P(CudaConv1dStep, MatchesReference) {
  LINFER_SKIP_WITHOUT_CUDA();
  const ConvCase c = GetParam();
  const int64_t C = c.C, W = c.W, B = c.B, xs = C + c.x_pad, n_slots = 2 * B + 3;
  std::mt19937 rng(uint32_t(std::hash<std::string>{}(c.name)));
  Pool win(rng, n_slots, std::max<int64_t>(1, C * (W - 1)), 1.0f);
  win.upload();
  const auto before = win.host;
  const auto w = normal(rng, C * W, 0.5f), bias = normal(rng, C);
  DeviceBuffer<float> d_w(w), d_bias(bias);
  std::vector<int32_t> used;
  for (int step = 0; step < 2; ++step) {
    const auto slots = pick_slots(rng, B, n_slots);
    used.insert(used.end(), slots.begin(), slots.end());
    const auto x = normal(rng, B * xs);
    std::vector<float*> windows;
    for (int32_t s : slots) windows.push_back(win.slot(s));
    std::vector<float> y_ref(B * C);
    ref::conv1d_step(x.data(), xs, w.data(), c.bias ? bias.data() : nullptr, C, W, windows, c.silu, y_ref.data());

    DeviceBuffer<float> d_x(x), d_y(B * C);
    DeviceBuffer<int32_t> d_slots(slots);
    d_y.fill_bytes(0xFF);
    cuda::conv1d_step(d_x.data(), xs, d_w.data(), c.bias ? d_bias.data() : nullptr, C, W, win.device(), d_slots.data(),
                      B, c.silu, d_y.data(), nullptr);
    cuda::cuda_check(cudaDeviceSynchronize(), "conv1d_step");
    EXPECT_LT(rel_err(d_y.download(), y_ref), 1e-5) << "outputs of step " << step;
  }
  if (W > 1)
    expect_pool(win.dev.download(), before, std::vector<double>(win.host.begin(), win.host.end()), win, used, 1e-7,
                "conv windows");
}

const ConvCase kConvCases[] = {
    {"mamba2_xbc", 37, 4, 6, 5, true, true},
    {"wide_no_bias", 1000, 2, 3, 0, false, false},
    {"width_one", 16, 1, 4, 0, true, true},
};

INSTANTIATE_TEST_SUITE_P(Cuda, CudaConv1dStep, ::testing::ValuesIn(kConvCases),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
