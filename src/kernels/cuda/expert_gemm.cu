// The routed experts' products on the tensor cores: see expert_gemm.h.
#include "kernels/cuda/expert_gemm.h"

#include <cuda_bf16.h>

#include <algorithm>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/mma.cuh"

namespace linfer::kernels::cuda {

namespace {

// 64 rows x 128 columns, k by 64, two stages (92 KB: two blocks per SM). H100, gpu_moe: k by 32 in four stages took
// 7-14 % longer, k by 64 in three stages (one block per SM) 10-44 % longer.
constexpr int kBM = 64, kBN = 128, kBK = 64, kStages = 2, kThreads = 256;
constexpr int kPieces = kBK / 8;  // 16-byte pieces of a tile row
constexpr int kLd = kBK + 8;  // bf16 elements of a tile row in shared memory (144 bytes: ldmatrix's 8 rows hit 8
                              // distinct 16-byte bank groups)

struct Smem {
  uint16_t w[kStages][kBN * kLd];     // the weight's k tile
  uint16_t x[kStages][3][kBM * kLd];  // x's k tile as its hi, mid and lo bf16 terms
  int j[kBM];                         // y's row of each tile row (-1: past the expert's rows)
};

// The scratch: offsets [E + 1], tiles [E + 1], order [J] (ints), then x's terms [3][x rows][K] (bf16, split_bf16x3).
struct Scratch {
  int* offsets;   // offsets[e] .. offsets[e + 1]: expert e's places in order
  int* tiles;     // tiles[e] .. tiles[e + 1]: expert e's 64-row tiles among all experts'
  int* order;     // y's rows grouped by expert
  uint16_t* terms;
};
int64_t terms_offset(int64_t experts, int64_t rows) { return (4 * (2 * (experts + 1) + rows) + 15) / 16 * 16; }
Scratch scratch_of(void* p, int64_t experts, int64_t rows) {
  int* ints = static_cast<int*>(p);
  return {ints, ints + experts + 1, ints + 2 * (experts + 1),
          reinterpret_cast<uint16_t*>(static_cast<char*>(p) + terms_offset(experts, rows))};
}
// Tiles over all experts, at most: each expert's last tile may be partial.
int64_t max_tiles(int64_t experts, int64_t rows) { return rows / kBM + std::min(experts, rows); }

// Rows grouped by expert (in no particular order within an expert: each row's sums do not depend on its place in
// a tile) and each expert's tiles numbered. One block; shared memory: E ints.
__global__ void group_rows_kernel(const float* ids, int J, int E, Scratch s) {
  pdl_enter();
  extern __shared__ int count[];
  for (int e = threadIdx.x; e < E; e += blockDim.x) count[e] = 0;
  __syncthreads();
  for (int j = threadIdx.x; j < J; j += blockDim.x) atomicAdd(&count[int(ids[j])], 1);
  __syncthreads();
  if (threadIdx.x == 0) {
    int sum = 0, tiles = 0;
    for (int e = 0; e < E; ++e) {
      const int c = count[e];
      s.offsets[e] = count[e] = sum;
      s.tiles[e] = tiles;
      sum += c;
      tiles += (c + kBM - 1) / kBM;
    }
    s.offsets[E] = sum;
    s.tiles[E] = tiles;
  }
  __syncthreads();
  for (int j = threadIdx.x; j < J; j += blockDim.x) s.order[atomicAdd(&count[int(ids[j])], 1)] = j;
}

// Block (column block, tile slot): y's 64 x 128 block of one of an expert's 64-row tiles (slots past the last
// tile return). Warp w owns rows 32 (w / 4) .. +32 and columns 32 (w % 4) .. +32: two 16-row by four 8-column
// mma tiles. k tiles arrive by cp.async kStages - 1 ahead of the one multiplied.
__global__ void __launch_bounds__(kThreads, 2)
    expert_gemm_kernel(int x_rows, int x_every, const ExpertRows* table, int64_t first_rows, Scratch sc, int E,
                       int N, int K, float* y, int64_t ldy) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  Smem& s = *reinterpret_cast<Smem*>(smem_raw);
  pdl_enter();
  const int slot = blockIdx.y, n0 = blockIdx.x * kBN, t = threadIdx.x, lane = t & 31, w = t >> 5;
  const int gid = lane >> 2, tig = lane & 3, wm = w >> 2, wn = w & 3;
  if (slot >= sc.tiles[E]) return;
  int e = 0;  // the expert whose tiles hold the slot: tiles[e] <= slot < tiles[e + 1]
  for (int hi = E; hi - e > 1;) {
    const int mid = (e + hi) / 2;
    (sc.tiles[mid] <= slot ? e : hi) = mid;
  }
  const int begin = sc.offsets[e] + (slot - sc.tiles[e]) * kBM, end = min(begin + kBM, sc.offsets[e + 1]);
  if (t < kBM) s.j[t] = begin + t < end ? sc.order[begin + t] : -1;
  const ExpertRows ex = table[e];
  const auto* w_first = static_cast<const uint16_t*>(ex.first);
  const auto* w_second = static_cast<const uint16_t*>(ex.second);
  const int KT = (K + kBK - 1) / kBK;
  const int64_t plane = int64_t(x_rows) * K;
  __syncthreads();

