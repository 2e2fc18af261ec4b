// Q4_0 with 16 rows interleaved (kernels/cpu/quant/q4_0x16.h): the repack gives every row back bit for bit
// (tails of N, odd block counts, strided sources); kernels::matmul on the repacked weight (the float32 and
// int8 kernels, the prefill GEMM's panels, the scalar path) against float64 products of the Q4_0 weight it
// came from, under each activations setting, at awkward sizes; a row's bits do not depend on the batch or the
// split of the rows; embedding rows; the float32 dequantizer refuses the type.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>

#include "core/quant_formats.h"
#include "dense_test_util.h"
#include "kernels/cpu/gemm_bf16.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/quant/q4_0x16.h"
#include "kernels/cpu/quant/qmatmul.h"
#include "linfer/core/aligned.h"
#include "linfer/core/error.h"
#include "quant_test_util.h"

using namespace linfer;
using namespace dense_test;
using namespace quant_test;
using kernels::quant::q4_0x16_bytes;

namespace {

// A Q4_0 matrix [N, K] (rows row_blocks blocks apart) and its repacked copy.
struct Repacked {
  int64_t N, K;
  std::vector<uint8_t> q4;    // Q4_0 rows, K / 32 blocks each
  AlignedVector<uint8_t> r;   // q4_0x16_bytes(N, K)
  Repacked(std::mt19937& rng, int64_t N_, int64_t K_, int64_t row_blocks = 0) : N(N_), K(K_) {
    const int64_t rb = row_blocks ? row_blocks : K / 32;
    const auto src = random_blocks(rng, DType::Q4_0, N * rb * 32);
    r.resize(size_t(q4_0x16_bytes(N, K)));
    kernels::quant::repack_q4_0x16(src.data(), N, K, rb * 18, r.data());
    for (int64_t n = 0; n < N; ++n)
      q4.insert(q4.end(), src.begin() + n * rb * 18, src.begin() + n * rb * 18 + K / 32 * 18);
  }
  TensorView original() { return TensorView(q4.data(), DType::Q4_0, {N, K}); }
  TensorView view() { return TensorView(r.data(), DType::Q4_0x16, {N, K}); }
  kernels::WeightMatrix matrix() { return {r.data(), DType::Q4_0x16, N, K, K}; }
};

bool runs_here() { return kernels::quant::q4_0x16_runs(SimdLevel::Avx512) && cpu_supports(SimdLevel::Avx512); }

}  // namespace

TEST(Q4_0x16, RowsComeBackAsQ4_0) {
  std::mt19937 rng(1);
  for (auto [N, K, row_blocks] : {std::tuple<int64_t, int64_t, int64_t>{1, 32, 0}, {7, 96, 5}, {16, 1184, 0},
                                  {17, 64, 0}, {40, 4128, 131}}) {
    Repacked w(rng, N, K, row_blocks);
    const int64_t nb = K / 32;
    std::vector<uint8_t> row(size_t(nb * 18));
    for (int64_t n = 0; n < N; ++n) {
      kernels::quant::q4_0x16_row(w.matrix(), n, 0, nb, row.data());
      ASSERT_EQ(0, std::memcmp(row.data(), w.q4.data() + n * nb * 18, row.size())) << "N=" << N << " row " << n;
      if (nb > 2) {  // blocks [1, nb - 1) alone
        kernels::quant::q4_0x16_row(w.matrix(), n, 1, nb - 2, row.data());
        ASSERT_EQ(0, std::memcmp(row.data(), w.q4.data() + (n * nb + 1) * 18, size_t(nb - 2) * 18)) << n;
      }
    }
    for (int64_t n = N; n % 16 != 0; ++n) {  // the last group's padding rows are zeros
      kernels::quant::q4_0x16_row(w.matrix(), n, 0, nb, row.data());
      std::vector<float> f(static_cast<size_t>(K));
      quant::dequantize_row(DType::Q4_0, row.data(), f.data(), K);
      for (float v : f) ASSERT_EQ(v, 0.0f) << "padding row " << n;
    }
  }
}

