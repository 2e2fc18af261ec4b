#include "kernels/cuda/conv1d.h"

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/decode_common.cuh"

namespace linfer::kernels::cuda {

namespace {

// One thread per (sequence, channel): the window of a channel is private to its thread.
__global__ void conv1d_step_kernel(const float* x, int64_t xs, const float* w, const float* bias, int C, int W,
                                   SlotPool states, const int32_t* slots, int B, bool act, float* y) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= int64_t(B) * C) return;
  const int b = int(i / C), c = int(i % C);
  float* win = detail::slot_ptr(states, slots, b) + int64_t(c) * (W - 1);
  detail::ConvTap tap;
  tap.load(win, w + int64_t(c) * W, W);
  const float xc = x[b * xs + c];
  y[i] = tap.out(xc, bias ? bias[c] : 0.f, W, act);
  tap.shift_into(win, xc, W);
}

}  // namespace

void conv1d_step(const float* x, int64_t x_stride, const float* w, const float* bias, int64_t C, int64_t W,
                 SlotPool states, const int32_t* slots, int64_t B, bool silu, float* y, cudaStream_t stream) {
  LINFER_CUDA_CHECK(C > 0 && W >= 1 && W <= detail::kMaxConvW, "cuda conv1d_step: ", C, " channels, width ", W,
                    ": need C > 0 and 1 <= W <= ", detail::kMaxConvW);
  LINFER_CUDA_CHECK(B >= 0 && B * C < (int64_t(1) << 31), "cuda conv1d_step: batch ", B, " x ", C,
                    " channels out of range");
  if (x_stride == 0) x_stride = C;
  LINFER_CUDA_CHECK(x_stride >= C, "cuda conv1d_step: x_stride ", x_stride, " < C ", C);
  if (B == 0) return;
  LINFER_CUDA_CHECK(x && w && y && slots && (W == 1 || states.base), "cuda conv1d_step: null pointer argument");
  const int threads = 256;
  const int blocks = int((B * C + threads - 1) / threads);
  conv1d_step_kernel<<<blocks, threads, 0, stream>>>(x, x_stride, w, bias, int(C), int(W), states, slots, int(B),
                                                      silu, y);
  check_launch("cuda conv1d_step");
}

}  // namespace linfer::kernels::cuda
