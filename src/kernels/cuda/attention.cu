#include "kernels/cuda/attention.h"

#include <algorithm>
#include <cmath>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/decode_common.cuh"
#include "kernels/cuda/launch.cuh"

namespace linfer::kernels::cuda {

namespace {

using detail::warp_max;
using detail::warp_sum;

// One block per (query, head, sequence): 4 warps walk the visible keys in tiles of 128. Each warp makes
// the dots of every 4th key of the tile (lanes across the key's dims: coalesced), then the tile's softmax
// terms go through shared memory and every thread accumulates its own output dims over the tile's value
// rows (consecutive threads, consecutive dims: coalesced). Online softmax: running max m, sum l.
constexpr int kThreads = 128, kTile = kThreads, kWarps = kThreads / 32, kMaxDvPerThread = 4;
static_assert(kThreads * kMaxDvPerThread == kAttnMaxDv, "attention.h promises kAttnMaxDv value dims");

// The block's max (is_max) or sum of v; every thread gets it. red: kWarps floats of shared memory.
__device__ float block_reduce(float v, bool is_max, float* red) {
  v = is_max ? warp_max(v) : warp_sum(v);
  if (threadIdx.x % 32 == 0) red[threadIdx.x / 32] = v;
  __syncthreads();
  float r = red[0];
#pragma unroll
  for (int w = 1; w < kWarps; ++w) r = is_max ? fmaxf(r, red[w]) : r + red[w];
  __syncthreads();  // red is reused by the next reduction
  return r;
}

// Where a split's partial softmax starts: [splits][n_seqs · max_n · Hq][Dv + 2] (max, sum, then the Dv sums).
__device__ __forceinline__ int64_t partial_at(int64_t split, int64_t seq, int64_t j, int64_t h, int64_t max_n,
                                              const AttnLayout& l) {
  const int64_t rows = int64_t(gridDim.z) * max_n * l.Hq;
  return (split * rows + (seq * max_n + j) * l.Hq + h) * (l.Dv + 2);
}

// blockIdx.x = query j · splits + key range.
__global__ void __launch_bounds__(kThreads) attention_kernel(const float* __restrict__ q, const AttnSeq* seqs,
                                                             AttnLayout l, float* __restrict__ o, int64_t splits,
                                                             int64_t max_n, float* __restrict__ partial) {
  pdl_enter();
  const AttnSeq s = seqs[blockIdx.z];
  const int64_t j = blockIdx.x / splits, split = blockIdx.x % splits, h = blockIdx.y;
  if (j >= s.n) return;  // the whole block: this sequence has fewer queries
  const int64_t g = h / (l.Hq / l.Hkv), Dq = l.D1 + l.D2;
  const int64_t visible = s.len - s.n + j + 1;  // causal: rows [0, position]
  const int64_t per = (visible + splits - 1) / splits, k_begin = split * per;
  const int64_t n_keys = visible < k_begin + per ? visible : k_begin + per;  // this block's keys: [k_begin, n_keys)
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;

  extern __shared__ float smem[];
  float* qs = smem;           // [Dq], pre-scaled
  float* ps = smem + Dq;      // [kTile] scores, then softmax terms
  float* red = ps + kTile;    // [kWarps]
  const float* qr = q + (s.q0 + j) * l.q_ld + h * Dq;
  for (int64_t d = tid; d < Dq; d += kThreads) qs[d] = qr[d] * l.scale;
  const float* k1 = s.k1 + g * l.k1_head;
  const float* k2 = l.D2 ? s.k2 + g * l.k2_head : nullptr;
  const float* v = s.v + g * l.v_head;
  __syncthreads();

  float acc[kMaxDvPerThread] = {};
  float m = -INFINITY, sum = 0.0f;
  for (int64_t t0 = k_begin; t0 < n_keys; t0 += kTile) {
    const int nt = int(n_keys - t0 < kTile ? n_keys - t0 : kTile);
    for (int kk = warp; kk < nt; kk += kWarps) {
      const int64_t key = t0 + kk;
      const float* a = k1 + key * l.k1_row;
      float dot = 0.0f;
      for (int64_t d = lane; d < l.D1; d += 32) dot += qs[d] * a[d];
      if (k2) {
        const float* b = k2 + key * l.k2_row;
        for (int64_t d = lane; d < l.D2; d += 32) dot += qs[l.D1 + d] * b[d];
      }
      dot = warp_sum(dot);
      if (lane == 0) ps[kk] = dot;
    }
    __syncthreads();
    const float score = tid < nt ? ps[tid] : -INFINITY;
    const float m_new = fmaxf(m, block_reduce(score, true, red));
    const float alpha = expf(m - m_new);  // 0 on the first tile (m = -inf)
    const float p = tid < nt ? expf(score - m_new) : 0.0f;
    ps[tid] = p;
    sum = sum * alpha + block_reduce(p, false, red);  // its barriers also publish ps
    m = m_new;
#pragma unroll
    for (int i = 0; i < kMaxDvPerThread; ++i) {
      const int64_t d = tid + int64_t(i) * kThreads;
      if (d >= l.Dv) break;
      float a = acc[i] * alpha;
      const float* vd = v + t0 * l.v_row + d;
      int kk = 0;
      for (; kk + 4 <= nt; kk += 4) {
        const float v0 = vd[(kk + 0) * l.v_row], v1 = vd[(kk + 1) * l.v_row];
        const float v2 = vd[(kk + 2) * l.v_row], v3 = vd[(kk + 3) * l.v_row];
        a += ps[kk] * v0 + ps[kk + 1] * v1 + ps[kk + 2] * v2 + ps[kk + 3] * v3;
      }
      for (; kk < nt; ++kk) a += ps[kk] * vd[kk * l.v_row];
      acc[i] = a;
    }
    __syncthreads();  // ps is rewritten by the next tile
  }
  if (splits > 1) {  // the partial softmax; an empty range leaves m = -inf, sum = 0
    float* p = partial + partial_at(split, blockIdx.z, j, h, max_n, l);
    if (tid == 0) p[0] = m, p[1] = sum;
#pragma unroll
    for (int i = 0; i < kMaxDvPerThread; ++i) {
      const int64_t d = tid + int64_t(i) * kThreads;
      if (d < l.Dv) p[2 + d] = acc[i];
    }
    return;
  }
  float* out = o + (s.q0 + j) * l.o_ld + h * l.Dv;
  const float inv = 1.0f / sum;  // sum >= 1: the max term is exp(0)
#pragma unroll
  for (int i = 0; i < kMaxDvPerThread; ++i) {
    const int64_t d = tid + int64_t(i) * kThreads;
    if (d < l.Dv) out[d] = acc[i] * inv;
  }
}

// One block per (query, head, sequence): o = Σ e^{m_s − M} acc_s / Σ e^{m_s − M} sum_s over the key ranges.
__global__ void __launch_bounds__(kThreads) combine_kernel(const AttnSeq* seqs, AttnLayout l, float* __restrict__ o,
                                                           int64_t splits, int64_t max_n,
                                                           const float* __restrict__ partial) {
  pdl_enter();
  const AttnSeq s = seqs[blockIdx.z];
  const int64_t j = blockIdx.x, h = blockIdx.y;
  if (j >= s.n) return;
  float M = -INFINITY;
  for (int64_t sp = 0; sp < splits; ++sp)
    M = fmaxf(M, partial[partial_at(sp, blockIdx.z, j, h, max_n, l)]);
  float total = 0.0f, acc[kMaxDvPerThread] = {};
  for (int64_t sp = 0; sp < splits; ++sp) {
    const float* p = partial + partial_at(sp, blockIdx.z, j, h, max_n, l);
    if (p[1] == 0.0f) continue;  // an empty range (its m is -inf)
    const float w = expf(p[0] - M);
    total += w * p[1];
#pragma unroll
    for (int i = 0; i < kMaxDvPerThread; ++i) {
      const int64_t d = threadIdx.x + int64_t(i) * kThreads;
      if (d < l.Dv) acc[i] += w * p[2 + d];
    }
  }
  float* out = o + (s.q0 + j) * l.o_ld + h * l.Dv;
#pragma unroll
  for (int i = 0; i < kMaxDvPerThread; ++i) {
    const int64_t d = threadIdx.x + int64_t(i) * kThreads;
    if (d < l.Dv) out[d] = acc[i] / total;
  }
}

}  // namespace

int64_t attention_partial_floats(const AttnLayout& l, int64_t n_seqs, int64_t max_n, int64_t splits) {
  return splits > 1 ? splits * n_seqs * max_n * l.Hq * (l.Dv + 2) : 0;
}

int64_t attention_splits(const AttnLayout& l, int64_t n_seqs, int64_t max_n, int64_t max_len) {
  static const int64_t sms = [] {
    int dev = 0, n = 0;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev);
    return n > 0 ? int64_t(n) : int64_t(132);
  }();
  constexpr int64_t kMinKeys = 256, kMaxSplits = 64;
  const int64_t kBlocksWanted = 2 * sms, blocks = n_seqs * max_n * l.Hq;
  if (blocks >= kBlocksWanted) return 1;
  const int64_t by_blocks = (kBlocksWanted + blocks - 1) / blocks, by_keys = (max_len + kMinKeys - 1) / kMinKeys;
  return std::max<int64_t>(1, std::min({by_blocks, by_keys, kMaxSplits}));
}

