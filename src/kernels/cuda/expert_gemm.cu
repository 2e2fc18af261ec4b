// The routed experts' products on the tensor cores: see expert_gemm.h.
#include "kernels/cuda/expert_gemm.h"

#include <cuda_bf16.h>

#include <algorithm>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/mma.cuh"

namespace linfer::kernels::cuda {

namespace {

constexpr int kBM = 64, kBN = 128, kBK = 32, kThreads = 256;  // a block: 64 rows x 128 columns, k by 32
// Row strides in shared memory, padded so that a warp's fragment loads touch 32 distinct banks.
constexpr int kWs = kBK + 8;  // bf16 elements of a weight row (80 bytes)
constexpr int kXs = kBK + 8;  // floats of an x row (160 bytes)
constexpr int kPs = kBK + 8;  // bf16 elements of a row of one of x's three terms

struct Smem {
  uint16_t w[2][kBN * kWs];  // the weight's k tile, two stages
  float x[2][kBM * kXs];     // x's rows, two stages
  uint16_t p[3][kBM * kPs];  // x's k tile as hi, mid, lo bf16 terms
  int j[kBM];                // y's row of each tile row (-1: past the expert's rows)
};

// Rows grouped by expert: offsets[e] .. offsets[e + 1] of order are expert e's rows (in no particular order:
// each row's sums do not depend on its place in a tile). One block; shared memory: E ints.
__global__ void group_rows_kernel(const float* ids, int J, int E, int* offsets, int* order) {
  pdl_enter();
  extern __shared__ int count[];
  for (int e = threadIdx.x; e < E; e += blockDim.x) count[e] = 0;
  __syncthreads();
  for (int j = threadIdx.x; j < J; j += blockDim.x) atomicAdd(&count[int(ids[j])], 1);
  __syncthreads();
  if (threadIdx.x == 0) {
    int sum = 0;
    for (int e = 0; e < E; ++e) {
      const int c = count[e];
      offsets[e] = count[e] = sum;
      sum += c;
    }
    offsets[E] = sum;
  }
  __syncthreads();
  for (int j = threadIdx.x; j < J; j += blockDim.x) order[atomicAdd(&count[int(ids[j])], 1)] = j;
}

// Block (column block, expert): for each 64-row tile of the expert's rows, y's 64 x 128 block. Warp w owns rows
// 32 (w / 4) .. +32 and columns 32 (w % 4) .. +32: two 16-row by four 8-column mma tiles.
__global__ void __launch_bounds__(kThreads) expert_gemm_kernel(const float* x, int64_t ldx, int64_t x_every,
                                                                const ExpertRows* table, int64_t first_rows,
                                                                const int* offsets, const int* order, int N, int K,
                                                                float* y, int64_t ldy) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  Smem& s = *reinterpret_cast<Smem*>(smem_raw);
  pdl_enter();
  const int e = blockIdx.y, n0 = blockIdx.x * kBN, t = threadIdx.x, lane = t & 31, w = t >> 5;
  const int gid = lane >> 2, tig = lane & 3, wm = w >> 2, wn = w & 3;
  const int begin = offsets[e], end = offsets[e + 1];
  if (begin == end) return;
  const ExpertRows ex = table[e];
  const auto* w_first = static_cast<const uint16_t*>(ex.first);
  const auto* w_second = static_cast<const uint16_t*>(ex.second);
  const int KT = (K + kBK - 1) / kBK;

  // Stage `st` of k tile kt: 512 16-byte pieces of the weight (128 rows x 4) and 512 of x (64 rows x 8).
  auto load = [&](int st, int kt) {
    for (int c = t; c < kBN * 4; c += kThreads) {
      const int r = c >> 2, k = kt * kBK + (c & 3) * 8, n = n0 + r;
      const bool ok = n < N && k < K;
      const void* src = !ok ? static_cast<const void*>(x)  // any mapped address: nothing is read
                            : n < first_rows ? w_first + int64_t(n) * K + k : w_second + int64_t(n - first_rows) * K + k;
      cp_async16(reinterpret_cast<float*>(&s.w[st][r * kWs + (c & 3) * 8]), static_cast<const float*>(src), ok);
    }
    for (int c = t; c < kBM * 8; c += kThreads) {
      const int r = c >> 3, k = kt * kBK + (c & 7) * 4, j = s.j[r];
      const bool ok = j >= 0 && k < K;
      cp_async16(&s.x[st][r * kXs + (c & 7) * 4], ok ? x + (j / x_every) * ldx + k : x, ok);
    }
    cp_async_commit();
  };

