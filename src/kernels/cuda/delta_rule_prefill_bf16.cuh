#pragma once
// The bf16 tile helpers of the chunked prefill's PrefillMath::Bf16 passes (delta_rule_prefill_bf16.cu has the
// design) and its W / U step, which chunk_prepare (delta_rule_prefill.cu) runs at its end: conversions of
// float32 rows and of the packed M tile into bf16 tiles, products with T (fragment addresses: mma.cuh).

#include <cooperative_groups.h>

#include "kernels/cuda/delta_rule_prefill_impl.cuh"

namespace linfer::kernels::cuda::prefill {

using bf16 = __nv_bfloat16;

// f(r, c) for this thread's cells of a [rows][n] grid, cell i = r n + c for i = threadIdx.x + j blockDim.x: r as the
// high word of i m, m = floor(2^32 / n) + 1, exact for i < 2^32 / n (a division per cell took ~20 instructions);
// n = 1, where m would wrap to 0, takes r = i.
template <class F>
__device__ inline void for_cells(int rows, int n, F&& f) {
  const unsigned m = 0xFFFFFFFFu / unsigned(n) + 1u;
  for (unsigned i = threadIdx.x; i < unsigned(rows * n); i += blockDim.x) {
    const int r = n == 1 ? int(i) : int(__umulhi(i, m));
    f(r, int(i) - r * n);
  }
}

// n16 16-byte pieces from src (global) to dst (shared), cp.async, not committed.
__device__ inline void copy_async(void* dst, const void* src, int64_t n16) {
  for (int64_t i = threadIdx.x; i < n16; i += blockDim.x)
    cp_async16(static_cast<float*>(dst) + 4 * i, static_cast<const float*>(src) + 4 * i, true);
}

// Elements s[0 .. 3] as float32 (vec: 4-element aligned, one load), and element s[0].
__device__ inline float4 load4(const float* s) { return __ldg(reinterpret_cast<const float4*>(s)); }
__device__ inline float4 load4(const bf16* s) { return bf16x4_to_float4(__ldg(reinterpret_cast<const uint2*>(s))); }
__device__ inline float load1(const float* s) { return __ldg(s); }
__device__ inline float load1(const bf16* s) { return __bfloat162float(*s); }

// For each 4-column piece (r, c) of a [C][w] tile (w a multiple of 4): x = src[r stride + c .. + 3] (float or bf16,
// as float32) in rows r < L and columns < n, zeros elsewhere, handed to put(r, c, x). Each thread issues the loads
// of kBatch pieces before their puts, so that they are in flight together (4 float registers each). vec: src rows
// aligned to 4 elements and n a multiple of 4.
template <int kBatch = 8, class In, class Put>
__device__ void for_pieces(const In* src, int64_t stride, int L, int n, int w, bool vec, Put&& put) {
  const int per_row = w / 4, total = C * per_row, step = blockDim.x;
  for (int i0 = threadIdx.x; i0 < total; i0 += kBatch * step) {
    float4 x[kBatch];
#pragma unroll
    for (int j = 0; j < kBatch; ++j) {
      const int i = i0 + j * step, r = i / per_row, c = 4 * (i % per_row);
      x[j] = make_float4(0.f, 0.f, 0.f, 0.f);
      if (i >= total || r >= L) continue;
      const In* s = src + r * stride + c;
      if (vec) {
        if (c < n) x[j] = load4(s);
      } else {
        x[j].x = c < n ? load1(s) : 0.f, x[j].y = c + 1 < n ? load1(s + 1) : 0.f;
        x[j].z = c + 2 < n ? load1(s + 2) : 0.f, x[j].w = c + 3 < n ? load1(s + 3) : 0.f;
      }
    }
#pragma unroll
    for (int j = 0; j < kBatch; ++j) {
      const int i = i0 + j * step;
      if (i < total) put(i / per_row, 4 * (i % per_row), x[j]);
    }
  }
}

// a x as four bf16 at dst (8-byte aligned)
__device__ inline void store4(bf16* dst, float a, float4 x) {
  *reinterpret_cast<uint2*>(dst) = make_uint2(bf16_pair(a * x.x, a * x.y), bf16_pair(a * x.z, a * x.w));
}

// Part of chunk_prepare's packed M tile (float, in shared memory, row stride MS) as the pieces of a bf16 [C][MB]
// tile: T (unit lower triangular) or, transposed, A_qk (at[j][i] = A_qk(i, j), zero below the diagonal). Each of
// kThreads threads holds kMPieces pieces of 8 elements, so that the tile can go where M was once M is read.
constexpr int kMPieces = C * C / 8 / kThreads;
using MPieces = uint4[kMPieces];
__device__ inline int m_piece_row(int s) { return (threadIdx.x + s * kThreads) >> 3; }
__device__ inline int m_piece_col(int s) { return 8 * ((threadIdx.x + s * kThreads) & 7); }
template <bool kT>
__device__ void m_pieces(const float* m, MPieces& out) {
#pragma unroll
  for (int s = 0; s < kMPieces; ++s) {
    const int r = m_piece_row(s), c = m_piece_col(s);
    float x[8];
#pragma unroll
    for (int j = 0; j < 8; ++j) x[j] = kT ? t_of(m[r * MS + c + j], r, c + j) : aqk_of(m[r * MS + c + j], r, c + j);
    out[s] = make_uint4(bf16_pair(x[0], x[1]), bf16_pair(x[2], x[3]), bf16_pair(x[4], x[5]), bf16_pair(x[6], x[7]));
  }
}
__device__ inline void put_m_pieces(const MPieces& v, bf16* dst) {  // shared or global
#pragma unroll
  for (int s = 0; s < kMPieces; ++s) *reinterpret_cast<uint4*>(dst + m_piece_row(s) * MB + m_piece_col(s)) = v[s];
}

// Rows [0, C) and columns [0, w) of a bf16 tile (row stride ld) from src's rows (stride, 16-byte aligned, as are n
// and w in elements of 8) by cp.async of 16 bytes, not committed: zero in rows >= L and columns >= n (those copies
// name row 0's start, which is mapped).
__device__ inline void copy_tile_bf16(const bf16* src, int64_t stride, int L, int n, int w, bf16* dst, int ld) {
  for_cells(C, w / 8, [&](int r, int p) {
    const int c = 8 * p;
    const bool ok = r < L && c < n;
    const bf16* from = ok ? src + r * stride + c : src;
    cp_async16(reinterpret_cast<float*>(dst + r * ld + c), reinterpret_cast<const float*>(from), ok);
  });
}

// q's or k's chunk tile as bf16 [C][ld] (columns [0, w), zero past L and n): by cp.async of 16 bytes, not committed,
// where async (bf16 rows, 16-byte aligned: Params::qk_async), else through registers as float32 (for_pieces, in
// batches of 4: with 8, the prepare and output passes spill registers).
template <class In>
__device__ void bf16_tile(const In* src, int64_t stride, int L, int n, int w, bool vec, bool async, bf16* dst, int ld) {
  if constexpr (std::is_same_v<In, bf16>)
    if (async) return copy_tile_bf16(src, stride, L, n, w, dst, ld);
  for_pieces<4>(src, stride, L, n, w, vec, [&](int r, int col, float4 x) { store4(dst + r * ld + col, 1.f, x); });
}

// acc = T B for this warp's 16 rows m0 and 16 columns n0 (T unit lower triangular [C][MB], B [C][ld] row-major)
__device__ inline void t_times(const bf16* tb, const bf16* b, int ld, int m0, int n0, float (&acc)[2][4]) {
  const bf16* ar = a_rows(tb, MB, m0);
  const bf16* br = b_cols(b, ld, n0);
  for (int k0 = 0; k0 <= m0; k0 += 16) {
    uint32_t fa[4], fb[4];
    ldmatrix_x4(fa, ar + k0, false);
    ldmatrix_x4(fb, br + k0 * ld, true);
    mma2(acc, fa, fb);
  }
}

// acc += A_qk V' for this warp's 16 rows m0 and 16 columns n0 (A_qk transposed [C][MB], zero right of the diagonal;
// V' [C][VB] row-major)
__device__ inline void aqk_times(const bf16* at, const bf16* vn, int m0, int n0, float (&acc)[2][4]) {
  const bf16 *ar = a_cols(at, MB, m0), *br = b_cols(vn, VB, n0);
  for (int k0 = 0; k0 <= m0; k0 += 16) {
    uint32_t fa[4], fb[4];
    ldmatrix_x4(fa, ar + k0 * MB, true);
    ldmatrix_x4(fb, br + k0 * VB, true);
    mma2(acc, fa, fb);
  }
}

// Rows r = m0 + gid (+ 8) and columns c = n0 + 2 tig (+ 1) (+ 8) of a warp's [16][16] accumulators, as bf16 pairs
// into dst (row stride ld).
__device__ inline void store_pairs(const float (&acc)[2][4], bf16* dst, int ld, int m0, int n0) {
  const int lane = threadIdx.x & 31, gid = lane >> 2, tig = lane & 3;
#pragma unroll
  for (int u = 0; u < 2; ++u)
#pragma unroll
    for (int e = 0; e < 2; ++e)
      *reinterpret_cast<uint32_t*>(dst + (m0 + gid + 8 * e) * ld + n0 + 8 * u + 2 * tig) =
          bf16_pair(acc[u][2 * e], acc[u][2 * e + 1]);
}

// Rows m0 + gid (+ 8) below L and columns col0 + 8 u + 2 tig (+ 1) below V of a warp's [16][16] outputs (tokens
// from tok0, value head hv) into p.o, a column pair in one store where the row's alignment allows.
__device__ inline void store_outputs(const Params& p, const float (&acc)[2][4], int64_t tok0, int L, int64_t hv,
                                     int col0, int m0) {
  const int lane = threadIdx.x & 31, gid = lane >> 2, tig = lane & 3, V = p.V;
  const bool pairs = V % 2 == 0 && (reinterpret_cast<uintptr_t>(p.o) & 7) == 0;
#pragma unroll
  for (int h = 0; h < 2; ++h) {  // elements e = 2 h, 2 h + 1: row r, columns col and col + 1
    const int r = m0 + gid + 8 * h;
    if (r >= L) continue;
    float* row = p.o + (tok0 + r) * p.HV * V + hv * V;
#pragma unroll
    for (int u = 0; u < 2; ++u) {
      const int col = col0 + 8 * u + 2 * tig;
      if (pairs && col + 1 < V) {
        *reinterpret_cast<float2*>(row + col) = make_float2(acc[u][2 * h], acc[u][2 * h + 1]);
      } else {
        if (col < V) row[col] = acc[u][2 * h];
        if (col + 1 < V) row[col + 1] = acc[u][2 * h + 1];
      }
    }
  }
}

// A state pass's pipeline start: the kStages mbarriers initialised (thread 0; with a cluster of `cluster` blocks that
// share stages, empty[s] too, on which every block of the cluster arrives once it is done with stage s), a block
// (cluster) barrier, then thread 0 issues the copies of the sequence's first kStages - 1 chunks [ch0, ch1) into
// stages 0, 1, ... (prefetch(chunk, stage))
template <int kStages, class Prefetch>
__device__ void start_stages(uint64_t* full, int64_t ch0, int64_t ch1, Prefetch&& prefetch, uint64_t* empty = nullptr,
                             unsigned cluster = 1) {
  if (threadIdx.x == 0) {
    for (int s = 0; s < kStages; ++s) {
      mbar_init(&full[s], 1);
      if (empty) mbar_init(&empty[s], cluster);
    }
    mbar_init_fence();
  }
  if (cluster > 1) cooperative_groups::this_cluster().sync();  // every block's barriers exist before any copy
  else __syncthreads();
  if (threadIdx.x == 0)
    for (int i = 0; i < kStages - 1 && ch0 + i < ch1; ++i) prefetch(ch0 + i, i);
}

// A state pass's state tile in mma accumulators: the block's BV value columns of key rows 16 w .. + 16 for warp w
// (where those rows are below KT: owns), a thread's element (g, u, e) at key row x(e) = 16 w + gid + 8 (e >> 1)
// and column c(g, u, e) = 16 g + 8 u + 2 tig + (e & 1); its bf16 copy St [BV][KB] (St[c][x]) is the B operand of
// the products with S.
struct StateTile {
  float acc[2][2][4];
  bool owns;
  int x0, c0;  // x(0), c(0, 0, 0)
  __device__ int x(int e) const { return x0 + 8 * (e >> 1); }
  __device__ int c(int g, int u, int e) const { return c0 + 16 * g + 8 * u + (e & 1); }
  template <class F>
  __device__ void for_each(F&& f) {
#pragma unroll
    for (int g = 0; g < 2; ++g)
#pragma unroll
      for (int u = 0; u < 2; ++u)
#pragma unroll
        for (int e = 0; e < 4; ++e) f(acc[g][u][e], x(e), c(g, u, e));
  }
  // From st, the block's first value column of the slot's [V][K] state (vn columns), zeros past K and vn
  __device__ void load(const float* st, int K, int KT, int vn) {
    const int warp = int(threadIdx.x >> 5), lane = int(threadIdx.x & 31);
    owns = warp < KT / 16, x0 = 16 * warp + (lane >> 2), c0 = 2 * (lane & 3);
    for_each([&](float& a, int xi, int ci) { a = owns && xi < K && ci < vn ? st[int64_t(ci) * K + xi] : 0.f; });
  }
  __device__ void to_bf16(bf16* St, int KB) {
    for_each([&](float& a, int xi, int ci) { St[ci * KB + xi] = __float2bfloat16_rn(a); });
  }
  // acc += Aᵀ V' over the chunk's first L rows (whole steps of 16; rows past L of both are zero): a_at(k0) is the
  // lane's ldmatrix address of A's transposed fragment at rows k0 .. + 16, V' [C][VB] in shared memory
  template <class AAt>
  __device__ void add_product(AAt&& a_at, const bf16* vn, int L) {
#pragma unroll
    for (int k0 = 0; k0 < C; k0 += 16)
      if (k0 < L) {
        uint32_t fa[4];
        ldmatrix_x4(fa, a_at(k0), true);
#pragma unroll
        for (int g = 0; g < 2; ++g) {
          uint32_t fb[4];
          ldmatrix_x4(fb, b_cols(vn, VB, 16 * g) + k0 * VB, true);
          mma2(acc[g], fa, fb);
        }
      }
  }
  __device__ void store(float* st, int K, int vn) {
    if (owns)
      for_each([&](float& a, int xi, int ci) {
        if (xi < K && ci < vn) st[int64_t(ci) * K + xi] = a;
      });
  }
};

// Shared memory of the W / U step (Scalar, PerKey; Ssd needs none): T [C][MB] (bf16), the factors β a_k, d, β
// [3][C] (float), β a_k ⊙ k [C][KB] and β ⊙ v [C][VW] (bf16, VW = nvb BV + 8), then W or U on its way out (bf16,
// the larger of [C][KB] and [nvb][C][VB]).
__host__ __device__ inline int wu_t_k_bytes(int KB) { return 2 * C * MB + 4 * 3 * C + 2 * C * KB; }  // up to k's
__host__ __device__ inline int wu_operand_bytes(int KB, int nvb) {  // T, factors, k and v operands
  return wu_t_k_bytes(KB) + 2 * C * (nvb * BV + 8);
}
__host__ __device__ inline int wu_smem_bytes(int KB, int nvb) {
  return wu_operand_bytes(KB, nvb) + 2 * max(C * KB, nvb * C * VB);
}

// For each 4-column piece (r, c) of a [C][w] bf16 tile in shared memory (row stride ld; w a multiple of 4): x =
// its elements as float32, zero in columns >= n, handed to put(r, c, x) (as for_pieces does from global memory).
template <class Put>
__device__ void tile_pieces(const bf16* t, int ld, int n, int w, Put&& put) {
  for_cells(C, w / 4, [&](int r, int p) {
    const int col = 4 * p;
    put(r, col, col < n ? bf16x4_to_float4(*reinterpret_cast<const uint2*>(t + r * ld + col))
                        : make_float4(0.f, 0.f, 0.f, 0.f));
  });
}

// The chunk's k and v tiles that chunk_prepare left in shared memory for the W / U step (bf16, zero past the
// sequence and, k, past K to KT; either may be null: then the step reads the input): k [C][k_ld], v [C][V].
struct EarlyTiles {
  const bf16* k = nullptr;
  int k_ld = 0;
  const bf16* v = nullptr;
};

// Columns [0, n) of rows [0, rows) of a bf16 tile with row stride ld (a multiple of 8, n too) from shared src to
// global dst, 16 bytes per thread step.
__device__ inline void copy_rows(const bf16* src, bf16* dst, int rows, int ld, int n) {
  for_cells(rows, n / 8, [&](int r, int p) {
    const int off = r * ld + 8 * p;
    *reinterpret_cast<uint4*>(dst + off) = *reinterpret_cast<const uint4*>(src + off);
  });
}

// The W / U step of chunk (chunk, hv), run by chunk_prepare's block once the chunk's M and factors are in the
// scratch (and visible to the block: a barrier after they were written): Kd, W and U into p.bf. PerKey: Kd and
// W's operand β a_k ⊙ k ⊙ e^{G} are in p.bf already (chunk_prepare wrote them from its decay tiles), W = T times
// that operand replaces it. smem: at least wu_smem_bytes (Scalar, PerKey; Ssd uses none), free to overwrite but
// for the early tiles. In: the element type of k and v. early: this thread's cp.async copies of them committed;
// v (Params::v_early) at or past wu_operand_bytes, k (Params::k_early, or Ssd's Gram tile) at or past wu_t_k_bytes.
// tp: this thread's pieces of T (m_pieces<true>; Ssd: unused).
template <Rule kRule, class In>
__device__ void wu_step(const Params& p, int64_t chunk, int64_t hv, const Chunk& c, float4* sm4, EarlyTiles early,
                        const MPieces& tp) {
  const Bf16Tiles& t = p.bf;
  const int warp = threadIdx.x >> 5, KB = t.KB, KT = p.KT, VW = t.nvb * BV + 8;
  const int64_t rec = chunk * p.HV + hv;
  const float* sc = p.scratch + rec * p.sc_floats;
  const In* k = static_cast<const In*>(p.k) + c.tok0 * p.ks + c.h * p.K;
  const In* v = static_cast<const In*>(p.v) + c.tok0 * p.vs + hv * p.V;
  bf16* kd = t.kd + rec * t.k_size();
  bf16* u = t.u + rec * t.v_size();
  auto u_at = [&](int r, int col) { return u + (col / BV) * C * VB + r * VB + col % BV; };  // U(r, col)
  auto k_pieces = [&](auto&& put) {
    if (early.k) tile_pieces(early.k, early.k_ld, KT, KT, put);
    else for_pieces(k, p.ks, c.L, p.K, KT, p.vec, put);
  };
  auto v_pieces = [&](auto&& put) {
    if (early.v) tile_pieces(early.v, p.V, p.V, t.nvb * BV, put);
    else for_pieces(v, p.vs, c.L, p.V, t.nvb * BV, p.vec, put);
  };
  if constexpr (kRule == Rule::Ssd) {  // T = I: Kd = d ⊙ k and U = dt ⊙ x as they come
    const float *fd = sc + m_floats(MmaMath::Bf16) + 2 * C, *fdt = fd + C;
    k_pieces([&](int r, int col, float4 x) { store4(kd + r * KB + col, fd[r], x); });
    v_pieces([&](int r, int col, float4 x) { store4(u_at(r, col), fdt[r], x); });
    return;
  }
  bf16* tb = reinterpret_cast<bf16*>(sm4);
  float* fk = reinterpret_cast<float*>(tb + C * MB);  // β a_k, d (Scalar: PerKey's are in its tiles), β
  const float *fd = fk + C, *fbeta = fk + 2 * C;
  bf16* kb = reinterpret_cast<bf16*>(fk + 3 * C);
  bf16* vb = kb + C * KB;
  if (threadIdx.x < C) {
    const float* f = sc + m_floats(MmaMath::Bf16);  // a_q, a_k, d, β
    if constexpr (kRule == Rule::Scalar) {
      fk[threadIdx.x] = f[3 * C + threadIdx.x] * f[C + threadIdx.x];
      fk[C + threadIdx.x] = f[2 * C + threadIdx.x];
    }
    fk[2 * C + threadIdx.x] = f[3 * C + threadIdx.x];
  }
  if constexpr (kRule == Rule::PerKey) {
    copy_async(kb, t.w + rec * t.k_size(), C * KB / 8);  // through L2: written by this block
    cp_async_commit();
  }
  if (early.k || early.v) cp_async_wait<0>();  // visible to every thread after the barrier below
  put_m_pieces(tp, tb);
  __syncthreads();
  if constexpr (kRule == Rule::PerKey) {
    cp_async_wait<0>();
  } else {
    k_pieces([&](int r, int col, float4 x) {
      store4(kd + r * KB + col, fd[r], x);
      store4(kb + r * KB + col, fk[r], x);
    });
    if (early.k) __syncthreads();  // vb goes over the early k tile
  }
  v_pieces([&](int r, int col, float4 x) { store4(vb + r * VW + col, fbeta[r], x); });
  __syncthreads();
  // W = T (β a_k ⊙ k) and U = T (β ⊙ v), 16 columns at a time: warp w rows 16 (w & 3), every other column
  // group. Each product's tiles go to ws in the global tile's layout first, then out in 16-byte pieces, a row's
  // pieces from consecutive lanes: the fragments' own 4-byte pieces (4 per row and 8 rows per store) filled half
  // of each 32-byte sector they wrote.
  bf16* ws = vb + C * VW;
  const int m0 = 16 * (warp & 3), wg = KT / 16;
  for (int g = warp >> 2; g < wg; g += 2) {
    float acc[2][4] = {};
    t_times(tb, kb, KB, m0, 16 * g, acc);
    store_pairs(acc, ws, KB, m0, 16 * g);
  }
  __syncthreads();
  copy_rows(ws, t.w + rec * t.k_size(), C, KB, KT);
  __syncthreads();
  for (int g = warp >> 2; g < 2 * t.nvb; g += 2) {
    const int n0 = 16 * g;
    float acc[2][4] = {};
    t_times(tb, vb, VW, m0, n0, acc);
    store_pairs(acc, ws + (n0 / BV) * C * VB, VB, m0, n0 % BV);
  }
  __syncthreads();
  copy_rows(ws, u, t.nvb * C, VB, BV);
}

}  // namespace linfer::kernels::cuda::prefill
