// The MoE's row moves on the GPU (kernels/cuda/dense.h: gather_rows, scatter_add_rows, scale_rows_sigmoid)
// against plain float64 loops: random row picks out of a strided source, weighted scatter-adds into a
// destination whose other rows must stay as they were. And the GEMV over more rows than one launch takes,
// for several heads at once (MLA's absorbed decode of a batch).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "cuda_test_util.h"
#include "kernels/cuda/dense.h"

using namespace linfer::kernels;
using namespace cuda_test;

namespace {

TEST(CudaMoeRows, GatherScatterAndGateMatchLoops) {
  LINFER_SKIP_WITHOUT_CUDA();
  std::mt19937 rng(11);
  const int64_t T = 77, C = 130, ld = C + 3, n = 29;
  std::vector<int64_t> all(T);
  for (int64_t t = 0; t < T; ++t) all[t] = t;
  std::shuffle(all.begin(), all.end(), rng);
  const std::vector<int64_t> rows(all.begin(), all.begin() + n);  // distinct, in random order
  const auto src = normal(rng, T * ld), w = normal(rng, n), y0 = normal(rng, T * ld), g = normal(rng, T * 2);

  DeviceBuffer<float> d_src(src), d_w(w), d_y(y0), d_g(g), d_tmp(n * C);
  DeviceBuffer<int64_t> d_rows(rows);
  d_tmp.fill_bytes(0xFF);
  cuda::gather_rows({d_src.data(), T, C, ld}, d_rows.data(), n, {d_tmp.data(), n, C, C}, nullptr);
  cuda::scatter_add_rows({d_tmp.data(), n, C, C}, d_rows.data(), d_w.data(), n, {d_y.data(), T, C, ld}, nullptr);
  cuda::scale_rows_sigmoid({d_y.data(), T, C, ld}, {d_g.data(), T, 1, 2}, nullptr);
  cuda::cuda_check(cudaDeviceSynchronize(), "moe rows");

  std::vector<double> gathered(n * C), y(y0.begin(), y0.end());
  for (int64_t j = 0; j < n; ++j)
    for (int64_t c = 0; c < C; ++c) {
      gathered[j * C + c] = src[rows[j] * ld + c];
      y[rows[j] * ld + c] += double(w[j]) * src[rows[j] * ld + c];
    }
  for (int64_t t = 0; t < T; ++t)
    for (int64_t c = 0; c < C; ++c) y[t * ld + c] /= 1.0 + std::exp(-double(g[t * 2]));
  EXPECT_LT(rel_err(d_tmp.download(), gathered), 1e-7);
  const auto got = d_y.download();
  std::vector<float> body;
  std::vector<double> want;
  size_t pad_changed = 0;
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t c = 0; c < C; ++c) body.push_back(got[t * ld + c]), want.push_back(y[t * ld + c]);
    for (int64_t c = C; c < ld; ++c) pad_changed += got[t * ld + c] != y0[t * ld + c];
  }
  EXPECT_LT(rel_err(body, want), 1e-6);
  EXPECT_EQ(pad_changed, 0u);
}

TEST(CudaGemv, ManyRowsAndHeadsMatchLoops) {
  LINFER_SKIP_WITHOUT_CUDA();
  std::mt19937 rng(12);
  const int64_t M = 2 * cuda::kGemvMaxRows + 3, N = 37, K = 48, heads = 3;
  const int64_t ldx = heads * K + 5, ldy = heads * N + 2;  // head h: x columns h·K.., w h·N·K.., y columns h·N..
  const auto x = normal(rng, M * ldx), w = normal(rng, heads * N * K);
  DeviceBuffer<float> d_x(x), d_w(w), d_y(M * ldy);
  d_y.fill_bytes(0xFF);
  cuda::gemv({d_x.data(), M, K, ldx}, d_w.data(), linfer::DType::F32, N, K, nullptr, {d_y.data(), M, N, ldy}, nullptr,
             {.n = heads, .x = K, .w = N * K, .y = N});
  cuda::cuda_check(cudaDeviceSynchronize(), "gemv");
  const auto got = d_y.download();
  std::vector<float> out;
  std::vector<double> want;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t n = 0; n < N; ++n) {
        double s = 0;
        for (int64_t k = 0; k < K; ++k) s += double(x[m * ldx + h * K + k]) * w[(h * N + n) * K + k];
        out.push_back(got[m * ldy + h * N + n]), want.push_back(s);
      }
  EXPECT_LT(rel_err(out, want), 1e-6);
}

}  // namespace
