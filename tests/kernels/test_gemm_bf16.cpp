// The prefill GEMM and the decode GEMV with bf16-rounded x (kernels/cpu/gemm_bf16.h, --activations bf16 and q8)
// against the float64 product of the rounded x with the (rounded) weights, at sizes on both sides of every tile,
// panel and block edge (the GEMM: BF16 and block-quantized weights; the GEMV: BF16), and their wiring into
// matmul() and matmul_many(): taken only when the setting asks for it, the GEMM for products above the GEMV's
// rows, the GEMV for BF16 products up to them.
#include <gtest/gtest.h>

#include <cstring>

#include "core/quant_formats.h"
#include "dense_test_util.h"
#include "kernels/cpu/gemm_bf16.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/quant/qmatmul_q8.h"
#include "kernels/cpu/quant/quantize.h"
#include "linfer/core/thread_pool.h"

using namespace linfer;
using namespace dense_test;

namespace {

kernels::GemmBf16Fn kernel_or_null() {
  return cpu_supports(SimdLevel::Avx512) ? kernels::gemm_bf16_dot_for(SimdLevel::Avx512) : nullptr;
}

kernels::GemvBf16Fn gemv_or_null() {
  return cpu_supports(SimdLevel::Avx512) ? kernels::gemv_bf16_dot_for(SimdLevel::Avx512) : nullptr;
}

// The GEMV's y[M, N] for x [M, K], its weight rows in the given pieces [cuts[i], cuts[i + 1]).
std::vector<float> gemv_bf16(kernels::GemvBf16Fn fn, const std::vector<float>& x, int64_t M, const StoredWeights& w,
                             int64_t N, int64_t K, const float* bias, const std::vector<int64_t>& cuts) {
  std::vector<uint16_t> xb(size_t(M * kernels::bf16_x_ld(K)), 0xFFFF);  // NaN wherever it is not written
#if LINFER_X86
  kernels::round_rows_bf16(x.data(), M, K, xb.data());
#endif
  std::vector<float> y(size_t(M * N), NAN);
  for (size_t i = 0; i + 1 < cuts.size(); ++i)
    fn(xb.data(), M, {w.bytes.data(), DType::BF16, N, K, K}, bias, y.data(), cuts[i], cuts[i + 1]);
  return y;
}

// y = bf16(x) · bf16(w)ᵀ + bias in float64, w [N, K] as float32 values.
std::vector<float> reference(const std::vector<float>& x, int64_t M, const std::vector<float>& w, int64_t N,
                             int64_t K, const float* bias) {
  auto r = [](float v) { return double(bf16_to_f32(f32_to_bf16(v))); };
  std::vector<float> y(size_t(M * N));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double s = bias ? bias[n] : 0.0;
      for (int64_t k = 0; k < K; ++k) s += r(x[size_t(m * K + k)]) * r(w[size_t(n * K + k)]);
      y[size_t(m * N + n)] = float(s);
    }
  return y;
}

// Random weights [N, K] quantized to t: the bytes and their float32 values (core's dequantizer, what the
// kernel reads them through).
// The formats linfer does not write (Q6_K, Q5_K, Q5_0, Q4_1): random bytes with small fp16 scales.
StoredWeights quantized(std::mt19937& rng, DType t, int64_t N, int64_t K) {
  StoredWeights q{std::vector<uint8_t>(dtype_nbytes(t, N * K)), std::vector<float>(size_t(N * K))};
  const std::vector<size_t> scales = t == DType::Q6_K                        ? std::vector<size_t>{208}
                                     : t == DType::Q5_K || t == DType::Q4_1 ? std::vector<size_t>{0, 2}
                                     : t == DType::Q5_0                     ? std::vector<size_t>{0}
                                                                            : std::vector<size_t>{};
  if (!scales.empty()) {
    std::uniform_int_distribution<int> byte(0, 255);
    for (auto& b : q.bytes) b = uint8_t(byte(rng));
    const uint16_t d = f32_to_f16(0.002f);
    for (size_t off = 0; off < q.bytes.size(); off += dtype_block_bytes(t))
      for (size_t at : scales) std::memcpy(q.bytes.data() + off + at, &d, 2);
  } else {
    const auto w = random_vec(rng, size_t(N * K), 0.1f);
    kernels::quantize_row(t, w.data(), q.bytes.data(), N * K);
  }
  linfer::quant::dequantize_row(t, q.bytes.data(), q.values.data(), N * K);
  return q;
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
          EXPECT_LT(rel_err(y, reference(x, M, w.values, N, K, b)), 2e-6)
              << "M=" << M << " N=" << N << " K=" << K << ", " << threads << " threads";
        }
  }
  set_num_threads(0);
}

