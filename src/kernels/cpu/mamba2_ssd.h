#pragma once
// Mamba2 selective state-space (SSD) kernels, CPU: batched decode step and chunkwise-parallel prefill
// over packed sequences, one state layout for both. The float64 specification is
// kernels/reference/mamba2_ssd.h; the maths (transformers Mamba2Mixer.torch_forward), per head h:
//
//   dt    = clamp(softplus(dt_raw[t, h] + dt_bias[h]), dt_min, dt_max)   softplus(x) = x above 20
//   A     = -exp(A_log[h])
//   S[p][n] <- exp(dt * A) * S[p][n] + (dt * x[t, h, p]) * B[t, g, n]    g = h / (H / G)
//   y[t, h, p] = sum_n S[p][n] * C[t, g, n] + D[h] * x[t, h, p]
//
// The conv, the gate z and the gated RMSNorm are not part of this kernel (see mixers/).
//
//   Mamba2Dims dims{.H = 48, .P = 64, .N = 128, .G = 1};
//   Mamba2Params params{A_log, dt_bias, D};              // float32 [H] each
//   Mamba2Inputs in{x, dt, B, C};                        // may point into one xBC row: set the strides
//   mamba2_ssd_prefill(dims, params, in, offsets, states, y);   // states[i]: [H, P, N] of sequence i
//   mamba2_ssd_step(dims, params, in1, states, y1);             // one token per sequence
//
// Thread-safety: the calls use the global thread pool (core/thread_pool.h); distinct calls may run
// concurrently as long as they write distinct states and outputs.

#include <cmath>
#include <cstdint>
#include <span>

#include "linfer/core/cpu_features.h"

namespace linfer::kernels {

struct Mamba2Dims {
  int64_t H = 0;  // heads
  int64_t P = 0;  // head dim (plays V of the linear-attention layout)
  int64_t N = 0;  // state size (plays K)
  int64_t G = 1;  // groups of B / C; H % G == 0, head h uses group h / (H / G)
};

// Per-layer parameters, float32 (convert bf16 checkpoint tensors once at load).
struct Mamba2Params {
  const float* A_log = nullptr;    // [H]
  const float* dt_bias = nullptr;  // [H]
  const float* D = nullptr;        // [H], may be null (no skip)
  float dt_min = 0.0f;             // config time_step_limit[0]
  float dt_max = INFINITY;         // config time_step_limit[1]
};

// Per-token inputs, token-major over the packed sequences. Each pointer advances by its stride per
// token (0 = dense), so x, B and C may be slices of one conv output row [x | B | C].
struct Mamba2Inputs {
  const float* x = nullptr;   // [T, H, P]
  const float* dt = nullptr;  // [T, H], raw (before dt_bias and softplus)
  const float* B = nullptr;   // [T, G, N]
  const float* C = nullptr;   // [T, G, N]
  int64_t x_stride = 0;       // 0: H * P
  int64_t dt_stride = 0;      // 0: H
  int64_t B_stride = 0;       // 0: G * N
  int64_t C_stride = 0;       // 0: G * N
};

// Floats in one sequence's state: [H, P, N], row p of head h holds S[p][:] over the state size.
inline int64_t mamba2_state_elems(const Mamba2Dims& d) { return d.H * d.P * d.N; }

// One token for each of states.size() sequences: token i of `in` belongs to states[i].
// y: [n_seqs, H, P].
void mamba2_ssd_step(const Mamba2Dims& dims, const Mamba2Params& params, const Mamba2Inputs& in,
                     std::span<float* const> states, float* y, SimdLevel level = simd_level());

// Chunkwise-parallel prefill of n_seqs = offsets.size() - 1 packed sequences; sequence i owns tokens
// [offsets[i], offsets[i+1]) and reads / writes states[i]. y: [T, H, P].
void mamba2_ssd_prefill(const Mamba2Dims& dims, const Mamba2Params& params, const Mamba2Inputs& in,
                        std::span<const int64_t> offsets, std::span<float* const> states, float* y,
                        SimdLevel level = simd_level());

}  // namespace linfer::kernels
