#include "kernels/cuda/cache_rows.h"

#include <algorithm>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/launch.cuh"

namespace linfer::kernels::cuda {

namespace {

constexpr int kThreads = 128, kMaxRowBlocks = 1024;

// blockIdx.x = sequence; blockIdx.y strides over its rows.
__global__ void append_kernel(const float* __restrict__ src, int64_t ld, int64_t cols, const int64_t* offsets,
                              const CacheRows* rows) {
  pdl_enter();
  const int64_t i = blockIdx.x, b = offsets[i], n = offsets[i + 1] - b;
  const CacheRows c = rows[i];
  for (int64_t t = blockIdx.y; t < n; t += gridDim.y) {
    const float* from = src + (b + t) * ld;
    float* to = c.p + (c.rows - n + t) * cols;
    for (int64_t e = threadIdx.x; e < cols; e += blockDim.x) to[e] = from[e];
  }
}

__global__ void attn_seqs_kernel(const CacheRows* k, const CacheRows* v, int64_t k2_offset, const int64_t* offsets,
                                 int64_t n_seqs, AttnSeq* seqs) {
  pdl_enter();
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n_seqs) return;
  const CacheRows kc = k[i];
  seqs[i] = {.k1 = kc.p, .k2 = k2_offset < 0 ? nullptr : kc.p + k2_offset, .v = v[i].p, .len = kc.rows,
             .q0 = offsets[i], .n = offsets[i + 1] - offsets[i]};
}

}  // namespace

void append_to_caches(const Rows& src, const int64_t* offsets, const CacheRows* rows, int64_t n_seqs, int64_t max_n,
                      cudaStream_t stream) {
  LINFER_CUDA_CHECK(n_seqs >= 0 && n_seqs < (int64_t(1) << 31) && max_n >= 0, "cuda append_to_caches: ", n_seqs,
                    " sequences of up to ", max_n, " rows");
  if (n_seqs == 0 || max_n == 0 || src.cols == 0) return;
  const dim3 grid(unsigned(n_seqs), unsigned(std::min<int64_t>(max_n, kMaxRowBlocks)));
  launch_kernel("cuda append_to_caches", {grid, kThreads, 0, stream}, append_kernel, src.p, src.ld, src.cols, offsets,
                rows);
}

void attn_seqs_from_caches(const CacheRows* k, const CacheRows* v, int64_t k2_offset, const int64_t* offsets,
                           int64_t n_seqs, AttnSeq* seqs, cudaStream_t stream) {
  if (n_seqs <= 0) return;
  launch_kernel("cuda attn_seqs_from_caches", {unsigned((n_seqs + kThreads - 1) / kThreads), kThreads, 0, stream},
                attn_seqs_kernel, k, v, k2_offset, offsets, n_seqs, seqs);
}

}  // namespace linfer::kernels::cuda