// Quantized weights are dequantized a block of K at a time (256 values: whole blocks of every format) and
// rounded to bf16 (Q8_0, Q4_0, Q5_0, Q4_K, Q5_K, Q6_K by the kernel's own code, Q4_1 through core's
// dequantizer): K across several such blocks and a short last one.
TEST(GemmBf16Dot, QuantizedWeights) {
  const auto fn = kernel_or_null();
  if (!fn) GTEST_SKIP() << "needs the avx512 path on a CPU with AVX-512 BF16";
  uint32_t seed = 50;
  set_num_threads(2);
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q5_0, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q4_1})
    for (int64_t M : {1, 13, 150})
      for (int64_t N : {1, 33, 130})
        for (int64_t K : {256, 512, 768 + (dtype_block(t) == 32 ? 96 : 256)}) {
          std::mt19937 rng(++seed);
          const auto x = random_vec(rng, size_t(M * K));
          const StoredWeights w = quantized(rng, t, N, K);
          const auto bias = random_vec(rng, size_t(N));
          const float* b = seed % 2 ? bias.data() : nullptr;
          std::vector<float> y(size_t(M * N), NAN);
          fn(x.data(), M, {w.bytes.data(), t, N, K, K}, b, y.data());
          EXPECT_LT(rel_err(y, reference(x, M, w.values, N, K, b)), 2e-6)
              << dtype_name(t) << " M=" << M << " N=" << N << " K=" << K;
        }
  set_num_threads(0);
}

// matmul() takes the bf16 GEMM where prefill_gemm_bf16_for says it pays (AMD cores), else the float32 one.
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
  kernels::matmul(x.data(), M, wv, nullptr, f32.data(), SimdLevel::Avx512);
  const bool pays = kernels::prefill_gemm_bf16_for(SimdLevel::Avx512) != nullptr;
  EXPECT_EQ(pays, cpu_is_amd());
  EXPECT_EQ(via, pays ? direct : f32) << "matmul must take the bf16 GEMM where the setting asks for it and it pays";
  if (pays) {
    for (int64_t i = 0; i < 50 * N; ++i)
      ASSERT_EQ(part[size_t(i)], direct[size_t(10 * N + i)]) << "row bits vary with M";
  }
  EXPECT_NE(f32, direct) << "float32 activations must not round x";
  EXPECT_LT(rel_err(direct, f32), 1e-2) << "bf16 rounding of x far from float32";
}

// Quantized products above the GEMV's rows take it under bf16 and q8 (q8 rounds prefill to bf16 too) where it pays,
// not under f32.
TEST(GemmBf16Dot, QuantizedMatmulTakesItWhenSet) {
  const auto fn = kernel_or_null();
  if (!fn) GTEST_SKIP() << "needs the avx512 path on a CPU with AVX-512 BF16";
  std::mt19937 rng(8);
  const int64_t M = 60, N = 70, K = 512;
  const auto x = random_vec(rng, size_t(M * K));
  for (DType t : {DType::Q8_0, DType::Q4_K}) {
    const StoredWeights w = quantized(rng, t, N, K);
    const TensorView wv(const_cast<uint8_t*>(w.bytes.data()), t, {N, K});
    std::vector<float> direct(size_t(M * N)), via(direct.size()), f32(direct.size());
    fn(x.data(), M, {w.bytes.data(), t, N, K, K}, nullptr, direct.data());
    kernels::matmul(x.data(), M, wv, nullptr, f32.data(), SimdLevel::Avx512);
    const bool pays = kernels::prefill_gemm_bf16_for(SimdLevel::Avx512) != nullptr;
    for (QuantActivations a : {QuantActivations::BF16, QuantActivations::Q8}) {
      const ActivationsGuard set(a);
      kernels::matmul(x.data(), M, wv, nullptr, via.data(), SimdLevel::Avx512);
      EXPECT_EQ(via, pays ? direct : f32)
          << dtype_name(t) << ", " << quant_activations_name(a) << (pays ? ": the bf16 GEMM" : ": the float32 one");
    }
    EXPECT_NE(f32, direct) << dtype_name(t) << ": float32 activations must not round x";
    EXPECT_LT(rel_err(direct, f32), 1e-2) << dtype_name(t) << ": bf16 rounding far from float32";
  }
}

// K on both sides of one and two blocks of 32 (the two chains, the odd whole block, the short tail), M on both
// sides of the 8 rows per pass, the weight rows in uneven pieces (as the pool's tasks take them).
TEST(GemvBf16Dot, MatchesTheProductOfTheRoundedX) {
  const auto fn = gemv_or_null();
  if (!fn) GTEST_SKIP() << "needs the avx512 path on a CPU with AVX-512 BF16";
  uint32_t seed = 100;
  for (int64_t M : {1, 2, 3, 7, 8, 9, 17})
    for (int64_t N : {1, 5, 16, 37})
      for (int64_t K : {1, 2, 31, 32, 33, 63, 64, 65, 96, 97, 1000, 2049}) {
        std::mt19937 rng(++seed);
        const auto x = random_vec(rng, size_t(M * K));
        const auto w = store_as(DType::BF16, random_vec(rng, size_t(N * K), 0.1f));
        const auto bias = random_vec(rng, size_t(N));
        const float* b = seed % 2 ? bias.data() : nullptr;
        const auto y = gemv_bf16(fn, x, M, w, N, K, b, {0, N / 3, N / 3 + 1, N});
        EXPECT_LT(rel_err(y, reference(x, M, w.values, N, K, b)), 2e-6) << "M=" << M << " N=" << N << " K=" << K;
        // Each row of x alone: the same bits (the order of the sums depends on K alone).
        const int64_t m = M - 1;
        const std::vector<float> xm(x.begin() + m * K, x.end());
        const auto alone = gemv_bf16(fn, xm, 1, w, N, K, b, {0, N});
        for (int64_t n = 0; n < N; ++n)
          ASSERT_EQ(alone[size_t(n)], y[size_t(m * N + n)]) << "row bits vary with M: M=" << M << " K=" << K;
      }
}