  for (int tile = begin; tile < end; tile += kBM) {
    __syncthreads();  // the previous tile is done with s.j
    if (t < kBM) s.j[t] = tile + t < end ? order[tile + t] : -1;
    __syncthreads();
    float acc[2][4][4] = {};
    load(0, 0);
    for (int kt = 0; kt < KT; ++kt) {
      const int st = kt & 1;
      if (kt + 1 < KT) {
        load(st ^ 1, kt + 1);
        cp_async_wait<1>();
      } else {
        cp_async_wait<0>();
      }
      __syncthreads();
      {  // x's 64 x 32 tile as three bf16 terms: thread t splits 8 consecutive floats of row t / 4
        const int r = t >> 2, c0 = (t & 3) * 8;
        const float* src = &s.x[st][r * kXs + c0];
#pragma unroll
        for (int i = 0; i < 8; i += 2) {
          uint16_t a[3], b[3];
          bf16x3(src[i], a);
          bf16x3(src[i + 1], b);
#pragma unroll
          for (int term = 0; term < 3; ++term)
            *reinterpret_cast<uint32_t*>(&s.p[term][r * kPs + c0 + i]) = uint32_t(a[term]) | uint32_t(b[term]) << 16;
        }
      }
      __syncthreads();
      // The tensor cores add a product step's sums into the accumulator without rounding to nearest (their
      // error grows with k); each k tile's six steps go to a fresh accumulator, added to acc in float32.
      float part[2][4][4] = {};
#pragma unroll
      for (int k0 = 0; k0 < kBK; k0 += 16) {
        uint32_t b[4][2];
#pragma unroll
        for (int nt = 0; nt < 4; ++nt) {
          const uint16_t* wr = &s.w[st][(32 * wn + 8 * nt + gid) * kWs + k0 + 2 * tig];
          b[nt][0] = *reinterpret_cast<const uint32_t*>(wr);
          b[nt][1] = *reinterpret_cast<const uint32_t*>(wr + 8);
        }
#pragma unroll
        for (int term = 2; term >= 0; --term) {  // the small terms first
#pragma unroll
          for (int mt = 0; mt < 2; ++mt) {
            const uint16_t* xr = &s.p[term][(32 * wm + 16 * mt + gid) * kPs + k0 + 2 * tig];
            const uint32_t a[4] = {*reinterpret_cast<const uint32_t*>(xr),
                                   *reinterpret_cast<const uint32_t*>(xr + 8 * kPs),
                                   *reinterpret_cast<const uint32_t*>(xr + 8),
                                   *reinterpret_cast<const uint32_t*>(xr + 8 * kPs + 8)};
#pragma unroll
            for (int nt = 0; nt < 4; ++nt) mma_bf16_raw(part[mt][nt], a, b[nt]);
          }
        }
      }
#pragma unroll
      for (int mt = 0; mt < 2; ++mt)
#pragma unroll
        for (int nt = 0; nt < 4; ++nt)
#pragma unroll
          for (int i = 0; i < 4; ++i) acc[mt][nt][i] += part[mt][nt][i];
      __syncthreads();  // before the next load overwrites this stage
    }
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
}

}  // namespace

bool expert_gemm_takes(const Rows& x, DType wt, int64_t experts, int64_t K, int64_t rows) {
  return wt == DType::BF16 && K % 8 == 0 && x.ld % 4 == 0 && reinterpret_cast<uintptr_t>(x.p) % 16 == 0 &&
         experts <= kExpertGemmMaxExperts && rows >= kExpertGemmMinRowsPerExpert * experts;
}

int64_t expert_gemm_scratch_ints(int64_t experts, int64_t rows) { return experts + 1 + rows; }

void expert_gemm(const Rows& x, int64_t x_every, const ExpertRows* table, int64_t experts, int64_t first_rows,
                 int64_t N, int64_t K, const float* ids, const Rows& y, int* scratch, cudaStream_t stream) {
  if (y.rows == 0 || N == 0) return;
  LINFER_CUDA_CHECK(expert_gemm_takes(x, DType::BF16, experts, K, y.rows) && x.cols == K && y.cols == N &&
                     x_every >= 1 && y.rows <= x.rows * x_every && first_rows >= 0 && first_rows <= N &&
                     y.rows < (int64_t(1) << 31) / std::max<int64_t>(y.ld, 1) && N < (int64_t(1) << 31),
                 "cuda expert_gemm: x [", x.rows, ", ", x.cols, "] (", x_every, " rows of y each) · w [", N, ", ", K,
                 "]ᵀ of ", experts, " experts -> y [", y.rows, ", ", y.cols, "]");
  int* offsets = scratch;
  int* order = scratch + experts + 1;
  launch_kernel("cuda expert_gemm grouping", {dim3(1), 1024, size_t(experts) * sizeof(int), stream},
                group_rows_kernel, ids, int(y.rows), int(experts), offsets, order);
  static const bool attr = [] {
    cuda_check(cudaFuncSetAttribute(expert_gemm_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(sizeof(Smem))),
               "expert_gemm shared memory");
    return true;
  }();
  (void)attr;
  const dim3 grid(unsigned((N + kBN - 1) / kBN), unsigned(experts));
  launch_kernel("cuda expert_gemm", {grid, kThreads, sizeof(Smem), stream}, expert_gemm_kernel, x.p, x.ld, x_every,
                table, first_rows, offsets, order, int(N), int(K), y.p, y.ld);
}

}  // namespace linfer::kernels::cuda
