// Block-quantized weights: core's float32 dequantizer and the quantizers (kernels/cpu/quant/quantize.h)
// against the float64 reference (kernels/reference/quant.h); each format's round-trip error against a
// bound derived from its step size; the quantized GEMV / GEMM (kernels::matmul on a quantized view)
// against dequantize-then-float64 at awkward sizes, on every SIMD path this CPU runs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "core/quant_formats.h"
#include "dense_test_util.h"
#include "quant_test_util.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/quant/qmatmul_q8.h"
#include "kernels/cpu/quant/quantize.h"
#include "kernels/reference/quant.h"
#include "linfer/core/error.h"
#include "linfer/core/quant_activations.h"

using namespace linfer;
using namespace dense_test;
using namespace quant_test;

namespace {

constexpr DType kWritten[] = {DType::Q8_0, DType::Q4_0, DType::Q4_K};
constexpr DType kAll[] = {DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0,
                          DType::Q5_1, DType::Q4_K, DType::Q5_K, DType::Q6_K};

std::vector<float> dequantized(DType t, const std::vector<uint8_t>& b, int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  to_f32(t, b.data(), v.data(), size_t(n));
  return v;
}

}  // namespace

// The float32 dequantizer in core (what to_f32 and the scalar kernels use) and the bit-by-bit float64
// reference read every field of every format the same way: random bytes, every field exercised.
TEST(Quant, DequantizerMatchesReferenceOnRandomBlocks) {
  std::mt19937 rng(1);
  for (DType t : kAll) {
    const int64_t n = 64 * dtype_block(t);
    const auto b = random_blocks(rng, t, n);
    const auto got = dequantized(t, b, n);
    const auto ref = kernels::ref::dequantize_f64(t, b.data(), n);
    for (int64_t i = 0; i < n; ++i)
      ASSERT_NEAR(got[size_t(i)], ref[size_t(i)], 1e-6 * std::fabs(ref[size_t(i)]) + 1e-9)
          << dtype_name(t) << " element " << i;
  }
}

