// kernels/cpu/matmul.h against kernels/reference/matmul.h: every dtype, every SIMD path, awkward
// sizes on both sides of the GEMV / GEMM switch (M = 48 on x86) and of every block edge.
#include <gtest/gtest.h>

#include "dense_test_util.h"
#include "kernels/cpu/matmul.h"
#include "kernels/reference/matmul.h"
#include "linfer/core/error.h"
#include "linfer/core/thread_pool.h"

using namespace linfer;
using namespace dense_test;

namespace {

void check_matmul(SimdLevel path, DType dt, int64_t M, int64_t N, int64_t K, bool with_bias, uint32_t seed) {
  std::mt19937 rng(seed);
  auto x = random_vec(rng, size_t(M * K));
  auto wv = store_as(dt, random_vec(rng, size_t(N * K), 0.1f));
  auto bias = random_vec(rng, size_t(N));
  TensorView w(wv.bytes.data(), dt, {N, K});
  std::vector<float> ref(size_t(M * N));
  kernels::ref::matmul(x.data(), M, w, with_bias ? bias.data() : nullptr, ref.data());
  std::vector<float> y(size_t(M * N), NAN);
  kernels::matmul(x.data(), M, w, with_bias ? bias.data() : nullptr, y.data(), path);
  EXPECT_LT(rel_err(y, ref), 2e-6) << dtype_name(dt) << " M=" << M << " N=" << N << " K=" << K;
}

class MatmulPath : public SimdPathTest {};

}  // namespace

TEST_P(MatmulPath, PromptsLongerThanOnePassOfTheGemm) {  // kGemmRowsPerPass rows of x packed at a time
  uint32_t seed = 500;
  for (DType dt : {DType::F32, DType::BF16})
    for (int64_t M : {516, 517, 1100})
      for (int64_t N : {5, 300}) {
        ++seed;
        check_matmul(path(), dt, M, N, 37, seed % 2 == 0, seed);
      }
}

TEST_P(MatmulPath, AwkwardSizesEveryDtype) {
  uint32_t seed = 1;
  for (DType dt : {DType::F32, DType::BF16, DType::F16})
    for (int64_t M : {1, 2, 3, 4, 5, 7, 13, 49, 150})
      for (int64_t N : {1, 7, 16, 63, 65, 257})
        for (int64_t K : {1, 7, 63, 65, 257}) {
          check_matmul(path(), dt, M, N, K, seed % 2 == 0, seed);
          ++seed;
        }
}

TEST_P(MatmulPath, BlockEdges) {
  // rows past one 6-row tile, columns past the 128-wide block, K past the 256-deep panel
  check_matmul(path(), DType::BF16, 64, 300, 600, true, 7);
  check_matmul(path(), DType::F32, 53, 129, 513, false, 8);
  check_matmul(path(), DType::F16, 19, 260, 257, true, 9);
  check_matmul(path(), DType::BF16, 1, 1000, 700, false, 10);
}

// Batched decode (up to 48 sequences, matmul.cpp's GEMV range on x86) gives every sequence the bits
// it gets alone: a row's sums never depend on the other rows of the call.
TEST_P(MatmulPath, DecodeRowsDoNotDependOnTheBatch) {
  std::mt19937 rng(11);
  const int64_t N = 65;
  for (int64_t K : {257, 2600})  // short rows (one weight row at a time, two chains) and long ones
  for (DType dt : {DType::F32, DType::BF16, DType::F16}) {
    auto wv = store_as(dt, random_vec(rng, size_t(N * K), 0.1f));
    TensorView w(wv.bytes.data(), dt, {N, K});
    for (int64_t M : {2, 5, 17, 48}) {
      auto x = random_vec(rng, size_t(M * K));
      std::vector<float> batch(static_cast<size_t>(M * N)), one(static_cast<size_t>(N));
      kernels::matmul(x.data(), M, w, nullptr, batch.data(), path());
      for (int64_t m = 0; m < M; ++m) {
        kernels::matmul(x.data() + m * K, 1, w, nullptr, one.data(), path());
        ASSERT_EQ(std::vector<float>(batch.begin() + m * N, batch.begin() + (m + 1) * N), one)
            << dtype_name(dt) << " K=" << K << " M=" << M << " row " << m;
      }
    }
  }
}

