#include "kernels/cpu/quant/qmatmul.h"

#include <algorithm>
#include <vector>

#include "core/quant_formats.h"
#include "linfer/core/error.h"
#include "linfer/core/thread_pool.h"

namespace linfer::kernels::quant {

namespace {

// Portable path: each block dequantized into a block-sized buffer (core's float32 dequantizer), then
// dotted with every row of x; one float32 partial sum per block and row, added in block order.
void matmul_scalar(const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y) {
  const int64_t bs = dtype_block(w.dtype), nb = w.K / bs;
  const size_t bb = dtype_block_bytes(w.dtype);
  parallel_for(0, w.N, [&](int64_t n0, int64_t n1) {
    float block[256];
    std::vector<float> acc(static_cast<size_t>(M));
    for (int64_t n = n0; n < n1; ++n) {
      const auto* row = static_cast<const uint8_t*>(w.data) + dtype_nbytes(w.dtype, n * w.ld);
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t b = 0; b < nb; ++b) {
        linfer::quant::dequantize_row(w.dtype, row + b * bb, block, bs);
        for (int64_t m = 0; m < M; ++m) {
          const float* xm = x + m * w.K + b * bs;
          float s[4] = {0, 0, 0, 0};
          for (int64_t k = 0; k < bs; k += 4)
            for (int j = 0; j < 4; ++j) s[j] += xm[k + j] * block[k + j];
          acc[size_t(m)] += (s[0] + s[1]) + (s[2] + s[3]);
        }
      }
      for (int64_t m = 0; m < M; ++m) y[m * w.N + n] = acc[size_t(m)] + (bias ? bias[n] : 0.0f);
    }
  }, 8);
}

}  // namespace

void group_sums(const float* x, int64_t M, int64_t K, float* xs) {
  for (int64_t m = 0; m < M; ++m)
    for (int64_t g = 0; g < K / 32; ++g) {
      float s = 0;
      for (int64_t i = 0; i < 32; ++i) s += x[m * K + 32 * g + i];
      xs[m * (K / 32) + g] = s;
    }
}

void matmul(const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y, SimdLevel level) {
  LINFER_CHECK(is_quantized(w.dtype) && w.K % dtype_block(w.dtype) == 0 && w.ld % dtype_block(w.dtype) == 0,
               "quantized matmul: a {} weight needs K (here {}) and its row stride (here {}) to be whole "
               "blocks of {}", dtype_name(w.dtype), w.K, w.ld, dtype_block(w.dtype));
#if LINFER_X86
  if (level >= SimdLevel::Avx2 && level != SimdLevel::Neon) return avx2::matmul(x, M, w, bias, y);
#endif
  matmul_scalar(x, M, w, bias, y);
}

}  // namespace linfer::kernels::quant