// One hand-built block per format, values known from the layout description alone.
TEST(Quant, HandBuiltBlocks) {
  {  // Q4_0: d = 0.5, byte i = (i % 16) | (15 - i % 16) << 4
    uint8_t b[18];
    put_half(b, 0.5f);
    for (int i = 0; i < 16; ++i) b[2 + i] = uint8_t(i | (15 - i) << 4);
    float y[32];
    to_f32(DType::Q4_0, b, y, 32);
    for (int i = 0; i < 16; ++i) {
      EXPECT_EQ(y[i], 0.5f * float(i - 8));
      EXPECT_EQ(y[16 + i], 0.5f * float(7 - i));
    }
  }
  {  // Q4_K: sub-block j scale j + 1 + (j >= 4 ? 32 : 0), min 2j (+16 for j >= 4); all nibbles 3 (low), 5 (high)
    uint8_t b[144] = {};
    put_half(b, 0.25f);
    put_half(b + 2, 0.125f);
    int sc[8], mn[8];
    for (int j = 0; j < 8; ++j) sc[j] = j + 1 + (j >= 4 ? 32 : 0), mn[j] = 2 * j + (j >= 4 ? 16 : 0);
    for (int j = 0; j < 4; ++j) {
      b[4 + j] = uint8_t(sc[j] | (sc[j + 4] >> 4) << 6);
      b[8 + j] = uint8_t(mn[j] | (mn[j + 4] >> 4) << 6);
      b[12 + j] = uint8_t((sc[j + 4] & 15) | (mn[j + 4] & 15) << 4);
    }
    for (int i = 0; i < 128; ++i) b[16 + i] = 3 | 5 << 4;
    float y[256];
    to_f32(DType::Q4_K, b, y, 256);
    for (int e = 0; e < 256; ++e) {
      const int j = e / 32, q = j % 2 ? 5 : 3;
      EXPECT_EQ(y[e], 0.25f * float(sc[j] * q) - 0.125f * float(mn[j])) << e;
    }
  }
  {  // Q5_0: d = 0.25, nibbles as Q4_0's block above, fifth bits set for elements 3, 16 and 31 only
    uint8_t b[22];
    put_half(b, 0.25f);
    const uint32_t qh = 1u << 3 | 1u << 16 | 1u << 31;
    for (int i = 0; i < 4; ++i) b[2 + i] = uint8_t(qh >> (8 * i));
    for (int i = 0; i < 16; ++i) b[6 + i] = uint8_t(i | (15 - i) << 4);
    float y[32];
    to_f32(DType::Q5_0, b, y, 32);
    for (int i = 0; i < 32; ++i) {
      const int nib = i < 16 ? i : 31 - i, fifth = (i == 3 || i == 16 || i == 31) ? 16 : 0;
      EXPECT_EQ(y[i], 0.25f * float(nib + fifth - 16)) << i;
    }
  }
  {  // Q5_K: Q4_K-style scales (sub-block j: scale j + 1, min j), every nibble 1 (low) / 2 (high), fifth
     // bit of element 32j + l set where l == j
    uint8_t b[176] = {};
    put_half(b, 0.5f);
    put_half(b + 2, 0.25f);
    for (int j = 0; j < 4; ++j) {
      b[4 + j] = uint8_t(j + 1), b[8 + j] = uint8_t(j);                        // sub-blocks 0-3
      b[12 + j] = uint8_t((j + 5) | (j + 4) << 4);                              // 4-7: scale j + 5, min j + 4
    }
    for (int l = 0; l < 8; ++l) b[16 + l] = uint8_t(1u << l);                  // qh[l] bit l
    for (int i = 0; i < 128; ++i) b[48 + i] = 1 | 2 << 4;
    float y[256];
    to_f32(DType::Q5_K, b, y, 256);
    for (int e = 0; e < 256; ++e) {
      const int j = e / 32, l = e % 32, q = (j % 2 ? 2 : 1) + (l == j ? 16 : 0);
      EXPECT_EQ(y[e], 0.5f * float((j + 1) * q) - 0.25f * float(j)) << e;
    }
  }
  {  // Q6_K: every 6-bit value 33 (low nibble 1, high bits 2) except element 200: 0; scales s + 1
    uint8_t b[210] = {};
    for (int i = 0; i < 128; ++i) b[i] = 1 | 1 << 4;
    for (int i = 0; i < 64; ++i) b[128 + i] = 0b10101010;
    // element 200 = half 1, element 72 of it: quarter 2 (high nibble of ql[64 + 8]), qh[32 + 8] bits 4-5
    b[64 + 8] &= 0x0f;
    b[128 + 32 + 8] &= uint8_t(~0b00110000);
    for (int s = 0; s < 16; ++s) b[192 + s] = uint8_t(s + 1);
    put_half(b + 208, 0.5f);
    float y[256];
    to_f32(DType::Q6_K, b, y, 256);
    for (int e = 0; e < 256; ++e) {
      const int h = e / 128, r = e % 128, sub = 8 * h + (r % 32) / 16 + 2 * (r / 32);
      EXPECT_EQ(y[e], 0.5f * float(sub + 1) * float(e == 200 ? -32 : 1)) << e;
    }
  }
}