void attention(const float* q, const AttnSeq* seqs, int64_t n_seqs, int64_t max_n, const AttnLayout& l, float* o,
               cudaStream_t stream, const AttnSplit& split) {
  LINFER_CUDA_CHECK(l.Hq > 0 && l.Hkv > 0 && l.Hq % l.Hkv == 0, "cuda attention: Hq ", l.Hq,
                    " must be a positive multiple of Hkv ", l.Hkv);
  LINFER_CUDA_CHECK(l.D1 > 0 && l.D2 >= 0 && l.Dv > 0 && l.Dv <= kAttnMaxDv, "cuda attention: head dims ", l.D1,
                    " + ", l.D2, ", v ", l.Dv, " (v at most ", kAttnMaxDv, ")");
  const size_t smem = size_t(l.D1 + l.D2 + kTile + kWarps) * sizeof(float);
  LINFER_CUDA_CHECK(smem <= 48 * 1024, "cuda attention: key dim ", l.D1 + l.D2, " is too large");
  LINFER_CUDA_CHECK(n_seqs >= 0 && n_seqs <= 65535 && l.Hq <= 65535 && max_n < (int64_t(1) << 31),
                    "cuda attention: ", n_seqs, " sequences, ", l.Hq, " heads, ", max_n, " queries: grid too large");
  LINFER_CUDA_CHECK(split.splits >= 1 && (split.splits == 1 || split.partial) && max_n * split.splits < (int64_t(1) << 31),
                    "cuda attention: ", split.splits, " key ranges need partial scratch");
  if (n_seqs == 0 || max_n == 0) return;
  const dim3 grid(unsigned(max_n * split.splits), unsigned(l.Hq), unsigned(n_seqs));
  launch_kernel("cuda attention", {grid, kThreads, smem, stream}, attention_kernel, q, seqs, l, o, split.splits, max_n,
                split.partial);
  if (split.splits == 1) return;
  launch_kernel("cuda attention (combine)",
                {dim3(unsigned(max_n), unsigned(l.Hq), unsigned(n_seqs)), kThreads, 0, stream}, combine_kernel, seqs, l,
                o, split.splits, max_n, split.partial);
}

}  // namespace linfer::kernels::cuda
