// The prefill GEMM with bf16-rounded x (kernels/cpu/gemm_bf16.h, --activations bf16) against the float64
// product of the rounded x with the weights, at sizes on both sides of every tile, panel and block edge, and
// its wiring into matmul(): taken only when the setting asks for it, for BF16 weights above the GEMV's rows.
#include <gtest/gtest.h>

#include "dense_test_util.h"
#include "kernels/cpu/gemm_bf16.h"
#include "kernels/cpu/matmul.h"
#include "linfer/core/thread_pool.h"

using namespace linfer;
using namespace dense_test;

namespace {

kernels::GemmBf16Fn kernel_or_null() {
  return cpu_supports(SimdLevel::Avx512) ? kernels::gemm_bf16_dot_for(SimdLevel::Avx512) : nullptr;
}

// y = bf16(x) · wᵀ + bias in float64, w as stored (bf16).
std::vector<float> reference(const std::vector<float>& x, int64_t M, const StoredWeights& w, int64_t N,
                             int64_t K, const float* bias) {
  const auto* wb = reinterpret_cast<const uint16_t*>(w.bytes.data());
  std::vector<float> y(size_t(M * N));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double s = bias ? bias[n] : 0.0;
      for (int64_t k = 0; k < K; ++k)
        s += double(bf16_to_f32(f32_to_bf16(x[size_t(m * K + k)]))) * double(bf16_to_f32(wb[n * K + k]));
      y[size_t(m * N + n)] = float(s);
    }
  return y;
}

}  // namespace

TEST(GemmBf16Dot, MatchesTheProductOfTheRoundedX) {
  const auto fn = kernel_or_null();
  if (!fn) GTEST_SKIP() << "needs the avx512 path on a CPU with AVX-512 BF16";
  uint32_t seed = 1;
  for (int threads : {1, 3}) {
    set_num_threads(threads);
    for (int64_t M : {1, 12, 13, 49, 150, 1100})  // 1100: three passes of rows
      for (int64_t N : {1, 17, 32, 33, 129, 300})
        for (int64_t K : {1, 2, 31, 33, 64, 257, 300}) {
          std::mt19937 rng(++seed);
          const auto x = random_vec(rng, size_t(M * K));
          const auto w = store_as(DType::BF16, random_vec(rng, size_t(N * K), 0.1f));
          const auto bias = random_vec(rng, size_t(N));
          const float* b = seed % 2 ? bias.data() : nullptr;
          std::vector<float> y(size_t(M * N), NAN);
          fn(x.data(), M, {w.bytes.data(), DType::BF16, N, K, K}, b, y.data());
          EXPECT_LT(rel_err(y, reference(x, M, w, N, K, b)), 2e-6)
              << "M=" << M << " N=" << N << " K=" << K << ", " << threads << " threads";
        }
  }
  set_num_threads(0);
}

TEST(GemmBf16Dot, MatmulTakesItOnlyWhenSet) {
  const auto fn = kernel_or_null();
  if (!fn) GTEST_SKIP() << "needs the avx512 path on a CPU with AVX-512 BF16";
  std::mt19937 rng(7);
  const int64_t M = 60, N = 70, K = 130;
  const auto x = random_vec(rng, size_t(M * K));
  const auto w = store_as(DType::BF16, random_vec(rng, size_t(N * K), 0.1f));
  const TensorView wv(const_cast<uint8_t*>(w.bytes.data()), DType::BF16, {N, K});
  std::vector<float> direct(size_t(M * N)), via(direct.size()), f32(direct.size()), part(size_t(50 * N));
  fn(x.data(), M, {w.bytes.data(), DType::BF16, N, K, K}, nullptr, direct.data());
  {
    const ActivationsGuard bf16(QuantActivations::BF16);
    kernels::matmul(x.data(), M, wv, nullptr, via.data(), SimdLevel::Avx512);
    kernels::matmul(x.data() + 10 * K, 50, wv, nullptr, part.data(), SimdLevel::Avx512);  // rows 10..59 alone
  }
  EXPECT_EQ(via, direct) << "matmul must take the bf16 GEMM when the setting asks for it";
  for (int64_t i = 0; i < 50 * N; ++i) ASSERT_EQ(part[size_t(i)], direct[size_t(10 * N + i)]) << "row bits vary with M";
  kernels::matmul(x.data(), M, wv, nullptr, f32.data(), SimdLevel::Avx512);
  EXPECT_NE(f32, direct) << "float32 activations must not round x";
  EXPECT_LT(rel_err(direct, f32), 1e-2) << "bf16 rounding of x far from float32";
}
