// AVX2 + FMA + F16C GEMM for prefill (many rows of x; matmul.cpp sends the decode rows to the
// Highway GEMV, matmul_hwy.cpp). Weights stay as stored; bf16 / f16 are widened to float32 while
// packing: a block of NC weight rows × KC columns is converted into float32 panels [KC][16] (16
// output columns side by side, in L2), then a 6×16 register tile of y accumulates over the panel
// (12 ymm accumulators, one broadcast of x and two panel loads per k).

#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/cpu/matmul_simd.h"
#include "linfer/core/aligned.h"
#include "linfer/core/thread_pool.h"

namespace linfer::kernels::avx2 {
namespace {

constexpr int64_t kMR = 6, kNR = 16, kKC = 256, kNC = 128;

template <DType T>
inline __m256 load8(const void* p, int64_t i) {
  if constexpr (T == DType::F32) {
    return _mm256_loadu_ps(static_cast<const float*>(p) + i);
  } else {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(p) + i));
    if constexpr (T == DType::BF16) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    else return _mm256_cvtph_ps(h);
  }
}

template <DType T>
inline float load1(const void* p, int64_t i) {
  if constexpr (T == DType::F32) return static_cast<const float*>(p)[i];
  else if constexpr (T == DType::BF16) return bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
  else return _cvtsh_ss(static_cast<const uint16_t*>(p)[i]);
}

inline const void* row_ptr(const WeightMatrix& w, int64_t n) {
  return static_cast<const std::byte*>(w.data) + n * w.ld * int64_t(dtype_size(w.dtype));
}

// ---- GEMM ------------------------------------------------------------------------------------------

// In-register transpose of 8 rows of 8 floats: r[i][j] -> r[j][i].
inline void transpose8(__m256 r[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
    r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
  }
}

// panel[p][k][j] = W[n0 + 16p + j, k0 + k] as float32 (zero past n0 + nc). Full groups of 8 rows ×
// 8 columns go through an in-register transpose; edges element by element.
template <DType T>
void pack_panels(const WeightMatrix& w, int64_t n0, int64_t nc, int64_t k0, int64_t kc, float* panel) {
  for (int64_t p = 0; p < (nc + kNR - 1) / kNR; ++p) {
    float* dst = panel + p * kc * kNR;
    for (int64_t j0 = 0; j0 < kNR; j0 += 8) {
      const int64_t first = n0 + p * kNR + j0, valid = std::clamp<int64_t>(n0 + nc - first, 0, 8);
      int64_t k = 0;
      if (valid == 8) {
        const void* rows[8];
        for (int i = 0; i < 8; ++i) rows[i] = row_ptr(w, first + i);
        for (; k + 8 <= kc; k += 8) {
          __m256 r[8];
#pragma GCC unroll 8
          for (int i = 0; i < 8; ++i) r[i] = load8<T>(rows[i], k0 + k);
          transpose8(r);
#pragma GCC unroll 8
          for (int i = 0; i < 8; ++i) _mm256_store_ps(dst + (k + i) * kNR + j0, r[i]);
        }
      }
      for (; k < kc; ++k)
        for (int64_t j = 0; j < 8; ++j) dst[k * kNR + j0 + j] = j < valid ? load1<T>(row_ptr(w, first + j), k0 + k) : 0.0f;
    }
  }
}

inline __m256i lane_mask(int64_t valid) {  // lanes [0, valid) set
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(std::clamp<int64_t>(valid, 0, 8))), idx);
}

// c[MR, ncols] += a · panel[kc, 16] (first ncols columns); a is packed [kc][kMR] (row i of the
// tile at a[k * kMR + i]), so the tile's x values for one k share a cache line.
template <int MR>
void micro_kernel(const float* a, const float* b, int64_t kc, float* c, int64_t ldc, int64_t ncols) {
  __m256 acc0[MR], acc1[MR];
  #pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) acc0[i] = acc1[i] = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_load_ps(b + k * kNR), b1 = _mm256_load_ps(b + k * kNR + 8);
    #pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m256 av = _mm256_broadcast_ss(a + k * kMR + i);
      acc0[i] = _mm256_fmadd_ps(av, b0, acc0[i]);
      acc1[i] = _mm256_fmadd_ps(av, b1, acc1[i]);
    }
  }
  if (ncols == kNR) {
    #pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      float* ci = c + i * ldc;
      _mm256_storeu_ps(ci, _mm256_add_ps(_mm256_loadu_ps(ci), acc0[i]));
      _mm256_storeu_ps(ci + 8, _mm256_add_ps(_mm256_loadu_ps(ci + 8), acc1[i]));
    }
  } else {
    const __m256i m0 = lane_mask(ncols), m1 = lane_mask(ncols - 8);
    #pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      float* ci = c + i * ldc;
      _mm256_maskstore_ps(ci, m0, _mm256_add_ps(_mm256_maskload_ps(ci, m0), acc0[i]));
      _mm256_maskstore_ps(ci + 8, m1, _mm256_add_ps(_mm256_maskload_ps(ci + 8, m1), acc1[i]));
    }
  }
}

