// What the CPU backend makes of a checkpoint's weight matrices: the bytes as stored (the same memory), except
// Q4_0 where its interleaved kernels run (kernels/cpu/quant/q4_0x16.h): then a repacked copy that holds every
// row's blocks, a row slice (an expert of a stacked tensor) included, and multiplies like the Q4_0 rows.

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "backend/cpu_backend.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/quant/q4_0x16.h"
#include "linfer/core/cpu_features.h"

namespace {

using namespace linfer;

std::vector<uint8_t> random_q4_0(int64_t rows, int64_t K) {
  std::mt19937 rng(3);
  std::vector<uint8_t> b(dtype_nbytes(DType::Q4_0, rows * K));
  for (auto& v : b) v = uint8_t(rng());
  const uint16_t d = f32_to_f16(0.01f);
  for (size_t i = 0; i < b.size(); i += 18) std::memcpy(b.data() + i, &d, 2);
  return b;
}

}  // namespace

TEST(CpuWeights, Q4_0IsRepackedWhereItsKernelsRun) {
  const int64_t N = 40, K = 96, E = 3;  // three experts of N rows each, stacked
  auto bytes = random_q4_0(E * N, K);
  const TensorView all(bytes.data(), DType::Q4_0, {E, N, K});
  const TensorView expert = all.slice0(1, 2).reshape({N, K});
  const Weight w = cpu_backend().weight(expert);
  if (!kernels::quant::q4_0x16_runs(simd_level())) {
    EXPECT_EQ(w.view.dtype(), DType::Q4_0);
    EXPECT_EQ(w.view.data(), expert.data()) << "weights are used in place";
    GTEST_SKIP() << "no AVX-512 VNNI on the avx512 path here: Q4_0 stays as stored";
  }
  ASSERT_EQ(w.view.dtype(), DType::Q4_0x16);
  ASSERT_TRUE(w.owner) << "the repacked copy must be kept alive by the weight";
  EXPECT_EQ(w.view.shape(), expert.shape());
  std::vector<uint8_t> row(size_t(K / 32 * 18));
  for (int64_t n = 0; n < N; ++n) {
    kernels::quant::q4_0x16_row({w.view.data(), DType::Q4_0x16, N, K, K}, n, 0, K / 32, row.data());
    ASSERT_EQ(0, std::memcmp(row.data(), bytes.data() + (N + n) * (K / 32) * 18, row.size())) << "row " << n;
  }
  std::vector<float> x(size_t(2 * K), 0.5f), y(size_t(2 * N)), expect(y.size());
  kernels::matmul(x.data(), 2, w.view, nullptr, y.data());
  kernels::matmul(x.data(), 2, expert, nullptr, expect.data());
  for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y[i], expect[i], 1e-5f * (1 + std::fabs(expect[i]))) << i;

  const TensorView q8(bytes.data(), DType::Q8_0, {2, 64});  // other types: in place
  EXPECT_EQ(cpu_backend().weight(q8).view.data(), q8.data());
}
