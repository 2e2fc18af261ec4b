// The packed GEMM for prefill (many rows of x; matmul.cpp sends decode rows to the GEMV, matmul_hwy.cpp),
// written once over Google Highway and compiled per target (hwy/foreach_target.h re-includes this file:
// AVX2 and AVX-512 on x86-64, NEON on aarch64). L = the target's float32 lanes (8, 16, 4).
//
// Weights stay as stored; bf16 / f16 are widened to float32 while packing: a block of NC weight rows × KC
// columns becomes float32 panels [KC][NR] (NR = 2L output columns side by side, in L2) through L × L
// in-register transposes; x is packed once per pass of rows (gemm_tasks.h) into tiles [K][MR]; then an
// MR × NR register tile of y accumulates over the panel: 2·MR vector accumulators, one broadcast of x and
// two panel loads per k. MR = 6 on AVX2 (16 vector registers), 12
// on AVX-512 and NEON (32). Activations and sums stay float32; a y element is summed in k order within
// each block of KC columns, blocks in order, so its value depends on K alone (not on M, N or threads).
// It replaced a hand-written AVX2 GEMM of the same scheme, which was no faster on the avx2 path
// (docs/benchmarks.md, "Prefill GEMM on Highway").

#include "kernels/cpu/hwy_targets.h"  // before foreach_target.h
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/gemm_hwy.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include <hwy/highway.h>

#include <algorithm>

#include "kernels/cpu/gemm_tasks.h"
#include "kernels/cpu/hwy_dispatch.h"
#include "kernels/cpu/hwy_weights-inl.h"
#include "kernels/cpu/matmul_simd.h"
#include "linfer/core/aligned.h"
#include "linfer/core/error.h"
#include "linfer/core/thread_pool.h"