TEST(Q4_0x16, TheFloat32DequantizerRefusesIt) {
  std::vector<uint8_t> b(18);
  std::vector<float> f(32);
  try {
    quant::dequantize_row(DType::Q4_0x16, b.data(), f.data(), 32);
    FAIL() << "dequantize_row read an interleaved row as if it were one";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("interleaved"), std::string::npos) << e.what();
  }
}

class Q4_0x16Path : public SimdPathTest {};

// Every path kernels::matmul takes for this type: the float32 and int8 kernels (up to 48 rows of x), the
// panels of the prefill GEMM (49, 130 rows) and, on the scalar path, blocks one at a time.
TEST_P(Q4_0x16Path, MatchesTheQ4_0ItCameFrom) {
  if (!runs_here()) GTEST_SKIP() << "Q4_0x16's kernels need AVX-512 VNNI";
  uint32_t seed = 10;
  for (QuantActivations a : kQuantActivations) {
    const ActivationsGuard guard(a);
    for (int64_t M : {1, 2, 3, 5, 8, 9, 17, 49, 130})
      for (int64_t N : {1, 7, 16, 17, 31, 40})
        for (int64_t K : {32, 96, 1184}) {
          std::mt19937 rng(++seed);
          Repacked w(rng, N, K);
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
          EXPECT_LT(qmatmul_err(DType::Q4_0, w.q4, N, K, xs, M, b, y), bf16 ? 4e-3 : 1e-6)
              << quant_activations_name(a) << " M=" << M << " N=" << N << " K=" << K;
        }
  }
}

// Each row of a batch gets the bits it gets alone, and the rows' split over calls changes nothing.
TEST_P(Q4_0x16Path, RowsDoNotDependOnTheBatchOrTheSplit) {
  if (!runs_here()) GTEST_SKIP() << "Q4_0x16's kernels need AVX-512 VNNI";
  std::mt19937 rng(5);
  Repacked w(rng, 40, 512);
  for (QuantActivations a : {QuantActivations::F32, QuantActivations::Q8}) {
    const ActivationsGuard guard(a);
    for (int64_t M : {2, 9, 17, 48}) {
      const auto x = random_vec(rng, size_t(M * 512));
      std::vector<float> batch(size_t(M * 40)), one(40);
      kernels::matmul(x.data(), M, w.view(), nullptr, batch.data(), path());
      for (int64_t m = 0; m < M; ++m) {
        kernels::matmul(x.data() + m * 512, 1, w.view(), nullptr, one.data(), path());
        ASSERT_EQ(std::vector<float>(batch.begin() + m * 40, batch.begin() + (m + 1) * 40), one)
            << quant_activations_name(a) << " M=" << M << " row " << m;
      }
    }
  }
  const int64_t M = 3, K = 512;
  const auto x = random_vec(rng, size_t(M * K));
  const auto bias = random_vec(rng, 40);
  const Rounded r(x, M, K);
  std::vector<float> xs(size_t(M * K / 32));
  kernels::quant::group_sums(x.data(), M, K, xs.data());
  std::vector<float> whole(size_t(M * 40)), split(whole.size());
  for (bool int8 : {false, true}) {
    auto run = [&](std::vector<float>& y, int64_t n0, int64_t n1) {
      if (int8) return kernels::quant::q4_0x16_rows_q8(r.acts(), M, w.matrix(), bias.data(), y.data(), n0, n1);
      kernels::quant::q4_0x16_rows_f32(x.data(), xs.data(), M, w.matrix(), bias.data(), y.data(), n0, n1);
    };
    run(whole, 0, 40);
    run(split, 0, 16), run(split, 16, 32), run(split, 32, 40);
    EXPECT_EQ(whole, split) << (int8 ? "int8" : "float32");
  }
}

INSTANTIATE_TEST_SUITE_P(Simd, Q4_0x16Path, SimdPaths(), SimdPathName);

TEST(Q4_0x16, EmbeddingRows) {
  std::mt19937 rng(7);
  Repacked w(rng, 21, 256);
  const std::vector<int32_t> ids = {20, 0, 15, 16, 3};
  std::vector<float> got(ids.size() * 256), expect(got.size());
  kernels::embedding(w.view(), ids, got.data());
  kernels::embedding(w.original(), ids, expect.data());
  EXPECT_EQ(got, expect);
}
