// Q8_0, Q4_0, Q4_K and Q6_K with 16 rows interleaved (kernels/cpu/quant/rows16.h): the repack gives every row back bit for
// bit (tails of N, odd block counts, strided sources); kernels::matmul on the repacked weight (the float32 and
// int8 kernels, the prefill GEMM's panels, the scalar path) against float64 products of the weight it came
// from, under each activations setting, at awkward sizes; a row's bits do not depend on the batch or the split
// of the rows; embedding rows; the float32 dequantizer refuses the types.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <tuple>

#include "core/quant_formats.h"
#include "dense_test_util.h"
#include "kernels/cpu/gemm_bf16.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/quant/qmatmul.h"
#include "kernels/cpu/quant/rows16.h"
#include "linfer/core/aligned.h"
#include "linfer/core/error.h"
#include "quant_test_util.h"

using namespace linfer;
using namespace dense_test;
using namespace quant_test;
using kernels::quant::rows16_bytes;

namespace {

constexpr DType kStored[] = {DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K};

// A matrix [N, K] of type t (rows row_blocks blocks apart in the source) and its repacked copy.
struct Repacked {
  DType t, t16;
  int64_t N, K;
  std::vector<uint8_t> rows;  // the source rows, K / block blocks each
  AlignedVector<uint8_t> r;   // rows16_bytes(t16, N, K)
  Repacked(std::mt19937& rng, DType t_, int64_t N_, int64_t K_, int64_t row_blocks = 0)
      : t(t_), t16(*kernels::quant::rows16_type(t_)), N(N_), K(K_) {
    const int64_t bs = dtype_block(t), bb = int64_t(dtype_block_bytes(t)), rb = row_blocks ? row_blocks : K / bs;
    const auto src = random_blocks(rng, t, N * rb * bs);
    r.resize(size_t(rows16_bytes(t16, N, K)));
    kernels::quant::repack_rows16(t16, src.data(), N, K, rb * bb, r.data());
    for (int64_t n = 0; n < N; ++n)
      rows.insert(rows.end(), src.begin() + n * rb * bb, src.begin() + n * rb * bb + K / bs * bb);
  }
  TensorView original() { return TensorView(rows.data(), t, {N, K}); }
  TensorView view() { return TensorView(r.data(), t16, {N, K}); }
  kernels::WeightMatrix matrix() { return {r.data(), t16, N, K, K}; }
};

}  // namespace

TEST(Rows16, RowsComeBackAsStored) {
  std::mt19937 rng(1);
  for (DType t : kStored)
    for (auto [N, blocks, row_blocks] : {std::tuple<int64_t, int64_t, int64_t>{1, 1, 0}, {7, 3, 5}, {16, 37, 0},
                                         {17, 2, 0}, {40, 9, 11}}) {
      const int64_t K = blocks * dtype_block(t), bb = int64_t(dtype_block_bytes(t));
      Repacked w(rng, t, N, K, row_blocks);
      std::vector<uint8_t> row(size_t(blocks * bb));
      for (int64_t n = 0; n < N; ++n) {
        kernels::quant::rows16_row(w.matrix(), n, 0, blocks, row.data());
        ASSERT_EQ(0, std::memcmp(row.data(), w.rows.data() + n * blocks * bb, row.size()))
            << dtype_name(t) << " N=" << N << " row " << n;
        if (blocks > 2) {  // blocks [1, blocks - 1) alone
          kernels::quant::rows16_row(w.matrix(), n, 1, blocks - 2, row.data());
          ASSERT_EQ(0, std::memcmp(row.data(), w.rows.data() + (n * blocks + 1) * bb, size_t((blocks - 2) * bb))) << n;
        }
      }
      for (int64_t n = N; n % 16 != 0; ++n) {  // the last group's padding rows are zeros
        kernels::quant::rows16_row(w.matrix(), n, 0, blocks, row.data());
        std::vector<float> f(static_cast<size_t>(K));
        quant::dequantize_row(t, row.data(), f.data(), K);
        for (float v : f) ASSERT_EQ(v, 0.0f) << dtype_name(t) << " padding row " << n;
      }
    }
}

TEST(Rows16, TheFloat32DequantizerRefusesThem) {
  std::vector<uint8_t> b(144);
  std::vector<float> f(256);
  for (DType t : {DType::Q8_0x16, DType::Q4_0x16, DType::Q4_Kx16, DType::Q6_Kx16}) {
    try {
      quant::dequantize_row(t, b.data(), f.data(), dtype_block(t));
      FAIL() << "dequantize_row read an interleaved row as if it were one";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("interleaved"), std::string::npos) << e.what();
    }
  }
}

#if LINFER_X86
// The kernels exist on x86-64 only (rows16_runs is false elsewhere), and Rounded with them.
namespace {

bool runs_here() { return kernels::quant::rows16_runs(SimdLevel::Avx512) && cpu_supports(SimdLevel::Avx512); }

// K: one block, a few, and an odd count past 8 (Q8_0 / Q4_0: 37 blocks, Q4_K / Q6_K: 5)
std::vector<int64_t> sizes_k(DType t) {
  const int64_t bs = dtype_block(t);
  return bs == 32 ? std::vector<int64_t>{32, 96, 1184} : std::vector<int64_t>{256, 768, 1280};
}

}  // namespace