// Round trips: the quantizer's output read back by the float64 reference, against bounds that follow
// from each format's step (quantize.cpp explains each): Q8_0 every element within half a step
// (max|x| / 127) of its value; Q4_0 each block's RMS error within one step of d0 = max|x| / 8; Q4_K each
// sub-block's RMS error within one step of the super-block's widest sub-block, (max + m) / 15. The
// measured RMS error in steps is printed (docs/quantization.md quotes it).
TEST(Quant, RoundTripErrorWithinTheStep) {
  std::mt19937 rng(2);
  for (DType t : kWritten) {
    const int64_t bs = dtype_block(t), n = 4096 * 32;
    auto x = random_vec(rng, size_t(n));
    for (int64_t i = 0; i < n; i += 997) x[size_t(i)] *= 8;  // outliers
    for (int64_t i = 0; i < 256; ++i) x[size_t(i)] = 0.0f;   // an all-zero block (and Q4_K super-block)
    for (int64_t i = 256; i < 512; ++i) x[size_t(i)] = 0.75f;  // a constant one
    std::vector<uint8_t> q(dtype_nbytes(t, n));
    kernels::quantize_row(t, x.data(), q.data(), n);
    const auto y = kernels::ref::dequantize_f64(t, q.data(), n);
    const double slack = 1 + 1.0 / 512;  // the fp16 rounding of the stored scales
    double sq_steps = 0;                 // sum over elements of (error / step)^2
    double sq_err = 0, sq_x = 0;         // for the relative RMS error
    const int64_t unit = t == DType::Q4_K ? 32 : bs;  // elements sharing one offset and scale
    for (int64_t u = 0; u < n / unit; ++u) {
      const float* xu = x.data() + u * unit;
      double step = 0, sse = 0, max_err = 0;
      if (t == DType::Q4_K) {  // the widest sub-block of this super-block
        const float* xs = x.data() + (u * unit / 256) * 256;
        for (int j = 0; j < 8; ++j) {
          float lo = 0, hi = 0;
          for (int i = 0; i < 32; ++i) lo = std::min(lo, xs[32 * j + i]), hi = std::max(hi, xs[32 * j + i]);
          step = std::max(step, double(hi - lo) / 15);
        }
      } else {
        float amax = 0;
        for (int64_t i = 0; i < unit; ++i) amax = std::max(amax, std::fabs(xu[i]));
        step = t == DType::Q8_0 ? amax / 127.0 : amax / 8.0;
      }
      for (int64_t i = 0; i < unit; ++i) {
        const double e = y[size_t(u * unit + i)] - xu[i];
        sse += e * e;
        sq_x += double(xu[i]) * xu[i];
        max_err = std::max(max_err, std::fabs(e));
      }
      if (step == 0) {
        ASSERT_EQ(sse, 0.0) << dtype_name(t) << ": an all-zero block must come back exactly";
        continue;
      }
      sq_steps += sse / (step * step);
      sq_err += sse;
      if (t == DType::Q8_0)
        ASSERT_LE(max_err, 0.5 * step * slack) << "q8_0 block " << u;
      else
        ASSERT_LE(std::sqrt(sse / double(unit)), step * slack) << dtype_name(t) << " block " << u;
    }
    std::printf("%s: RMS round-trip error %.3f steps, %.4f of the RMS value (N(0,1) data with outliers)\n",
                std::string(dtype_name(t)).c_str(), std::sqrt(sq_steps / double(n)), std::sqrt(sq_err / sq_x));
  }
}

TEST(Quant, QuantizeRefusesWhatItCannotWrite) {
  std::vector<float> x(300, 1.0f);
  std::vector<uint8_t> out(1024);
  EXPECT_THROW(kernels::quantize_row(DType::Q8_0, x.data(), out.data(), 33), Error);   // not whole blocks
  EXPECT_THROW(kernels::quantize_row(DType::Q4_K, x.data(), out.data(), 288), Error);  // 288 % 256
  EXPECT_THROW(kernels::quantize_row(DType::Q6_K, x.data(), out.data(), 256), Error);  // read-only format
  EXPECT_THROW(kernels::quantize_row(DType::BF16, x.data(), out.data(), 32), Error);
  x[5] = NAN;
  EXPECT_THROW(kernels::quantize_row(DType::Q8_0, x.data(), out.data(), 32), Error);
}

namespace {

class QuantMatmulPath : public SimdPathTest {};

void check_qmatmul(SimdLevel path, DType t, int64_t M, int64_t N, int64_t K, bool with_bias, uint32_t seed) {
  std::mt19937 rng(seed);
  const auto wb = random_blocks(rng, t, N * K);
  const TensorView w(const_cast<uint8_t*>(wb.data()), t, {N, K});
  const auto x = random_vec(rng, size_t(M * K));
  const auto bias = random_vec(rng, size_t(N));
  std::vector<float> y(static_cast<size_t>(M * N), NAN);
  kernels::matmul(x.data(), M, w, with_bias ? bias.data() : nullptr, y.data(), path);
  EXPECT_LT(qmatmul_err(t, wb, N, K, as_f64(x), M, with_bias ? bias.data() : nullptr, y), 1e-6)
      << dtype_name(t) << " M=" << M << " N=" << N << " K=" << K;
}

}  // namespace

