#include "kernels/cuda/conv1d.h"

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/decode_common.cuh"
#include "kernels/cuda/launch.cuh"

namespace linfer::kernels::cuda {

namespace {

// One thread per (sequence, channel): the window of a channel is private to its thread.
__global__ void conv1d_step_kernel(const float* x, int64_t xs, const float* w, const float* bias, int C, int W,
                                   SlotPool states, const int32_t* slots, int B, bool act, float* y) {
  pdl_enter();
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

__global__ void conv1d_prefill_kernel(const float* x, int64_t xs, const float* w, const float* bias, int C, int W,
                                      const int64_t* offsets, SlotPool states, const int32_t* slots, bool act,
                                      float* y) {
  pdl_enter();
  const int c = blockIdx.x * blockDim.x + threadIdx.x, b = blockIdx.y;
  if (c >= C) return;
  float* win = detail::slot_ptr(states, slots, b) + int64_t(c) * (W - 1);
  detail::ConvTap tap;
  tap.load(win, w + int64_t(c) * W, W);
  const float bc = bias ? bias[c] : 0.f;
  for (int64_t t = offsets[b]; t < offsets[b + 1]; ++t) {
    const float xc = x[t * xs + c];
    y[t * C + c] = tap.out(xc, bc, W, act);
    tap.shift_into(tap.win, xc, W);  // in place: element j reads j + 1 before j + 1 is written
  }
#pragma unroll
  for (int j = 0; j < detail::kMaxConvW - 1; ++j)
    if (j < W - 1) win[j] = tap.win[j];
}

}  // namespace

void conv1d_prefill(const float* x, int64_t x_stride, const float* w, const float* bias, int64_t C, int64_t W,
                    const int64_t* offsets, int64_t n_seqs, SlotPool states, const int32_t* slots, bool silu,
                    float* y, cudaStream_t stream) {
  LINFER_CUDA_CHECK(C > 0 && W >= 1 && W <= detail::kMaxConvW, "cuda conv1d_prefill: ", C, " channels, width ", W,
                    ": need C > 0 and 1 <= W <= ", detail::kMaxConvW);
  LINFER_CUDA_CHECK(n_seqs >= 0 && n_seqs <= 65535, "cuda conv1d_prefill: ", n_seqs, " sequences out of range");
  if (x_stride == 0) x_stride = C;
  LINFER_CUDA_CHECK(x_stride >= C, "cuda conv1d_prefill: x_stride ", x_stride, " < C ", C);
  if (n_seqs == 0) return;
  LINFER_CUDA_CHECK(x && w && y && offsets && slots && (W == 1 || states.base),
                    "cuda conv1d_prefill: null pointer argument");
  const int threads = 128;
  const dim3 grid(unsigned((C + threads - 1) / threads), unsigned(n_seqs));
  launch_kernel("cuda conv1d_prefill", {grid, threads, 0, stream}, conv1d_prefill_kernel, x, x_stride, w, bias, int(C),
                int(W), offsets, states, slots, silu, y);
}

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
  launch_kernel("cuda conv1d_step", {unsigned(blocks), threads, 0, stream}, conv1d_step_kernel, x, x_stride, w, bias,
                int(C), int(W), states, slots, int(B), silu, y);
}

}  // namespace linfer::kernels::cuda