  // Stage `st` of k tile kt: the weight's 128 rows and x's terms' 3 x 64, kPieces 16-byte pieces each;
  // a group is committed even past the last k tile, so that every wait counts the same groups.
  auto load = [&](int st, int kt) {
    if (kt < KT) {
      for (int c = t; c < kBN * kPieces; c += kThreads) {
        const int r = c / kPieces, k = kt * kBK + (c % kPieces) * 8, n = n0 + r;
        const bool ok = n < N && k < K;
        const uint16_t* src = !ok ? sc.terms  // any mapped address: nothing is read
                              : n < first_rows ? w_first + int64_t(n) * K + k
                                               : w_second + int64_t(n - first_rows) * K + k;
        cp_async16(reinterpret_cast<float*>(&s.w[st][r * kLd + (c % kPieces) * 8]), reinterpret_cast<const float*>(src),
                   ok);
      }
      for (int c = t; c < 3 * kBM * kPieces; c += kThreads) {
        const int term = c / (kBM * kPieces), r = c / kPieces % kBM, k = kt * kBK + (c % kPieces) * 8, j = s.j[r];
        const bool ok = j >= 0 && k < K;
        const uint16_t* src = ok ? sc.terms + term * plane + int64_t(j / x_every) * K + k : sc.terms;
        cp_async16(reinterpret_cast<float*>(&s.x[st][term][r * kLd + (c % kPieces) * 8]),
                   reinterpret_cast<const float*>(src), ok);
      }
    }
    cp_async_commit();
  };

  float acc[2][4][4] = {};
  for (int i = 0; i < kStages - 1; ++i) load(i, i);
  for (int kt = 0; kt < KT; ++kt) {
    const int st = kt % kStages;
    cp_async_wait<kStages - 2>();  // k tile kt has landed (for this thread's copies) ...
    __syncthreads();               // ... for every thread's, and stage (kt - 1) % kStages is free again
    load((kt + kStages - 1) % kStages, kt + kStages - 1);
    // The tensor cores add a product step's sums into the accumulator without rounding to nearest (their
    // error grows with k); each k tile's steps go to a fresh accumulator, added to acc in float32.
    float part[2][2][2][4] = {};  // [row tile][16-column group][8-column tile]
#pragma unroll
    for (int k0 = 0; k0 < kBK; k0 += 16) {
      uint32_t b[2][4];
#pragma unroll
      for (int g = 0; g < 2; ++g) ldmatrix_x4(b[g], b_rows(s.w[st], kLd, 32 * wn + 16 * g) + k0, false);
#pragma unroll
      for (int term = 2; term >= 0; --term) {  // the small terms first
#pragma unroll
        for (int mt = 0; mt < 2; ++mt) {
          uint32_t a[4];
          ldmatrix_x4(a, a_rows(s.x[st][term], kLd, 32 * wm + 16 * mt) + k0, false);
#pragma unroll
          for (int g = 0; g < 2; ++g) mma2(part[mt][g], a, b[g]);
        }
      }
    }
#pragma unroll
    for (int mt = 0; mt < 2; ++mt)
#pragma unroll
      for (int nt = 0; nt < 4; ++nt)
#pragma unroll
        for (int i = 0; i < 4; ++i) acc[mt][nt][i] += part[mt][nt >> 1][nt & 1][i];
  }
  cp_async_wait<0>();  // no copy outlives the block
#pragma unroll
  for (int mt = 0; mt < 2; ++mt)
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int j = s.j[32 * wm + 16 * mt + gid + 8 * half];
      if (j < 0) continue;
#pragma unroll
      for (int nt = 0; nt < 4; ++nt) {
        const int n = n0 + 32 * wn + 8 * nt + 2 * tig;
        if (n < N) y[j * ldy + n] = acc[mt][nt][2 * half];
        if (n + 1 < N) y[j * ldy + n + 1] = acc[mt][nt][2 * half + 1];
      }
    }
}

}  // namespace

