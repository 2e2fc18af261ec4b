// kernels/cpu/activation.h against the float64 formulas of kernels/reference/activation.h, on values
// that reach the saturated tails, on every SIMD path and odd lengths (vector body + tail).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "dense_test_util.h"
#include "kernels/cpu/activation.h"
#include "kernels/reference/activation.h"

using namespace linfer;
using namespace dense_test;
namespace ref = linfer::kernels::ref;

namespace {

std::vector<float> test_inputs(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  auto x = random_vec(rng, size_t(n), 6.0f);
  const float extremes[] = {0.0f, -0.0f, 20.0f, 20.5f, 19.5f, -20.0f, 88.0f, -88.0f, -100.0f, 100.0f, 1e-8f, -1e-8f};
  for (size_t i = 0; i < std::size(extremes) && i < x.size(); ++i) x[i * 3 % x.size()] = extremes[i];
  return x;
}

using Fn = void (*)(const float*, float*, int64_t, SimdLevel);
using RefFn = void (*)(const float*, float*, int64_t);

void check(SimdLevel path, Fn fn, RefFn ref_fn, const char* name, double tol) {
  for (int64_t n : {1, 7, 8, 9, 63, 1000}) {
    auto x = test_inputs(n, uint32_t(n));
    std::vector<float> ref(x.size());
    ref_fn(x.data(), ref.data(), n);
    std::vector<float> y(x.size());
    fn(x.data(), y.data(), n, path);
    for (int64_t i = 0; i < n; ++i)
      ASSERT_NEAR(y[i], ref[i], tol * std::max(1.0, std::fabs(double(ref[i])))) << name << " x=" << x[i];
    fn(x.data(), x.data(), n, path);  // in place
    EXPECT_EQ(x, y) << name << " in place";
  }
}

class ActivationPath : public SimdPathTest {};

}  // namespace

TEST_P(ActivationPath, Silu) { check(path(), kernels::silu, ref::silu, "silu", 1e-6); }
TEST_P(ActivationPath, Sigmoid) { check(path(), kernels::sigmoid, ref::sigmoid, "sigmoid", 1e-6); }
TEST_P(ActivationPath, Softplus) { check(path(), kernels::softplus, ref::softplus, "softplus", 1e-6); }
TEST_P(ActivationPath, Gelu) { check(path(), kernels::gelu, ref::gelu, "gelu", 1e-6); }
TEST_P(ActivationPath, GeluTanh) { check(path(), kernels::gelu_tanh, ref::gelu_tanh, "gelu_tanh", 1e-6); }

TEST_P(ActivationPath, SoftplusThresholdAndNanLikeTorch) {
  // torch: x > 20 passes through unchanged; at 20 itself log1p(e^20) (differs from 20 by 2e-9); NaN stays NaN
  float x[] = {20.0f, 20.001f, 50.0f, std::numeric_limits<float>::quiet_NaN()}, y[4];
  kernels::softplus(x, y, 4, path());
  EXPECT_EQ(y[1], 20.001f);
  EXPECT_EQ(y[2], 50.0f);
  EXPECT_FLOAT_EQ(y[0], float(ref::softplus(20.0)));
  EXPECT_TRUE(std::isnan(y[3]));
}

TEST_P(ActivationPath, SwigluPlainAndPacked) {
  std::mt19937 rng(5);
  for (int64_t n : {1, 13, 64, 257}) {
    const int64_t rows = 5;
    auto gu = random_vec(rng, size_t(rows * 2 * n), 3.0f);
    std::vector<float> ref(size_t(rows * n));
    ref::swiglu_packed(gu.data(), ref.data(), rows, n);
    std::vector<float> y(size_t(rows * n));
    kernels::swiglu_packed(gu.data(), y.data(), rows, n, path());
    EXPECT_LT(rel_err(y, ref), 1e-6) << n;
    std::vector<float> inplace = gu;  // y aliasing gu, as the MoE path uses it
    kernels::swiglu_packed(inplace.data(), inplace.data(), rows, n, path());
    EXPECT_EQ(std::vector<float>(inplace.begin(), inplace.begin() + rows * n), y);
    std::vector<float> y1(static_cast<size_t>(n)), r1(static_cast<size_t>(n));
    kernels::swiglu(gu.data(), gu.data() + n, y1.data(), n, path());
    ref::swiglu(gu.data(), gu.data() + n, r1.data(), n);
    EXPECT_LT(rel_err(y1, r1), 1e-6);
  }
}

INSTANTIATE_TEST_SUITE_P(Simd, ActivationPath, SimdPaths(), SimdPathName);