HWY_BEFORE_NAMESPACE();
namespace linfer::kernels::HWY_NAMESPACE {
namespace {

namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

constexpr int64_t kL = int64_t(hn::MaxLanes(DF()));
constexpr int64_t kNR = 2 * kL, kKC = 256, kNC = 128;  // kNC: a multiple of kNR on every target
constexpr int kMR = (HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_NEON) ? 12 : 6;

using hwy_weights::row_ptr;

// In-register transpose of L rows of L floats: r[i][j] -> r[j][i]. Each of the log2(L) rounds takes the even
// and the odd lanes of row pairs (one vpermt2ps on AVX-512, uzp1 / uzp2 on NEON), which rotates the bits of
// (row, lane) by one; log2(L) rotations swap row and lane.
HWY_INLINE void transpose(DF df, VF (&r)[kL]) {
#if HWY_TARGET != HWY_SCALAR  // one lane (Highway's scalar baseline, never called): nothing to do
  VF t[kL];
  HWY_UNROLL(4)
  for (int64_t s = 1; s < kL; s *= 2) {
    HWY_UNROLL(16)
    for (int64_t i = 0; i < kL / 2; ++i) {
      t[i] = hn::ConcatEven(df, r[2 * i + 1], r[2 * i]);
      t[i + kL / 2] = hn::ConcatOdd(df, r[2 * i + 1], r[2 * i]);
    }
    HWY_UNROLL(16)
    for (int64_t i = 0; i < kL; ++i) r[i] = t[i];
  }
#endif
}

// panel[p][k][j] = W[n0 + NR·p + j, k0 + k] as float32 (zero past n0 + nc). Full groups of L rows × L
// columns go through the transpose; edges element by element.
template <DType T>
void pack_panels(const WeightMatrix& w, int64_t n0, int64_t nc, int64_t k0, int64_t kc, float* panel) {
  const DF df;
  for (int64_t p = 0; p < (nc + kNR - 1) / kNR; ++p) {
    float* dst = panel + p * kc * kNR;
    for (int64_t j0 = 0; j0 < kNR; j0 += kL) {
      const int64_t first = n0 + p * kNR + j0, valid = std::clamp<int64_t>(n0 + nc - first, 0, kL);
      int64_t k = 0;
      if (valid == kL) {
        const void* rows[kL];
        for (int64_t i = 0; i < kL; ++i) rows[i] = row_ptr(w, first + i);
        for (; k + kL <= kc; k += kL) {
          VF r[kL];
          HWY_UNROLL(16)
          for (int64_t i = 0; i < kL; ++i) r[i] = hwy_weights::load<T>(df, rows[i], k0 + k);
          transpose(df, r);
          HWY_UNROLL(16)
          for (int64_t i = 0; i < kL; ++i) hn::Store(r[i], df, dst + (k + i) * kNR + j0);
        }
      }
      for (; k < kc; ++k)
        for (int64_t j = 0; j < kL; ++j)
          dst[k * kNR + j0 + j] = j < valid ? hwy_weights::one<T>(row_ptr(w, first + j), k0 + k) : 0.0f;
    }
  }
}

// c[MR, ncols] += a · panel[kc, NR] (first ncols columns); a is a tile of pack_rows: [kc][kMR], row i at
// a[k * kMR + i].
template <int MR>
HWY_NOINLINE void micro_kernel(const float* HWY_RESTRICT a, const float* HWY_RESTRICT b, int64_t kc, float* c,
                               int64_t ldc, int64_t ncols) {
  const DF df;
  // Every loop over MR is unrolled in full: otherwise GCC keeps the tile in memory (a factor ~3).
  VF acc0[MR], acc1[MR];
  HWY_UNROLL(16)
  for (int i = 0; i < MR; ++i) acc0[i] = acc1[i] = hn::Zero(df);
  for (int64_t k = 0; k < kc; ++k) {
    const VF b0 = hn::Load(df, b + k * kNR), b1 = hn::Load(df, b + k * kNR + kL);
    HWY_UNROLL(16)
    for (int i = 0; i < MR; ++i) {
      const VF av = hn::Set(df, a[k * kMR + i]);
      acc0[i] = hn::MulAdd(av, b0, acc0[i]);
      acc1[i] = hn::MulAdd(av, b1, acc1[i]);
    }
  }
  if (ncols == kNR) {
    HWY_UNROLL(16)
    for (int i = 0; i < MR; ++i) {
      float* ci = c + i * ldc;
      hn::StoreU(hn::Add(hn::LoadU(df, ci), acc0[i]), df, ci);
      hn::StoreU(hn::Add(hn::LoadU(df, ci + kL), acc1[i]), df, ci + kL);
    }
  } else {  // the last columns of y: through a buffer, only the valid ones added
    HWY_ALIGN float tile[2 * kL];
    HWY_UNROLL(16)
    for (int i = 0; i < MR; ++i) {
      hn::Store(acc0[i], df, tile);
      hn::Store(acc1[i], df, tile + kL);
      for (int64_t j = 0; j < ncols; ++j) c[i * ldc + j] += tile[j];
    }
  }
}

// x [M, K] as tiles of kMR rows, [ceil(M / kMR)][K][kMR] (pack_row_tiles): row i of tile t, column k at
// a[(t·K + k)·kMR + i]. Made once per pass of rows; every column block reads it.
void pack_rows(const float* x, int64_t M, int64_t K, float* a) {
  pack_row_tiles(x, M, K, K, kMR, a, [&](const float* xi, float* dst) {
    for (int64_t k = 0; k < K; ++k) dst[k * kMR] = xi[k];
  });
}

// y[m0:m1, n0:n0+nc] for one task (m0 a multiple of kMR): its own panels, all of K; a = pack_rows(x).
template <DType T>
void gemm_block(const float* a, int64_t m0, int64_t m1, const WeightMatrix& w, int64_t n0, int64_t nc,
                const float* bias, float* y) {
  thread_local AlignedVector<float> panel;  // [nc / NR][kc][NR]
  panel.resize(size_t(kNC * kKC));
  const int64_t N = w.N, K = w.K;
  for (int64_t m = m0; m < m1; ++m)
    for (int64_t n = n0; n < n0 + nc; ++n) y[m * N + n] = bias ? bias[n] : 0.0f;
  for (int64_t k0 = 0; k0 < K; k0 += kKC) {
    const int64_t kc = std::min(kKC, K - k0);
    pack_panels<T>(w, n0, nc, k0, kc, panel.data());
    for (int64_t m = m0; m < m1; m += kMR) {
      const int64_t mr = std::min<int64_t>(kMR, m1 - m);
      const float* a_tile = a + (m / kMR * K + k0) * kMR;
      for (int64_t p = 0; p * kNR < nc; ++p) {
        with_tile_rows<kMR>(mr, [&]<int R>() {
          micro_kernel<R>(a_tile, panel.data() + p * kc * kNR, kc, y + m * N + n0 + p * kNR, N,
                          std::min(kNR, nc - p * kNR));
        });
      }
    }
  }
}

template <DType T>
void gemm_t(const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y) {
  thread_local AlignedVector<float> a_buf;  // the caller's, read by every task
  a_buf.resize(size_t(std::min(M, kGemmRowsPerPass) + kMR - 1) / kMR * kMR * size_t(w.K));
  float* const a = a_buf.data();
  const int64_t N = w.N, K = w.K;
  gemm_passes(
      M, N, kMR, kNC, [&](int64_t r0, int64_t rows) { pack_rows(x + r0 * K, rows, K, a); },
      [&](int64_t r0, int64_t m0, int64_t m1, int64_t n0, int64_t nc) {
        gemm_block<T>(a, m0, m1, w, n0, nc, bias, y + r0 * N);
      });
}

}  // namespace

void gemm(const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y) {
  switch (w.dtype) {
    case DType::BF16: return gemm_t<DType::BF16>(x, M, w, bias, y);
    case DType::F16: return gemm_t<DType::F16>(x, M, w, bias, y);
    default: return gemm_t<DType::F32>(x, M, w, bias, y);
  }
}

}  // namespace linfer::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace linfer::kernels::hwy_paths {

void gemm(SimdLevel level, const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y) {
  LINFER_HWY_DISPATCH(level, "matmul GEMM", gemm(x, M, w, bias, y));
}

}  // namespace linfer::kernels::hwy_paths
#endif  // HWY_ONCE
