// Dense ops of kernels/cuda/dense.h against plain float64 loops: the shared expert's gate
// (scale_rows_sigmoid on strided rows, their padding left alone); the GEMV over more rows than one launch takes, for
// several heads at once (MLA's absorbed decode of a batch); and products of different shapes in one launch
// (gemv_many), on both of its load paths; the routed experts' GEMV grouped by expert (as many rows as
// experts or more) against the same rows one at a time, bit for bit, and float64 loops.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "cuda_test_util.h"
#include "kernels/cuda/dense.h"

using namespace linfer::kernels;
using namespace cuda_test;

namespace {

TEST(CudaMoeRows, SharedExpertGateMatchesLoops) {
  LINFER_SKIP_WITHOUT_CUDA();
  std::mt19937 rng(11);
  const int64_t T = 77, C = 130, ld = C + 3;
  const auto y0 = normal(rng, T * ld), g = normal(rng, T * 2);
  DeviceBuffer<float> d_y(y0), d_g(g);
  cuda::scale_rows_sigmoid({d_y.data(), T, C, ld}, {d_g.data(), T, 1, 2}, nullptr);
  cuda::cuda_check(cudaDeviceSynchronize(), "scale_rows_sigmoid");
  const auto got = d_y.download();
  std::vector<float> body;
  std::vector<double> want;
  size_t pad_changed = 0;
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t c = 0; c < C; ++c)
      body.push_back(got[t * ld + c]), want.push_back(y0[t * ld + c] / (1.0 + std::exp(-double(g[t * 2]))));
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

TEST(CudaGemv, ExpertRowsGroupedByExpertMatchOneAtATime) {
  LINFER_SKIP_WITHOUT_CUDA();
  std::mt19937 rng(13);
  for (const int64_t K : {int64_t(64), int64_t(50)}) {  // both load paths
    const int64_t E = 5, N = 21, first_rows = 13, T = 7, k = 3, J = T * k, ldx = K + 4;
    const auto x = normal(rng, T * ldx);
    std::vector<DeviceBuffer<float>> first, second;
    std::vector<std::vector<float>> w(E);
    std::vector<cuda::ExpertRows> table(E);
    for (int64_t e = 0; e < E; ++e) {
      w[e] = normal(rng, N * K);
      first.emplace_back(std::vector<float>(w[e].begin(), w[e].begin() + first_rows * K));
      second.emplace_back(std::vector<float>(w[e].begin() + first_rows * K, w[e].end()));
      table[e] = {first.back().data(), second.back().data()};
    }
    std::vector<float> ids(J);
    for (auto& id : ids) id = float(std::uniform_int_distribution<int64_t>(0, E - 2)(rng));  // expert 4 unused
    DeviceBuffer<float> d_x(x), d_ids(ids), d_grouped(J * N), d_one(J * N);
    DeviceBuffer<cuda::ExpertRows> d_table(table);
    cuda::expert_gemv({d_x.data(), T, K, ldx}, k, d_table.data(), E, first_rows, linfer::DType::F32, N, K,
                      d_ids.data(), {d_grouped.data(), J, N, N}, nullptr);  // J >= E: grouped
    for (int64_t j = 0; j < J; ++j)  // one row: per row
      cuda::expert_gemv({d_x.data() + j / k * ldx, 1, K, ldx}, 1, d_table.data(), E, first_rows, linfer::DType::F32,
                        N, K, d_ids.data() + j, {d_one.data() + j * N, 1, N, N}, nullptr);
    cuda::cuda_check(cudaDeviceSynchronize(), "expert_gemv");
    const auto grouped = d_grouped.download(), one = d_one.download();
    EXPECT_EQ(grouped, one) << "K " << K;
    std::vector<double> want;
    for (int64_t j = 0; j < J; ++j)
      for (int64_t n = 0; n < N; ++n) {
        double s = 0;
        for (int64_t c = 0; c < K; ++c) s += double(x[j / k * ldx + c]) * w[int64_t(ids[j])][n * K + c];
        want.push_back(s);
      }
    EXPECT_LT(rel_err(grouped, want), 1e-6) << "K " << K;
  }
}

TEST(CudaGemv, ManyProductsInOneLaunchMatchLoops) {
  LINFER_SKIP_WITHOUT_CUDA();
  std::mt19937 rng(13);
  struct Shape {
    int64_t N, K, ldx;
  };
  // Aligned K (16-byte loads) and odd K or ld (one element at a time); a 1-column product; 17 products run as two
  // launches.
  std::vector<Shape> shapes = {{37, 64, 64}, {1, 64, 68}, {130, 21, 21}, {8, 48, 51}};
  for (int i = 0; i < 13; ++i) shapes.push_back({5 + 3 * i, 32, 32});
  for (int64_t M : {int64_t(1), int64_t(3), cuda::kGemvMaxRows + 2}) {
    std::vector<DeviceBuffer<float>> bufs;
    bufs.reserve(3 * shapes.size());
    std::vector<cuda::GemvProduct> products;
    std::vector<std::vector<float>> xs, ws;
    for (const Shape& s : shapes) {
      xs.push_back(normal(rng, M * s.ldx)), ws.push_back(normal(rng, s.N * s.K));
      bufs.emplace_back(xs.back()), bufs.emplace_back(ws.back()), bufs.emplace_back(M * (s.N + 1));
      bufs.back().fill_bytes(0xFF);
      const size_t b = bufs.size() - 3;
      products.push_back({.x = bufs[b].data(), .ldx = s.ldx, .w = bufs[b + 1].data(), .N = s.N, .K = s.K,
                          .bias = nullptr, .y = bufs[b + 2].data(), .ldy = s.N + 1});
    }
    cuda::gemv_many(products.data(), cuda::kGemvManyMax, M, linfer::DType::F32, nullptr);
    cuda::gemv_many(products.data() + cuda::kGemvManyMax, int(shapes.size()) - cuda::kGemvManyMax, M,
                    linfer::DType::F32, nullptr);
    cuda::cuda_check(cudaDeviceSynchronize(), "gemv_many");
    for (size_t i = 0; i < shapes.size(); ++i) {
      const Shape& s = shapes[i];
      const auto got = bufs[3 * i + 2].download();
      std::vector<float> out;
      std::vector<double> want;
      for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < s.N; ++n) {
          double acc = 0;
          for (int64_t k = 0; k < s.K; ++k) acc += double(xs[i][m * s.ldx + k]) * ws[i][n * s.K + k];
          out.push_back(got[m * (s.N + 1) + n]), want.push_back(acc);
        }
      EXPECT_LT(rel_err(out, want), 1e-6) << "product " << i << ", M = " << M;
    }
  }
}

}  // namespace