class Rows16Path : public SimdPathTest {};

// Every path kernels::matmul takes for these types: the float32 and int8 kernels (up to 48 rows of x), the
// panels of the prefill GEMM (49, 130 rows) and, on the scalar path, blocks one at a time.
TEST_P(Rows16Path, MatchTheWeightsTheyCameFrom) {
  if (!runs_here()) GTEST_SKIP() << "the interleaved kernels need AVX-512 VNNI";
  uint32_t seed = 10;
  for (DType t : kStored)
    for (QuantActivations a : kQuantActivations) {
      const ActivationsGuard guard(a);
      for (int64_t M : {1, 2, 3, 5, 8, 9, 17, 49, 130})
        for (int64_t N : {1, 7, 16, 17, 31, 40})
          for (int64_t K : sizes_k(t)) {
            std::mt19937 rng(++seed);
            Repacked w(rng, t, N, K);
            const auto x = random_vec(rng, size_t(M * K));
            const auto bias = random_vec(rng, size_t(N));
            const float* b = seed % 2 ? bias.data() : nullptr;
            std::vector<float> y(size_t(M * N), NAN);
            kernels::matmul(x.data(), M, w.view(), b, y.data(), path());
            // int8 x where the setting rounds decode products to it (up to 48 rows, not the scalar path); bf16 x in
            // the prefill GEMM where it is taken: the float32 x otherwise, within bf16's rounding there
            const bool int8 = rounds_decode_to_int8(a) && M <= 48 && path() != SimdLevel::Scalar;
            const std::vector<double> xs = int8 ? Rounded(x, M, K).values(M, K) : as_f64(x);
            const bool bf16 = rounds_to_bf16(a) && M > 48 && kernels::prefill_gemm_bf16_for(path());
            EXPECT_LT(qmatmul_err(t, w.rows, N, K, xs, M, b, y), bf16 ? 4e-3 : 1e-6)
                << dtype_name(t) << " " << quant_activations_name(a) << " M=" << M << " N=" << N << " K=" << K;
          }
    }
}

// Each row of a batch gets the bits it gets alone, and the rows' split over calls changes nothing.
TEST_P(Rows16Path, RowsDoNotDependOnTheBatchOrTheSplit) {
  if (!runs_here()) GTEST_SKIP() << "the interleaved kernels need AVX-512 VNNI";
  std::mt19937 rng(5);
  const int64_t N = 40, K = 512;
  for (DType t : kStored) {
    Repacked w(rng, t, N, K);
    for (QuantActivations a : {QuantActivations::F32, QuantActivations::Q8}) {
      const ActivationsGuard guard(a);
      for (int64_t M : {2, 9, 17, 48}) {
        const auto x = random_vec(rng, size_t(M * K));
        std::vector<float> batch(static_cast<size_t>(M * N)), one(static_cast<size_t>(N));
        kernels::matmul(x.data(), M, w.view(), nullptr, batch.data(), path());
        for (int64_t m = 0; m < M; ++m) {
          kernels::matmul(x.data() + m * K, 1, w.view(), nullptr, one.data(), path());
          ASSERT_EQ(std::vector<float>(batch.begin() + m * N, batch.begin() + (m + 1) * N), one)
              << dtype_name(t) << " " << quant_activations_name(a) << " M=" << M << " row " << m;
        }
      }
    }
    const int64_t M = 3;
    const auto x = random_vec(rng, size_t(M * K));
    const auto bias = random_vec(rng, size_t(N));
    const Rounded r(x, M, K);
    std::vector<float> xs(size_t(M * K / 32));
    kernels::quant::group_sums(x.data(), M, K, xs.data());
    std::vector<float> whole(size_t(M * N)), split(whole.size());
    for (bool int8 : {false, true}) {
      auto run = [&](std::vector<float>& y, int64_t n0, int64_t n1) {
        if (int8) return kernels::quant::rows16_q8(r.acts(), M, w.matrix(), bias.data(), y.data(), n0, n1);
        kernels::quant::rows16_f32(x.data(), xs.data(), M, w.matrix(), bias.data(), y.data(), n0, n1);
      };
      run(whole, 0, N);
      run(split, 0, 16), run(split, 16, 32), run(split, 32, N);
      EXPECT_EQ(whole, split) << dtype_name(t) << (int8 ? " int8" : " float32");
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Simd, Rows16Path, SimdPaths(), SimdPathName);
#endif  // LINFER_X86

TEST(Rows16, EmbeddingRows) {
  std::mt19937 rng(7);
  for (DType t : kStored) {
    Repacked w(rng, t, 21, 512);
    const std::vector<int32_t> ids = {20, 0, 15, 16, 3};
    std::vector<float> got(ids.size() * 512), expect(got.size());
    kernels::embedding(w.view(), ids, got.data());
    kernels::embedding(w.original(), ids, expect.data());
    EXPECT_EQ(got, expect) << dtype_name(t);
  }
}
