#include "kernels/cuda/rope.h"

#include <algorithm>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/launch.cuh"

namespace linfer::kernels::cuda {

namespace {

// One thread per (token, head, pair): a pair's two dims are read and written by that thread alone.
__global__ void rope_kernel(float* x, int64_t ld, int64_t T, int64_t H, int64_t D, int64_t half,
                            const int64_t* positions, const float* inv_freq) {
  pdl_enter();
  const int64_t n = T * H * half;
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = e % half, h = (e / half) % H, t = e / (half * H);
    const float angle = float(positions[t]) * inv_freq[i];
    const float c = float(cos(double(angle))), s = float(sin(double(angle)));
    float* a = x + t * ld + h * D;
    const float x1 = a[i], x2 = a[i + half];
    a[i] = x1 * c - x2 * s;
    a[i + half] = x2 * c + x1 * s;
  }
}

}  // namespace

void rope(const Rows& x, int64_t H, int64_t D, int64_t rotary_dim, const int64_t* positions, const float* inv_freq,
          cudaStream_t stream) {
  LINFER_CUDA_CHECK(rotary_dim > 0 && rotary_dim % 2 == 0 && rotary_dim <= D && x.cols == H * D && x.ld >= x.cols,
                    "cuda rope: rotary_dim ", rotary_dim, " (head dim ", D, ", ", H, " heads) on rows of ", x.cols);
  const int64_t n = x.rows * H * (rotary_dim / 2);
  if (n == 0) return;
  const int threads = 256;
  const int64_t blocks = std::min<int64_t>((n + threads - 1) / threads, 65535);
  launch_kernel("cuda rope", {unsigned(blocks), threads, 0, stream}, rope_kernel, x.p, x.ld, x.rows, H, D,
                rotary_dim / 2, positions, inv_freq);
}

}  // namespace linfer::kernels::cuda