void micro_kernel_rows(int64_t mr, const float* a, const float* b, int64_t kc, float* c, int64_t ldc, int64_t ncols) {
  switch (mr) {
    case 6: return micro_kernel<6>(a, b, kc, c, ldc, ncols);
    case 5: return micro_kernel<5>(a, b, kc, c, ldc, ncols);
    case 4: return micro_kernel<4>(a, b, kc, c, ldc, ncols);
    case 3: return micro_kernel<3>(a, b, kc, c, ldc, ncols);
    case 2: return micro_kernel<2>(a, b, kc, c, ldc, ncols);
    default: return micro_kernel<1>(a, b, kc, c, ldc, ncols);
  }
}

// y[m0:m1, n0:n0+nc] for one task: its own panels, all of K.
template <DType T>
void gemm_block(const float* x, int64_t m0, int64_t m1, const WeightMatrix& w, int64_t n0, int64_t nc,
                const float* bias, float* y) {
  thread_local AlignedVector<float> panel, a_tile;
  panel.resize(size_t(kNC * kKC));
  a_tile.resize(size_t(kMR * kKC));
  const int64_t N = w.N, K = w.K;
  for (int64_t m = m0; m < m1; ++m)
    for (int64_t n = n0; n < n0 + nc; ++n) y[m * N + n] = bias ? bias[n] : 0.0f;
  for (int64_t k0 = 0; k0 < K; k0 += kKC) {
    const int64_t kc = std::min(kKC, K - k0);
    pack_panels<T>(w, n0, nc, k0, kc, panel.data());
    for (int64_t m = m0; m < m1; m += kMR) {
      const int64_t mr = std::min(kMR, m1 - m);
      for (int64_t k = 0; k < kc; ++k)  // x tile, interleaved (rows of x are K floats apart: L1 set conflicts)
        for (int64_t i = 0; i < kMR; ++i) a_tile[k * kMR + i] = i < mr ? x[(m + i) * K + k0 + k] : 0.0f;
      for (int64_t p = 0; p * kNR < nc; ++p) {
        micro_kernel_rows(mr, a_tile.data(), panel.data() + p * kc * kNR, kc, y + m * N + n0 + p * kNR, N,
                          std::min(kNR, nc - p * kNR));
      }
    }
  }
}

template <DType T>
void gemm(const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y) {
  const int64_t n_blocks = (w.N + kNC - 1) / kNC;
  // Few column blocks (small N): split rows too, so every thread has work; each task packs its own
  // panels, so splitting rows repeats the packing — only worth it when threads would idle.
  const int64_t want_tasks = 3 * int64_t(num_threads());
  const int64_t m_splits = std::clamp<int64_t>((want_tasks + n_blocks - 1) / n_blocks, 1, (M + 23) / 24);
  const int64_t m_step = (M + m_splits - 1) / m_splits;
  parallel_for(0, n_blocks * m_splits, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t nb = t / m_splits, ms = t % m_splits;
      const int64_t n0 = nb * kNC, m0 = ms * m_step;
      gemm_block<T>(x, m0, std::min(M, m0 + m_step), w, n0, std::min(kNC, w.N - n0), bias, y);
    }
  });
}

}  // namespace

void gemm(const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y) {
  switch (w.dtype) {
    case DType::BF16: return gemm<DType::BF16>(x, M, w, bias, y);
    case DType::F16: return gemm<DType::F16>(x, M, w, bias, y);
    default: return gemm<DType::F32>(x, M, w, bias, y);
  }
}

}  // namespace linfer::kernels::avx2
