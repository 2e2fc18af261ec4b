#include "kernels/cpu/quant/qmatmul.h"

#include <algorithm>
#include <vector>

#include "core/quant_formats.h"
#include "kernels/cpu/gemm_bf16.h"
#include "kernels/cpu/quant/rows16.h"
#include "linfer/core/aligned.h"
#include "linfer/core/error.h"
#include "linfer/core/quant_activations.h"
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
    std::vector<uint8_t> tmp(quant_row_bytes(w.dtype, w.K));
    for (int64_t n = n0; n < n1; ++n) {
      const QuantRow row = quant_row(w, n, 0, w.K, tmp.data());
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t b = 0; b < nb; ++b) {
        linfer::quant::dequantize_row(row.t, row.p + b * bb, block, bs);
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

#if LINFER_X86 && LINFER_HWY
// Prefill: `panel` weight rows at a time dequantized to float32 (a bounded buffer, never the whole
// matrix), multiplied by the packed GEMM into a [M, panel] buffer, copied into y's columns. The
// dequantization (~1 ns per weight) is small beside the GEMM's 2·M flops per weight.
void matmul_panels(const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y, SimdLevel level) {
  const int64_t panel = std::min(w.N, std::max<int64_t>((int64_t(1) << 20) / w.K, 16));  // ~4 MiB of float32
  thread_local AlignedVector<float> f32_buf, out_buf;  // this thread's: workers see only the pointers
  f32_buf.resize(size_t(panel * w.K));
  out_buf.resize(size_t(M * panel));
  float* const f32 = f32_buf.data();
  float* const out = out_buf.data();
  for (int64_t n0 = 0; n0 < w.N; n0 += panel) {
    const int64_t nr = std::min(panel, w.N - n0);
    parallel_for(0, nr, [&](int64_t r0, int64_t r1) {
      thread_local std::vector<uint8_t> tmp;  // an interleaved row's blocks
      tmp.resize(quant_row_bytes(w.dtype, w.K));
      for (int64_t r = r0; r < r1; ++r) {
        const QuantRow row = quant_row(w, n0 + r, 0, w.K, tmp.data());
        linfer::quant::dequantize_row(row.t, row.p, f32 + r * w.K, w.K);
      }
    }, 8);
    kernels::hwy_paths::gemm(level, x, M, WeightMatrix{f32, DType::F32, nr, w.K, w.K}, bias ? bias + n0 : nullptr, out);
    for (int64_t m = 0; m < M; ++m) std::copy_n(out + m * nr, nr, y + m * w.N + n0);
  }
}
#endif

}  // namespace

void group_sums(const float* x, int64_t M, int64_t K, float* xs) {
  for (int64_t m = 0; m < M; ++m)
    for (int64_t g = 0; g < K / 32; ++g) {
      float s = 0;
      for (int64_t i = 0; i < 32; ++i) s += x[m * K + 32 * g + i];
      xs[m * (K / 32) + g] = s;
    }
}

void matmul_rows(SimdLevel level, const float* x, const float* xs, int64_t M, const WeightMatrix& w,
                 const float* bias, float* y, int64_t n0, int64_t n1) {
#if LINFER_X86
  if (is_rows16(w.dtype)) return rows16_f32(x, xs, M, w, bias, y, n0, n1);
#endif
#if LINFER_HWY
  hwy_paths::matmul_rows(level, x, xs, M, w, bias, y, n0, n1);
#else
  (void)level, (void)x, (void)xs, (void)M, (void)bias, (void)y, (void)n0, (void)n1;
  fail("quantized matmul: no GEMV in a build without Highway");
#endif
}

bool reads_group_sums(SimdLevel level, DType t) {
#if LINFER_HWY
  return is_rows16(t) || hwy_paths::reads_group_sums(level, t);
#else
  (void)level;
  return is_rows16(t);
#endif
}

bool has_gemm(SimdLevel level) {
#if LINFER_X86 && LINFER_HWY
  return level >= SimdLevel::Avx2;
#else
  (void)level;
  return false;
#endif
}

void matmul(const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y, SimdLevel level) {
#if LINFER_X86 && LINFER_HWY
  if (has_gemm(level)) {
    if (rounds_to_bf16(quant_activations()))
      if (const GemmBf16Fn bf16_dot = prefill_gemm_bf16_for(level)) return bf16_dot(x, M, w, bias, y);
    return matmul_panels(x, M, w, bias, y, level);
  }
#endif
  matmul_scalar(x, M, w, bias, y);
}

}  // namespace linfer::kernels::quant
