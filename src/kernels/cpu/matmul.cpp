#include "kernels/cpu/matmul.h"

#include <vector>

#include "kernels/cpu/matmul_simd.h"
#include "kernels/cpu/quant/qmatmul.h"
#include "linfer/core/error.h"
#include "linfer/core/thread_pool.h"

namespace linfer::kernels {
namespace {

WeightMatrix weight_matrix(const TensorView& w, const char* op) {
  LINFER_CHECK(w.ndim() == 2, "{}: weight must be 2-D [N, K], got {}", op, shape_str(w.shape()));
  LINFER_CHECK(w.dtype() == DType::F32 || w.dtype() == DType::BF16 || w.dtype() == DType::F16 || is_quantized(w.dtype()),
               "{}: weight dtype {} not supported (f32 / bf16 / f16 / q8_0 / q4_0 / q4_k / q6_k)", op,
               dtype_name(w.dtype()));
  LINFER_CHECK(w.strides()[1] == 1 && w.strides()[0] >= w.dim(1),
               "{}: weight rows must be contiguous (shape {}, strides {})", op, shape_str(w.shape()),
               shape_str(w.strides()));
  return {w.data(), w.dtype(), w.dim(0), w.dim(1), w.strides()[0]};
}

const void* row_ptr(const WeightMatrix& w, int64_t n) {
  return static_cast<const std::byte*>(w.data) + dtype_nbytes(w.dtype, n * w.ld);
}

// Rows of x up to which the x86 paths stream W through the GEMV rather than the packed GEMM
// (docs/benchmarks.md, Dense kernels: on Zen 2 the GEMV is ahead up to M = 48, even at M = 64).
constexpr int64_t kGemvMaxRows = 48;

// Portable path: one weight row converted to float32 at a time, dotted with every x row.
void matmul_scalar(const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y) {
  const int64_t N = w.N, K = w.K;
  parallel_for(0, N, [&](int64_t n0, int64_t n1) {
    std::vector<float> row(static_cast<size_t>(K));
    for (int64_t n = n0; n < n1; ++n) {
      to_f32(w.dtype, row_ptr(w, n), row.data(), size_t(K));
      for (int64_t m = 0; m < M; ++m) {
        const float* xm = x + m * K;
        float acc[4] = {0, 0, 0, 0};  // four partial sums: shorter dependency chains
        int64_t k = 0;
        for (; k + 4 <= K; k += 4)
          for (int j = 0; j < 4; ++j) acc[j] += xm[k + j] * row[k + j];
        for (; k < K; ++k) acc[0] += xm[k] * row[k];
        y[m * N + n] = (acc[0] + acc[1]) + (acc[2] + acc[3]) + (bias ? bias[n] : 0.0f);
      }
    }
  }, 16);
}

}  // namespace

void matmul(const float* x, int64_t M, const TensorView& w, const float* bias, float* y, SimdLevel level) {
  const WeightMatrix wm = weight_matrix(w, "matmul");
  if (M <= 0 || wm.N == 0) return;
  if (is_quantized(wm.dtype)) return quant::matmul(x, M, wm, bias, y, level);  // kernels/cpu/quant
  // Decode and small batches: the GEMV streams W once for every row (on avx512 with 512-bit
  // vectors; on neon for every M); more rows: the packed GEMM, on AVX2 for avx512 too.
#if LINFER_HWY
  if (level == SimdLevel::Neon || (level >= SimdLevel::Avx2 && M <= kGemvMaxRows))
    return hwy_paths::gemv(level, x, M, wm, bias, y);
#endif
#if LINFER_X86
  if (level >= SimdLevel::Avx2) return avx2::gemm(x, M, wm, bias, y);
#endif
  matmul_scalar(x, M, wm, bias, y);
}

void embedding(const TensorView& table, std::span<const int32_t> ids, float* out, SimdLevel level) {
  const WeightMatrix wm = weight_matrix(table, "embedding");
  for (size_t i = 0; i < ids.size(); ++i) {
    LINFER_CHECK(ids[i] >= 0 && ids[i] < wm.N, "embedding: token id {} outside the vocabulary [0, {})", ids[i],
                 wm.N);
    to_f32(wm.dtype, row_ptr(wm, ids[i]), out + int64_t(i) * wm.K, size_t(wm.K));
  }
}

}  // namespace linfer::kernels