bool expert_gemm_supports(const Rows& x, DType wt, int64_t experts, int64_t K) {
  return wt == DType::BF16 && K % 8 == 0 && x.ld % 4 == 0 && reinterpret_cast<uintptr_t>(x.p) % 16 == 0 &&
         experts <= kExpertGemmMaxExperts;
}

bool expert_gemm_takes(const Rows& x, DType wt, int64_t experts, int64_t K, int64_t rows) {
  return expert_gemm_supports(x, wt, experts, K) && rows >= kExpertGemmMinRowsPerExpert * experts;
}

int64_t expert_gemm_scratch_bytes(int64_t experts, int64_t rows, int64_t x_every, int64_t K) {
  return terms_offset(experts, rows) + 3 * 2 * ((rows + x_every - 1) / x_every) * K;
}

void expert_gemm(const Rows& x, int64_t x_every, const ExpertRows* table, int64_t experts, int64_t first_rows,
                 int64_t N, int64_t K, const float* ids, const Rows& y, void* scratch, cudaStream_t stream) {
  if (y.rows == 0 || N == 0) return;
  const int64_t x_rows = x_every >= 1 ? (y.rows + x_every - 1) / x_every : 0, tiles = max_tiles(experts, y.rows);
  LINFER_CUDA_CHECK(expert_gemm_supports(x, DType::BF16, experts, K) && x.cols == K && y.cols == N &&
                     x_every >= 1 && x_rows <= x.rows && first_rows >= 0 && first_rows <= N &&
                     y.rows < (int64_t(1) << 31) / std::max<int64_t>(y.ld, 1) && x_rows * K < (int64_t(1) << 31) &&
                     N < (int64_t(1) << 31) && tiles <= 65535,
                 "cuda expert_gemm: x [", x.rows, ", ", x.cols, "] (", x_every, " rows of y each) · w [", N, ", ", K,
                 "]ᵀ of ", experts, " experts -> y [", y.rows, ", ", y.cols, "]");
  const Scratch sc = scratch_of(scratch, experts, y.rows);
  launch_kernel("cuda expert_gemm grouping", {dim3(1), 1024, size_t(experts) * sizeof(int), stream},
                group_rows_kernel, ids, int(y.rows), int(experts), sc);
  split_bf16x3({x.p, x_rows, K, x.ld}, sc.terms, stream);  // once per call: every column block multiplies them
  static const bool attr = [] {
    cuda_check(cudaFuncSetAttribute(expert_gemm_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(sizeof(Smem))),
               "expert_gemm shared memory");
    return true;
  }();
  (void)attr;
  const dim3 grid(unsigned((N + kBN - 1) / kBN), unsigned(tiles));
  launch_kernel("cuda expert_gemm", {grid, kThreads, sizeof(Smem), stream}, expert_gemm_kernel, int(x_rows),
                int(x_every), table, first_rows, sc, int(experts), int(N), int(K), y.p, y.ld);
}

}  // namespace linfer::kernels::cuda