TEST_P(QuantMatmulPath, AwkwardSizesEveryFormat) {
  uint32_t seed = 1;
  for (DType t : kAll) {
    const int64_t bs = dtype_block(t);
    for (int64_t M : {1, 2, 3, 4, 5, 7, 13, 49, 130})  // 49, 130: the panel + GEMM path on x86
      for (int64_t N : {1, 7, 65, 130})
        for (int64_t K : {bs, 3 * bs, bs == 32 ? 9 * bs : 5 * bs}) {
          check_qmatmul(path(), t, M, N, K, seed % 2 == 0, seed);
          ++seed;
        }
  }
}

// Each row of a batch gets the bits it gets alone (batched decode = single decode).
TEST_P(QuantMatmulPath, RowsDoNotDependOnTheBatch) {
  std::mt19937 rng(5);
  const int64_t N = 33, K = 512;
  for (DType t : kAll) {
    const auto wb = random_blocks(rng, t, N * K);
    const TensorView w(const_cast<uint8_t*>(wb.data()), t, {N, K});
    for (int64_t M : {2, 5, 17, 48}) {  // up to 48 rows: the register path (more: panels + GEMM)
      const auto x = random_vec(rng, size_t(M * K));
      std::vector<float> batch(static_cast<size_t>(M * N)), one(static_cast<size_t>(N));
      kernels::matmul(x.data(), M, w, nullptr, batch.data(), path());
      for (int64_t m = 0; m < M; ++m) {
        kernels::matmul(x.data() + m * K, 1, w, nullptr, one.data(), path());
        ASSERT_EQ(std::vector<float>(batch.begin() + m * N, batch.begin() + (m + 1) * N), one)
            << dtype_name(t) << " M=" << M << " row " << m;
      }
    }
  }
}

// A row slice of a quantized weight (an expert of a stacked tensor) multiplies like the whole rows.
TEST_P(QuantMatmulPath, RowSlice) {
  std::mt19937 rng(6);
  const int64_t N = 40, K = 256, M = 3;
  for (DType t : kAll) {
    const auto wb = random_blocks(rng, t, N * K);
    const TensorView full(const_cast<uint8_t*>(wb.data()), t, {N, K});
    const TensorView part = full.slice0(5, 30);
    const auto x = random_vec(rng, size_t(M * K));
    std::vector<float> yf(static_cast<size_t>(M * N)), yp(static_cast<size_t>(M * 25));
    kernels::matmul(x.data(), M, full, nullptr, yf.data(), path());
    kernels::matmul(x.data(), M, part, nullptr, yp.data(), path());
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < 25; ++n) ASSERT_EQ(yp[size_t(m * 25 + n)], yf[size_t(m * N + n + 5)]) << dtype_name(t);
  }
}

INSTANTIATE_TEST_SUITE_P(Simd, QuantMatmulPath, SimdPaths(), SimdPathName);

TEST(QuantMatmul, RefusesRowsThatAreNotWholeBlocks) {
  std::vector<uint8_t> b(4096);
  std::vector<float> x(64), y(4);
  const TensorView w(b.data(), DType::Q8_0, {2, 40});  // 40 % 32 != 0
  try {
    kernels::matmul(x.data(), 1, w, nullptr, y.data());
    FAIL() << "a q8_0 weight with K = 40 was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("whole blocks of 32"), std::string::npos) << e.what();
  }
}

TEST(QuantMatmul, QuantizedEmbeddingRows) {
  std::mt19937 rng(7);
  const int64_t V = 10, D = 256;
  for (DType t : kAll) {
    const auto wb = random_blocks(rng, t, V * D);
    const TensorView table(const_cast<uint8_t*>(wb.data()), t, {V, D});
    std::vector<int32_t> ids = {3, 0, 9};
    std::vector<float> out(static_cast<size_t>(3 * D));
    kernels::embedding(table, ids, out.data());
    for (size_t i = 0; i < ids.size(); ++i) {
      const auto ref = kernels::ref::dequantize_f64(t, wb.data() + dtype_nbytes(t, ids[i] * D), D);
      for (int64_t k = 0; k < D; ++k) ASSERT_NEAR(out[i * D + size_t(k)], ref[size_t(k)], 1e-6) << dtype_name(t);
    }
  }
}