// Decode-sized products of BF16 weights take the GEMV under bf16 and q8 (both round x to bf16), through matmul()
// and matmul_many(), and stay float32 under f32.
TEST(GemvBf16Dot, MatmulTakesItWhenSet) {
  const auto fn = gemv_or_null();
  if (!fn) GTEST_SKIP() << "needs the avx512 path on a CPU with AVX-512 BF16";
  std::mt19937 rng(9);
  const int64_t M = 8, N = 70, K = 130;
  const auto x = random_vec(rng, size_t(M * K));
  const auto w = store_as(DType::BF16, random_vec(rng, size_t(N * K), 0.1f));
  const TensorView wv(const_cast<uint8_t*>(w.bytes.data()), DType::BF16, {N, K});
  const auto direct = gemv_bf16(fn, x, M, w, N, K, nullptr, {0, N});
  std::vector<float> via(direct.size()), many(direct.size()), f32(direct.size());
  for (QuantActivations a : {QuantActivations::BF16, QuantActivations::Q8}) {
    const ActivationsGuard set(a);
    kernels::matmul(x.data(), M, wv, nullptr, via.data(), SimdLevel::Avx512);
    const kernels::MatmulArgs one[] = {{x.data(), M, &wv, nullptr, many.data()}};
    kernels::matmul_many(one, SimdLevel::Avx512);
    EXPECT_EQ(via, direct) << quant_activations_name(a) << ": matmul must take the bf16 GEMV";
    EXPECT_EQ(many, direct) << quant_activations_name(a) << ": matmul_many must take the bf16 GEMV";
  }
  kernels::matmul(x.data(), M, wv, nullptr, f32.data(), SimdLevel::Avx512);
  EXPECT_NE(f32, direct) << "float32 activations must not round x";
  EXPECT_LT(rel_err(direct, f32), 1e-2) << "bf16 rounding of x far from float32";
}

// What linfer bench reports: each rounding only for the types and paths that have its kernel.
TEST(ActivationRounding, FollowsTheSettingTheTypesAndThePath) {
  using A = QuantActivations;
  const SimdLevel level = simd_level();
  const bool bf16 = kernels::prefill_gemm_bf16_for(level) != nullptr;
  const bool bf16_gemv = kernels::gemv_bf16_dot_for(level) != nullptr;
  const bool int8 = kernels::quant::q8_kernel_for(level, DType::Q4_K) != nullptr;
  auto r = [&](A a, std::vector<DType> types, SimdLevel l) { return kernels::activation_rounding(a, types, l); };
  const auto f32 = r(A::F32, {DType::BF16, DType::Q4_K}, level);
  EXPECT_FALSE(f32.bf16_prefill || f32.bf16_decode || f32.int8_decode);
  EXPECT_EQ(r(A::BF16, {DType::BF16}, level).bf16_prefill, bf16);
  EXPECT_EQ(r(A::BF16, {DType::BF16}, level).bf16_decode, bf16_gemv);
  EXPECT_EQ(r(A::Q8, {DType::BF16}, level).bf16_decode, bf16_gemv);
  EXPECT_FALSE(r(A::BF16, {DType::Q4_K}, level).bf16_decode) << "quantized decode keeps its own kernels";
  EXPECT_EQ(r(A::BF16, {DType::Q4_K, DType::F32}, level).bf16_prefill, bf16);
  EXPECT_FALSE(r(A::BF16, {DType::Q4_K}, level).int8_decode);
  EXPECT_FALSE(r(A::BF16, {DType::F32}, level).bf16_prefill) << "no bf16 or quantized weight to round for";
  EXPECT_EQ(r(A::Q8, {DType::Q4_K}, level).int8_decode, int8);
  EXPECT_EQ(r(A::Q8, {DType::Q4_K}, level).bf16_prefill, bf16);
  EXPECT_FALSE(r(A::Q8, {DType::BF16}, level).int8_decode) << "no quantized weight";
  EXPECT_FALSE(r(A::Q8, {DType::Q5_1}, level).int8_decode) << "Q5_1 has no int8 kernel";
  EXPECT_EQ(r(A::Q8, {DType::Q5_K}, level).int8_decode, int8);
  const auto scalar = r(A::Q8, {DType::BF16, DType::Q4_K}, SimdLevel::Scalar);
  EXPECT_FALSE(scalar.bf16_prefill || scalar.bf16_decode || scalar.int8_decode);
}