// Several products in one parallel region (a layer's projections, a MoE layer's experts): every
// product matches the reference and has the bits of its own matmul(), whatever the split of the rows
// over 1 to 3 threads. The sizes mix a one-row gate, tails of every tile, a product large enough to
// be cut across tasks, and one past the GEMV's row limit (the GEMM, run on its own).
TEST_P(MatmulPath, ManyProductsMatchOneByOne) {
  struct Case { DType dt; int64_t M, N, K; bool bias; };
  const Case cases[] = {{DType::BF16, 1, 1, 1024, false}, {DType::F32, 1, 257, 65, true},
                        {DType::BF16, 3, 1000, 700, true}, {DType::F16, 5, 63, 257, false},
                        {DType::BF16, 49, 65, 63, true},   {DType::BF16, 1, 4099, 128, false},
                        {DType::F32, 2, 7, 1, true}};
  std::mt19937 rng(21);
  std::vector<StoredWeights> ws;
  std::vector<TensorView> views;
  std::vector<std::vector<float>> xs, biases, refs, alone;
  for (const Case& c : cases) {
    ws.push_back(store_as(c.dt, random_vec(rng, size_t(c.N * c.K), 0.1f)));
    views.emplace_back(ws.back().bytes.data(), c.dt, Shape{c.N, c.K});
    xs.push_back(random_vec(rng, size_t(c.M * c.K)));
    biases.push_back(random_vec(rng, size_t(c.N)));
    refs.emplace_back(size_t(c.M * c.N));
    alone.emplace_back(size_t(c.M * c.N));
  }
  for (size_t j = 0; j < std::size(cases); ++j) {
    const float* b = cases[j].bias ? biases[j].data() : nullptr;
    kernels::ref::matmul(xs[j].data(), cases[j].M, views[j], b, refs[j].data());
    kernels::matmul(xs[j].data(), cases[j].M, views[j], b, alone[j].data(), path());
  }
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    std::vector<std::vector<float>> ys;
    std::vector<kernels::MatmulArgs> args;
    for (size_t j = 0; j < std::size(cases); ++j) {
      ys.emplace_back(size_t(cases[j].M * cases[j].N), NAN);
      args.push_back({xs[j].data(), cases[j].M, &views[j], cases[j].bias ? biases[j].data() : nullptr,
                      ys[j].data()});
    }
    kernels::matmul_many(args, path());
    for (size_t j = 0; j < std::size(cases); ++j) {
      EXPECT_LT(rel_err(ys[j], refs[j]), 2e-6) << "product " << j << ", " << threads << " threads";
      EXPECT_EQ(ys[j], alone[j]) << "product " << j << ", " << threads << " threads";
    }
  }
  set_num_threads(0);
}

INSTANTIATE_TEST_SUITE_P(Simd, MatmulPath, SimdPaths(), SimdPathName);

TEST(Matmul, RowSliceOfLargerWeight) {
  std::mt19937 rng(3);
  const int64_t N = 40, K = 33, M = 9;
  auto wv = store_as(DType::BF16, random_vec(rng, size_t(N * K)));
  TensorView full(wv.bytes.data(), DType::BF16, {N, K});
  TensorView part = full.slice0(5, 30);
  auto x = random_vec(rng, size_t(M * K));
  std::vector<float> ref(size_t(M * 25)), y(size_t(M * 25));
  kernels::ref::matmul(x.data(), M, part, nullptr, ref.data());
  kernels::matmul(x.data(), M, part, nullptr, y.data());
  EXPECT_LT(rel_err(y, ref), 2e-6);
}

TEST(Matmul, RejectsBadWeights) {
  std::vector<int32_t> ints(12);
  std::vector<float> x(12), y(12);
  EXPECT_THROW(kernels::matmul(x.data(), 1, TensorView(ints.data(), DType::I32, {3, 4}), nullptr, y.data()), Error);
  EXPECT_THROW(kernels::matmul(x.data(), 1, TensorView(x.data(), DType::F32, {12}), nullptr, y.data()), Error);
}

TEST(Embedding, EveryDtypeAndBadIds) {
  std::mt19937 rng(4);
  const int64_t V = 50, D = 37;
  for (DType dt : {DType::F32, DType::BF16, DType::F16}) {
    auto table = store_as(dt, random_vec(rng, size_t(V * D)));
    TensorView tv(table.bytes.data(), dt, {V, D});
    std::vector<int32_t> ids = {0, 49, 7, 7, 23};
    std::vector<float> out(ids.size() * D), ref(ids.size() * D);
    kernels::embedding(tv, ids, out.data());
    kernels::ref::embedding(tv, ids, ref.data());
    EXPECT_EQ(out, ref);
    for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(out[i * D + 3], table.values[ids[i] * D + 3]);
    std::vector<int32_t> bad = {3, 50};
    EXPECT_THROW(kernels::embedding(tv, bad, out.data()), Error);
    bad = {-1};
    EXPECT_THROW(kernels::embedding(tv, bad, out.data()), Error);
  }
}