#if LINFER_X86
// QuantActivations::Q8: x rounded to int8 per run of 32 (q8_activations.h) and the int8 kernels of each
// instruction set this CPU runs (qmatmul_q8.h), against float64 products of the dequantized weights with
// the rounded x (what they compute, up to float32 rounding); kernels::matmul takes them when the setting
// says so, a row of x gets the same bits whatever the batch.
namespace {

constexpr DType kQ8Types[] = {DType::Q8_0, DType::Q4_0, DType::Q5_0, DType::Q4_K, DType::Q5_K, DType::Q6_K};

std::vector<std::pair<const char*, kernels::quant::Q8RowsFn>> q8_kernels() {
  std::vector<std::pair<const char*, kernels::quant::Q8RowsFn>> out;
  if (cpu_supports(SimdLevel::Avx2)) out.push_back({"avx2", kernels::quant::q8_rows_avx2});
  if (cpu_has("avx512vnni") && cpu_has("avx512vl") && cpu_has("avx512bw"))
    out.push_back({"avx512vnni", kernels::quant::q8_rows_avx512vnni});
  return out;
}

}  // namespace

TEST(QuantQ8, RoundsEachRunOf32) {
  if (!cpu_supports(SimdLevel::Avx2)) GTEST_SKIP() << "the int8 activations need AVX2";
  std::mt19937 rng(11);
  const int64_t K = 7 * 32;
  auto x = random_vec(rng, size_t(2 * K), 3.0f);
  for (int i = 0; i < 32; ++i) x[size_t(32 + i)] = 0.0f;      // run 1: all zero
  x[size_t(64 + 5)] = NAN;                                     // run 2: a NaN
  x[size_t(96 + 31)] = INFINITY;                               // run 3: an infinity
  for (int i = 0; i < 32; ++i) x[size_t(128 + i)] *= 1e-30f;   // run 4: tiny
  for (int i = 0; i < 32; ++i) x[size_t(160 + i)] *= 1e30f;    // run 5: huge
  x[size_t(192 + 3)] = 127.0f, x[size_t(192 + 4)] = -0.5f;     // run 6: a tie (0.5 · 127 / 127)
  const Rounded r(x, 2, K);
  for (int64_t run = 0; run < 2 * K / 32; ++run) {
    const float* xr = x.data() + 32 * run;
    const size_t e = r.at(run / (K / 32), run % (K / 32));
    const int8_t* qr = r.q.data() + e;
    if (run == 2 || run == 3) {
      EXPECT_TRUE(std::isnan(r.d[size_t(run)])) << "run " << run << ": a non-finite run must give NaN products";
      for (int i = 0; i < 32; ++i) EXPECT_EQ(qr[i], 0) << run;
      continue;
    }
    float amax = 0.0f;
    int32_t sum = 0;
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(xr[i])), sum += qr[i];
    EXPECT_EQ(r.d[size_t(run)], amax / 127.0f) << run;
    for (int i = 0; i < 32; ++i) {
      EXPECT_LE(std::abs(int(qr[i])), 127);
      EXPECT_LE(std::fabs(double(xr[i]) - double(r.d[size_t(run)]) * qr[i]), 0.5001 * double(r.d[size_t(run)]))
          << "run " << run << " element " << i;
    }
    int32_t half[2] = {0, 0};
    for (int i = 0; i < 32; ++i) half[i / 16] += qr[i];
    for (int i = 0; i < 8; ++i) EXPECT_EQ(r.off_q4_0[e / 4 + size_t(i)], -sum) << run;
    for (int i = 0; i < 2; ++i) EXPECT_EQ(r.gs16[size_t(2 * run + i)], r.d[size_t(run)] * float(half[i])) << run;
    EXPECT_EQ(r.gs[size_t(run)], r.d[size_t(run)] * float(sum)) << run;
  }
}

