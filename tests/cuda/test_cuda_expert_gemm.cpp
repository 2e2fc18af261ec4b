// The routed experts' tensor-core products (kernels/cuda/expert_gemm.h) against float64 loops over the same
// bf16 weights, and against expert_gemv (float32 on the CUDA cores): columns and k not multiples of the tiles,
// rows per expert not multiples of 64 and very uneven, an expert without rows, x rows shared by several of
// y's (x_every), weights split into two row blocks, strided x and y (y's padding left alone). x's three bf16
// terms must reach float32 quality: the bound sits below what two terms would give (checked here too).
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "cuda_test_util.h"
#include "kernels/cuda/dense.h"
#include "kernels/cuda/expert_gemm.h"

namespace {

namespace cuda = linfer::kernels::cuda;
using namespace cuda_test;

constexpr double kTol = 1e-6;  // float32 sums of up to ~1,000 products; two bf16 terms of x: ~2e-6

struct Case {
  int64_t E, N, K, first_rows, J, x_every;
  bool skewed;  // most rows on one expert
};

// x with a full 24-bit significand in every element, rounded to two bf16 terms (what a kernel that drops the
// third would multiply).
float two_terms(float v) {
  const float hi = linfer::bf16_to_f32(linfer::f32_to_bf16(v));
  return hi + linfer::bf16_to_f32(linfer::f32_to_bf16(v - hi));
}

TEST(CudaExpertGemm, MatchesFloat64AndTheGemv) {
  LINFER_SKIP_WITHOUT_CUDA();
  std::mt19937 rng(21);
  const Case cases[] = {{5, 200, 264, 77, 150, 3, false},
                        {32, 1024, 512, 1024, 2048, 1, false},
                        {4, 9, 40, 5, 260, 1, true},
                        {8, 131, 1032, 64, 640, 4, false},
                        {16, 256, 136, 256, 1500, 2, true}};  // ~1,300 rows on one expert: 21 tiles
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message() << "E " << c.E << " N " << c.N << " K " << c.K << " J " << c.J);
    const int64_t T = (c.J + c.x_every - 1) / c.x_every, ldx = c.K + 4, ldy = c.N + 3;
    const auto x = normal(rng, size_t(T * ldx));
    std::vector<Bf16Copy> w;
    std::vector<DeviceBuffer<uint16_t>> first, second;
    std::vector<cuda::ExpertRows> table(size_t(c.E));
    for (int64_t e = 0; e < c.E; ++e) {
      w.push_back(to_bf16(normal(rng, size_t(c.N * c.K), 0.05f)));
      const auto& b = w.back().bits;
      first.emplace_back(std::vector<uint16_t>(b.begin(), b.begin() + c.first_rows * c.K));
      second.emplace_back(c.first_rows < c.N ? std::vector<uint16_t>(b.begin() + c.first_rows * c.K, b.end())
                                             : std::vector<uint16_t>(8));
      table[size_t(e)] = {first.back().data(), second.back().data()};
    }
    std::vector<float> ids(size_t(c.J));
    for (auto& id : ids)  // the last expert gets no rows
      id = float(c.skewed && rng() % 8 != 0 ? 1 : std::uniform_int_distribution<int64_t>(0, c.E - 2)(rng));
    DeviceBuffer<float> d_x(x), d_ids(ids), d_y(std::vector<float>(size_t(c.J * ldy), 7.0f)),
        d_gemv(std::vector<float>(size_t(c.J * ldy), 7.0f));
    DeviceBuffer<cuda::ExpertRows> d_table(table);
    const cuda::Rows rx{d_x.data(), T, c.K, ldx};
    ASSERT_TRUE(cuda::expert_gemm_takes(rx, linfer::DType::BF16, c.E, c.K, c.J));
    DeviceBuffer<char> scratch(size_t(cuda::expert_gemm_scratch_bytes(c.E, c.J, c.x_every, c.K)));
    cuda::expert_gemm(rx, c.x_every, d_table.data(), c.E, c.first_rows, c.N, c.K, d_ids.data(),
                      {d_y.data(), c.J, c.N, ldy}, scratch.data(), nullptr);
    cuda::expert_gemv(rx, c.x_every, d_table.data(), c.E, c.first_rows, linfer::DType::BF16, c.N, c.K, d_ids.data(),
                      {d_gemv.data(), c.J, c.N, ldy}, nullptr);
    cuda::cuda_check(cudaDeviceSynchronize(), "expert_gemm");
    const auto y = d_y.download(), gemv = d_gemv.download();
    std::vector<float> out, by_gemv, two;
    std::vector<double> want;
    for (int64_t j = 0; j < c.J; ++j) {
      const float* xr = x.data() + j / c.x_every * ldx;
      const float* wr = w[size_t(ids[size_t(j)])].values.data();
      for (int64_t n = 0; n < c.N; ++n) {
        double s = 0, s2 = 0;
        for (int64_t k = 0; k < c.K; ++k) {
          s += double(xr[k]) * wr[n * c.K + k];
          s2 += double(two_terms(xr[k])) * wr[n * c.K + k];
        }
        want.push_back(s);
        two.push_back(float(s2));
        out.push_back(y[size_t(j * ldy + n)]);
        by_gemv.push_back(gemv[size_t(j * ldy + n)]);
      }
      for (int64_t n = c.N; n < ldy; ++n) ASSERT_EQ(y[size_t(j * ldy + n)], 7.0f) << "padding of row " << j;
    }
    const double err = rel_err(out, want), err_gemv = rel_err(by_gemv, want), err_two = rel_err(two, want);
    EXPECT_LT(err, kTol);
    EXPECT_LT(rel_err(out, std::vector<double>(by_gemv.begin(), by_gemv.end())), 2 * kTol);
    EXPECT_GT(err_two, 1.5 * kTol) << "the bound would not catch a kernel that drops x's third term";
    std::printf("expert_gemm E %ld N %ld K %ld J %ld: error %.2e (gemv %.2e, two terms %.2e)\n", long(c.E), long(c.N),
                long(c.K), long(c.J), err, err_gemv, err_two);
  }
}

TEST(CudaExpertGemm, TakesOnlyWhatItCan) {
  const cuda::Rows x{reinterpret_cast<float*>(uintptr_t(256)), 64, 512, 512};
  EXPECT_TRUE(cuda::expert_gemm_takes(x, linfer::DType::BF16, 32, 512, 32 * cuda::kExpertGemmMinRowsPerExpert));
  EXPECT_FALSE(cuda::expert_gemm_takes(x, linfer::DType::BF16, 32, 512, 32 * cuda::kExpertGemmMinRowsPerExpert - 1));
  EXPECT_FALSE(cuda::expert_gemm_takes(x, linfer::DType::F16, 32, 512, 4096));
  EXPECT_FALSE(cuda::expert_gemm_takes(x, linfer::DType::BF16, 32, 500, 4096));  // K % 8
  EXPECT_FALSE(cuda::expert_gemm_takes({x.p, 64, 512, 514}, linfer::DType::BF16, 32, 512, 4096));  // ld % 4
  EXPECT_FALSE(cuda::expert_gemm_takes({x.p + 1, 64, 512, 512}, linfer::DType::BF16, 32, 512, 4096));  // alignment
}

}  // namespace
