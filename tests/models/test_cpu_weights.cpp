// What the CPU backend makes of a checkpoint's weight matrices: a copy of the bytes as stored, with the view's
// strides (in place under `--mmap`), except Q8_0, Q4_0, Q4_K and Q6_K where their interleaved kernels run
// (kernels/cpu/quant/rows16.h): then a repacked copy that holds every row's blocks, of a row slice (an expert of a
// stacked tensor) too, and multiplies like the stored rows.

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "backend/cpu_backend.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/quant/rows16.h"
#include "linfer/core/cpu_features.h"
#include "linfer/core/error.h"
#include "linfer/core/weight_arena.h"

namespace {

using namespace linfer;

// rows × K values of type t: random bytes, every block's fp16 scales (d, and Q4_K's dmin) 0.01.
std::vector<uint8_t> random_rows(DType t, int64_t rows, int64_t K) {
  std::mt19937 rng(3);
  std::vector<uint8_t> b(dtype_nbytes(t, rows * K));
  for (auto& v : b) v = uint8_t(rng());
  const uint16_t d = f32_to_f16(0.01f);
  for (size_t i = 0; i < b.size(); i += dtype_block_bytes(t))
    for (size_t at : {t == DType::Q6_K ? size_t(208) : size_t(0), t == DType::Q4_K ? size_t(2) : size_t(0)})
      std::memcpy(b.data() + i + at, &d, 2);
  return b;
}

}  // namespace

TEST(CpuWeights, Q8_0Q4_0Q4_KAndQ6_KAreRepackedWhereTheirKernelsRun) {
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K}) {
    const int64_t N = 40, K = 512, E = 3, bb = int64_t(dtype_nbytes(t, K));  // three experts of N rows, stacked
    auto bytes = random_rows(t, E * N, K);
    const TensorView all(bytes.data(), t, {E, N, K});
    const TensorView expert = all.slice0(1, 2).reshape({N, K});
    const Weight w = cpu_backend().weight(expert, WeightUse::Products);
    if (!kernels::quant::rows16_runs(simd_level())) {
      EXPECT_EQ(w.view.dtype(), t);
      EXPECT_EQ(0, std::memcmp(w.view.data(), expert.data(), size_t(N * bb))) << "weights are copied as stored";
      GTEST_SKIP() << "no AVX-512 VNNI on the avx512 path here: Q8_0, Q4_0, Q4_K and Q6_K stay as stored";
    }
    ASSERT_EQ(w.view.dtype(), *kernels::quant::rows16_type(t));
    const Weight by_rows = cpu_backend().weight(expert, WeightUse::RowRanges);  // in place or a resident copy
    EXPECT_EQ(by_rows.view.dtype(), t) << "a weight read by row ranges keeps its stored rows";
    EXPECT_EQ(0, std::memcmp(by_rows.view.data(), expert.data(), size_t(N * bb))) << dtype_name(t);
    EXPECT_THROW(w.view.slice0(0, 16), Error) << "interleaved rows cannot be sliced as stored ones";
    ASSERT_TRUE(w.owner) << "the repacked copy must be kept alive by the weight";
    EXPECT_EQ(w.view.shape(), expert.shape());
    std::vector<uint8_t> row(static_cast<size_t>(bb));
    for (int64_t n = 0; n < N; ++n) {
      kernels::quant::rows16_row({w.view.data(), w.view.dtype(), N, K, K}, n, 0, K / dtype_block(t), row.data());
      ASSERT_EQ(0, std::memcmp(row.data(), bytes.data() + (N + n) * bb, row.size())) << dtype_name(t) << " row " << n;
    }
    std::vector<float> x(size_t(2 * K), 0.5f), y(size_t(2 * N)), expect(y.size());
    kernels::matmul(x.data(), 2, w.view, nullptr, y.data());
    kernels::matmul(x.data(), 2, expert, nullptr, expect.data());
    for (size_t i = 0; i < y.size(); ++i)
      ASSERT_NEAR(y[i], expect[i], 1e-5f * (1 + std::fabs(expect[i]))) << dtype_name(t) << " " << i;
  }
  std::vector<uint8_t> q5(352);  // other types: as stored
  const TensorView v(q5.data(), DType::Q5_K, {2, 256});
  EXPECT_EQ(cpu_backend().weight(v, WeightUse::Products).view.dtype(), DType::Q5_K);
}

// Weights kept as stored are copied (into huge pages: linfer/core/weight_arena.h) with the view's shape and
// strides, a row slice of a larger tensor and a view whose rows lie apart too; `--mmap` keeps them in place.
TEST(CpuWeights, AsStoredWeightsAreResidentCopiesUnlessMapped) {
  const int64_t E = 3, N = 37, K = 96, ld = 128;  // rows ld apart: a view of the first K of each row
  std::vector<uint16_t> bf16(size_t(E * N * ld));
  std::mt19937 rng(9);
  for (auto& b : bf16) b = uint16_t(rng());
  const TensorView expert(bf16.data() + 2 * N * ld, DType::BF16, {N, K}, {ld, 1});  // the last of E
  std::vector<uint8_t> q4(dtype_nbytes(DType::Q5_K, 4 * 512));
  for (auto& b : q4) b = uint8_t(rng());
  const TensorView quant(q4.data(), DType::Q5_K, {4, 512});
  for (const TensorView& host : {expert, quant})
    for (WeightUse use : {WeightUse::Products, WeightUse::RowRanges}) {
      SCOPED_TRACE(testing::Message() << dtype_name(host.dtype()) << (use == WeightUse::RowRanges ? " row ranges" : ""));
      const Weight w = cpu_backend().weight(host, use);
      ASSERT_NE(w.view.data(), host.data());
      ASSERT_TRUE(w.owner) << "the copy must be kept alive by the weight";
      EXPECT_EQ(reinterpret_cast<uintptr_t>(w.view.data()) % 64, 0u);
      EXPECT_EQ(w.view.shape(), host.shape());
      EXPECT_EQ(w.view.strides(), host.strides());
      const size_t row = dtype_nbytes(host.dtype(), host.dim(1)), ld_bytes = dtype_nbytes(host.dtype(), host.strides()[0]);
      for (int64_t n = 0; n < host.dim(0); ++n)
        ASSERT_EQ(0, std::memcmp(static_cast<const char*>(w.view.data()) + n * ld_bytes,
                                 static_cast<const char*>(host.data()) + n * ld_bytes, row))
            << "row " << n;
    }
  set_resident_weights(false);
  EXPECT_EQ(cpu_backend().weight(expert, WeightUse::Products).view.data(), expert.data());
  EXPECT_EQ(cpu_backend().weight(quant, WeightUse::RowRanges).view.data(), quant.data());
  set_resident_weights(true);
}