TEST(QuantQ8, KernelsMatchDequantizedProducts) {
  const auto isas = q8_kernels();
  if (isas.empty()) GTEST_SKIP() << "the int8 kernels need AVX2";
  uint32_t seed = 100;
  for (const auto& [isa, fn] : isas)
    for (DType t : kQ8Types) {
      const int64_t bs = dtype_block(t);
      // K: 1-3 blocks, and for blocks of 32 past the 8 AVX-512's Q4_0 sums at a time (8 + 3, 2 · 8 + 1)
      std::vector<int64_t> Ks = {bs, 2 * bs, 3 * bs};
      if (bs == 32) Ks.insert(Ks.end(), {11 * bs, 17 * bs});
      for (int64_t M : {1, 2, 3, 4, 5, 6, 7, 8, 9, 17})  // every R of both instruction sets, and past it
        for (int64_t N : {1, 7, 33})
          for (int64_t K : Ks) {
            std::mt19937 rng(++seed);
            const auto wb = random_blocks(rng, t, N * K);
            const auto x = random_vec(rng, size_t(M * K));
            const auto bias = random_vec(rng, size_t(N));
            const Rounded r(x, M, K);
            const kernels::WeightMatrix w{wb.data(), t, N, K, K};
            std::vector<float> y(size_t(M * N), NAN), y2(size_t(M * N), NAN);
            fn(r.acts(), M, w, bias.data(), y.data(), 0, N);
            fn(r.acts(), M, w, bias.data(), y2.data(), 0, N / 2);  // rows in two calls: the same bits
            fn(r.acts(), M, w, bias.data(), y2.data(), N / 2, N);
            std::vector<float> alone(size_t(N), NAN);  // the last row of x in a call of its own: the same bits
            fn(r.row(M - 1, K), 1, w, bias.data(), alone.data(), 0, N);
            for (int64_t n = 0; n < N; ++n)
              ASSERT_EQ(alone[size_t(n)], y[size_t((M - 1) * N + n)]) << isa << " " << dtype_name(t) << " M=" << M;
            ASSERT_EQ(y2, y) << isa << " " << dtype_name(t);
            EXPECT_LT(qmatmul_err(t, wb, N, K, r.values(M, K), M, bias.data(), y), 1e-6)
                << isa << " " << dtype_name(t) << " M=" << M << " N=" << N << " K=" << K;
          }
    }
}

TEST(QuantQ8, MatmulTakesThemWhenSet) {
  const SimdLevel level = simd_level();
  if (level < SimdLevel::Avx2) GTEST_SKIP() << "the int8 kernels need the avx2 or avx512 path";
  const ActivationsGuard q8(QuantActivations::Q8);
  std::mt19937 rng(5);
  for (DType t : kQ8Types) {
    const int64_t M = 3, N = 20, K = 2 * 256;
    const auto wb = random_blocks(rng, t, N * K);
    const TensorView wv(const_cast<uint8_t*>(wb.data()), t, {N, K});
    const auto x = random_vec(rng, size_t(M * K));
    std::vector<float> y(static_cast<size_t>(M * N)), expect(y.size()), one(static_cast<size_t>(N)), f32(y.size());
    kernels::matmul(x.data(), M, wv, nullptr, y.data(), level);
    const Rounded r(x, M, K);
    kernels::quant::q8_kernel_for(level, t)(r.acts(), M, {wb.data(), t, N, K, K}, nullptr, expect.data(), 0, N);
    EXPECT_EQ(y, expect) << dtype_name(t) << ": matmul must take the int8 kernel";
    kernels::matmul(x.data() + 2 * K, 1, wv, nullptr, one.data(), level);  // row 2 alone: its bits in the batch
    for (int64_t n = 0; n < N; ++n) ASSERT_EQ(one[size_t(n)], y[size_t(2 * N + n)]) << dtype_name(t);
    set_quant_activations(QuantActivations::F32);
    kernels::matmul(x.data(), M, wv, nullptr, f32.data(), level);
    set_quant_activations(QuantActivations::Q8);
    EXPECT_LT(rel_err(y, f32), 0.02) << dtype_name(t) << ": int8 activations far from float32 ones";
  }
}
#endif  // LINFER_X86
