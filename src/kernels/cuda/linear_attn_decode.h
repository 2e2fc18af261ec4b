#pragma once
// Batched decode step of the linear-attention family and of Mamba2 on the GPU: one token for each of B
// sequences, the float32 state of each read and written once, in one kernel. The maths are the CPU
// kernels' (kernels/cpu/linear_attn.h's linear_attn_step and kernels/cpu/mamba2_ssd.h's mamba2_ssd_step,
// same argument structs, every pointer in device memory); Mamba2 runs on the same kernel with its gate
// fused: dt = clamp(softplus(dt_raw + dt_bias)), decay exp(dt · -exp(A_log)), beta = dt, skip = D,
// q = C, k = B, v = x. States live in a slot pool (slot_pool.h), one block per (sequence, value head).
//
//   linear_attn_decode(a, SlotPool{S_pool, S_floats}, SlotPool{z_pool, z_floats}, d_slots, B, d_o, stream);
//   mamba2_decode(dims, params, in, SlotPool{ssm_pool, ssm_floats}, d_slots, B, d_y, stream);
// (Mamba2's conv: conv1d.h; its gated norm and the projections are not part of this kernel.)

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cpu/linear_attn.h"
#include "kernels/cpu/mamba2_ssd.h"
#include "kernels/cuda/slot_pool.h"

namespace linfer::kernels::cuda {

// o: [B, HV, V]. state: [HV, V, K] per slot; z_state: [HV, K] per slot when a.normalize (else unused).
// Throws linfer::Error for K > 256 or inconsistent arguments.
void linear_attn_decode(const LinearAttnArgs& a, SlotPool state, SlotPool z_state, const int32_t* slots, int64_t B,
                        float* o, cudaStream_t stream);

// y: [B, H, P]. state: [H, P, N] per slot. Throws linfer::Error for N > 256 or inconsistent arguments.
void mamba2_decode(const Mamba2Dims& dims, const Mamba2Params& params, const Mamba2Inputs& in, SlotPool state,
                   const int32_t* slots, int64_t B, float* y, cudaStream_t stream);

}  // namespace linfer::kernels::cuda
