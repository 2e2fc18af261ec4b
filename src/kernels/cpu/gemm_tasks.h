#pragma once
// Internal: how the prefill GEMMs (gemm_hwy.cpp, gemm_bf16_avx512bf16.cpp) split y [M, N] over the pool,
// and pick the micro kernel for a tile's height.
// Rows go in passes of at most kGemmRowsPerPass, each packing its rows of x once (so the packed copy stays a
// few MiB whatever the prompt's length); within a pass the tasks are blocks of `nc` columns, and where those
// are few (small N), also row ranges in whole tiles of `mr` rows, so every thread has work. Each task packs
// its own weight panels, so a row split repeats that packing: only worth it when threads would idle.
//
//   gemm_passes(M, N, kMR, kNC, [&](int64_t r0, int64_t rows) { pack x rows [r0, r0 + rows) },
//               [&](int64_t r0, int64_t m0, int64_t m1, int64_t n0, int64_t nc) { y rows r0 + [m0, m1) });

#include <algorithm>
#include <cstdint>

#include "linfer/core/thread_pool.h"

namespace linfer::kernels {

// f.template operator()<R>() with R = mr, for a run-time mr in [1, MR]: a tile's micro kernel compiled for
// each height, so a tile of fewer rows keeps its accumulators in registers.
template <int MR, class F>
void with_tile_rows(int64_t mr, F&& f) {
  if constexpr (MR > 1) {
    if (mr < MR) return with_tile_rows<MR - 1>(mr, f);
  }
  f.template operator()<MR>();
}

// x [M, K] packed as tiles of mr rows for a micro kernel: element kp of row i of tile t at a[(t·Kp + kp)·mr + i]
// (Kp elements per row: K floats, or K/2 pairs of bf16), so a tile's values for one kp share a cache line or two
// (rows of x are K floats apart: L1 set conflicts). put_row(xi, dst) writes row xi's Kp elements at dst[kp·mr].
// Rows past M in the last tile are never written nor read. A thread of its own for 64K floats or more (less
// copies faster than a wake-up: a MoE expert's few rows).
template <class T, class PutRow>
void pack_row_tiles(const float* x, int64_t M, int64_t K, int64_t Kp, int64_t mr, T* a, PutRow&& put_row) {
  const int64_t grain = ((int64_t(1) << 16) + mr * K - 1) / (mr * K);
  parallel_for(0, (M + mr - 1) / mr, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t)
      for (int64_t i = 0; i < std::min(mr, M - t * mr); ++i) put_row(x + (t * mr + i) * K, a + t * Kp * mr + i);
  }, grain);
}

inline constexpr int64_t kGemmRowsPerPass = 516;  // a multiple of every GEMM's tile height (6, 12)

template <class Pack, class Block>
void gemm_passes(int64_t M, int64_t N, int64_t mr, int64_t nc, Pack&& pack, Block&& block) {
  const int64_t n_blocks = (N + nc - 1) / nc;
  const int64_t want_tasks = 3 * int64_t(num_threads());
  for (int64_t r0 = 0; r0 < M; r0 += kGemmRowsPerPass) {
    const int64_t rows = std::min(kGemmRowsPerPass, M - r0);
    pack(r0, rows);
    const int64_t m_splits = std::clamp<int64_t>((want_tasks + n_blocks - 1) / n_blocks, 1, (rows + 23) / 24);
    const int64_t m_step = (rows + m_splits * mr - 1) / (m_splits * mr) * mr;  // whole tiles
    parallel_for(0, n_blocks * m_splits, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t m0 = t % m_splits * m_step, n0 = t / m_splits * nc;
        if (m0 < rows) block(r0, m0, std::min(rows, m0 + m_step), n0, std::min(nc, N - n0));
      }
    });
  }
}

}  // namespace linfer::kernels
