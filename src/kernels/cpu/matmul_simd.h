#pragma once
// Internal: the SIMD variants behind kernels/cpu/matmul.h (matmul.cpp checks arguments and
// dispatches). One weight description shared by all variants.

#include <cstdint>

#include "linfer/core/cpu_features.h"
#include "linfer/core/dtype.h"

namespace linfer::kernels {

struct WeightMatrix {
  const void* data;  // [N, ld] elements of dtype; row n starts at n * ld
  DType dtype;       // F32 / BF16 / F16
  int64_t N, K, ld;
};

// How far ahead of the weights being multiplied the decode GEMVs ask for the next ones where they read weight rows
// one after the other (short bf16 / f16 / f32 rows in matmul_hwy.cpp, every int8-activation kernel through
// prefetch_ahead below; the float-activation quantized kernels, bound by their multiplies, gained nothing from
// it), a few lines per step: consecutive rows are consecutive in memory, so this runs into the rows after it. The
// hardware prefetchers alone leave such a stream of 0.5-4 KiB rows short of the read floor. The best distance
// depends on the core (docs/benchmarks.md): on an Intel Xeon (Emerald Rapids), one core, bf16 K = 768 / 1024,
// 9-10 GB/s without, 14-18 GB/s at 4 KiB (1 KiB: 12, 2 KiB: 13-15, 8 KiB: 13-19); on an AMD Zen 3, one core,
// K = 768, 16 GB/s at 4 KiB and 20 at 1 KiB (512 B: 18, 2 KiB: ~18), the same order with 4 KiB or 2 MiB pages.
// Chosen once, by the CPU's vendor.
extern const int64_t g_prefetch_ahead;

// Asks for the lines of the n weight bytes at w, g_prefetch_ahead bytes on: a kernel calls it for the bytes of every
// step, so that the requests go out a few at a time between the products. (Asked for a row ahead in one burst at
// each row's start, they filled the core's line-fill buffers and stalled it there: half the samples of a q4_0
// GEMV sat on the prefetches; Intel Xeon, q4_0 4096 x 4096, int8 x: 8.6 -> 11-13.5 GB/s.) Every 64-byte window of
// consecutive steps' bytes holds one of the addresses, so every line is asked for.
inline void prefetch_ahead(const void* w, int64_t n) {
  const char* p = static_cast<const char*>(w) + g_prefetch_ahead;
  for (int64_t b = 0; b < n; b += 64) __builtin_prefetch(p + b);
}

namespace hwy_paths {
// y[M, N] = x[M, K] · wᵀ (+ bias), the packed GEMM (gemm_hwy.cpp: one Highway source compiled per target),
// parallel over the thread pool. `level` as for gemv_rows below.
void gemm(SimdLevel level, const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y);

// y[M, n0:n1) = x[M, K] · w[n0:n1)ᵀ (+ bias), any M, on the calling thread; weights read once per 4 rows
// of x (matmul_hwy.cpp: one Highway source compiled per target). matmul.cpp splits the weight rows
// of one or several products over the pool. `level` names the target: avx2, avx512 (x86-64) or
// neon (aarch64); the CPU must be able to run it. A row's result does not depend on n0, n1 or M.
void gemv_rows(SimdLevel level, const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y,
               int64_t n0, int64_t n1);
}  // namespace hwy_paths

}  // namespace linfer::kernels
