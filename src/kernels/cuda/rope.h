#pragma once
// Rotary position embedding on the GPU, kernels/cpu/rope.h's rope(): Hugging Face's rotate_half pairing
// (dim i with dim i + rotary_dim/2) on the first rotary_dim dims of each head, the rest passing through
// (partial rotary: Qwen3-Next rotates a quarter of each head). The angle is position · inv_freq[i] rounded
// to float32, its cos / sin taken in float64, as the CPU does, so both agree to the last bits of a float.
//
//   rope(Rows{d_q, T, H * D, H * D}, H, D, D / 4, d_positions, d_inv_freq, stream);   // in place

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/dense.h"

namespace linfer::kernels::cuda {

// In place on x [T, H·D] (rows x.ld apart); positions [T] (int64) and inv_freq [rotary_dim / 2] in device
// memory. rotary_dim even, <= D.
void rope(const Rows& x, int64_t H, int64_t D, int64_t rotary_dim, const int64_t* positions, const float* inv_freq,
          cudaStream_t stream);

}  // namespace linfer::kernels::cuda
