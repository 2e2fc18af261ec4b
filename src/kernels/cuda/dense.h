#pragma once
// The dense ops of a whole model on the GPU, around the recurrent kernels: GEMV over weights as stored
// (f32 / bf16 / f16, float32 accumulation), weight widening for cuBLAS's float32 GEMM, embedding lookup,
// the RMSNorm variants of kernels/cpu/norm.h, and elementwise activations and gates. Same maths as the CPU
// kernels (float32 throughout); sums run in another order, so results agree to float32 rounding, not bit
// for bit. Every pointer is device memory; every call is asynchronous on `stream`.
//
//   Rows x{d_x, T, K, K}, y{d_y, T, N, N};
//   gemv(x, d_w, DType::BF16, N, K, d_bias, y, stream);       // y = x · wᵀ + bias
//   rms_norm(x, d_w, y, 1e-6f, false, stream);

#include <cuda_runtime.h>

#include <cstdint>

#include "linfer/core/dtype.h"

namespace linfer::kernels::cuda {

// A float32 matrix in device memory: rows × cols, ld floats between rows.
struct Rows {
  float* p = nullptr;
  int64_t rows = 0, cols = 0, ld = 0;
};

// Rows of x up to which gemv() is the way to multiply (decode); above, a GEMM (cuBLAS: bf16 weights through
// split_bf16x3, others widened to float32).
// gemv() takes any number of rows, kGemvMaxRows per launch.
constexpr int64_t kGemvMaxRows = 8;

// Independent products side by side in one launch: product h reads x's columns from h·x, w from h·w
// elements on, and writes y's columns from h·y (MLA's W_k[h]ᵀ and W_v[h] for every head h at once).
struct GemvHeads {
  int64_t n = 1, x = 0, w = 0, y = 0;
};

// y[M, N] = x[M, K] · wᵀ (+ bias[N]); w [N, K] row-major of dtype wt (F32, BF16, F16). One warp per output
// column, 16-byte weight loads where K and the pointers allow; `heads` such products.
void gemv(const Rows& x, const void* w, DType wt, int64_t N, int64_t K, const float* bias, const Rows& y,
          cudaStream_t stream, const GemvHeads& heads = {});

// Independent products y_p = x_p · w_pᵀ (+ bias_p) over the same number of rows M, weights of one dtype, in
// one launch (a layer's projections of one input: one kernel instead of one each). At most kGemvManyMax.
struct GemvProduct {
  const float* x = nullptr;
  int64_t ldx = 0;
  const void* w = nullptr;
  int64_t N = 0, K = 0;
  const float* bias = nullptr;
  float* y = nullptr;
  int64_t ldy = 0;
};
constexpr int kGemvManyMax = 16;
void gemv_many(const GemvProduct* products, int n, int64_t M, DType wt, cudaStream_t stream);

// A MoE's routed experts on the device: expert e's weight [N, K] is rows [0, first_rows) at first[e] and the
// rest at second[e], row-major, every pointer 16-byte aligned (device allocations are).
struct ExpertRows {
  const void* first = nullptr;
  const void* second = nullptr;
};
// y[j, :] = x[j / x_every, :] · W[ids[j]]ᵀ for each row j of y, W from `table` of `experts` (ids: y.rows
// floats, exact expert numbers, in device memory, as moe_route writes them). The GEMV above, one launch per
// kExpertGroupMaxRows rows (whole x rows); in a launch with at least as many rows as experts, grouped by
// expert, each weight row read once for up to kGemvMaxRows of them. Every row's sum is the same either way.
constexpr int64_t kExpertGroupMaxRows = 4096;
void expert_gemv(const Rows& x, int64_t x_every, const ExpertRows* table, int64_t experts, int64_t first_rows, DType wt,
                 int64_t N, int64_t K, const float* ids, const Rows& y, cudaStream_t stream);
// y[t, :] += Σ_i w[t, i] · src[t · k + i, :], k = w.cols, summed in i order (the routed experts' outputs).
void moe_combine(const Rows& src, const Rows& w, const Rows& y, cudaStream_t stream);
// dst[n] = float(w[n]) for n elements of dtype wt.
void widen(const void* w, DType wt, int64_t n, float* dst, cudaStream_t stream);
// A GEMM over bf16 weights to float32 quality without a float32 copy of the weight: x [M, K] as three bf16
// terms that sum to it exactly, stacked as terms[t · M + m, :] ([3M, K], contiguous) for t = 0, 1, 2; a bf16 GEMM
// of those with the weight gives c [3M, N], whose three row blocks sum_bf16x3 adds up (small terms first) into y
// (+ bias, may be null).
void split_bf16x3(const Rows& x, uint16_t* terms, cudaStream_t stream);
void sum_bf16x3(const float* c, const float* bias, const Rows& y, cudaStream_t stream);
// y[:, c] += bias[c].
void add_bias(const Rows& y, const float* bias, cudaStream_t stream);
// y[i, :] = float(table[ids[i], :]); table [V, D] of dtype wt, D = y.cols; ids in device memory.
void embedding(const void* table, DType wt, const int32_t* ids, const Rows& y, cudaStream_t stream);

// Per row: y = x / sqrt(mean(x²) + eps) · (one_plus ? 1 + w : w); w may be null. y may alias x.
void rms_norm(const Rows& x, const float* w, const Rows& y, float eps, bool one_plus, cudaStream_t stream);
// Per row: x += r, then y = norm(x) as rms_norm (the residual add and the next norm in one kernel). y and r
// must not alias x.
void add_rms_norm(const Rows& x, const Rows& r, const float* w, const Rows& y, float eps, bool one_plus,
                  cudaStream_t stream);
// Per row: y = norm(x) · w · act(gate), act sigmoid (silu_gate false) or SiLU. y may alias x.
void rms_norm_gated(const Rows& x, const Rows& gate, const float* w, const Rows& y, float eps, bool silu_gate,
                    cudaStream_t stream);
// Per row: h = x · silu(z); each `group` channels: y = h / sqrt(mean(h²) + eps) · w. y may alias x.
void rms_norm_gate_first(const Rows& x, const Rows& z, const float* w, const Rows& y, int64_t group, float eps,
                         cudaStream_t stream);

enum class Elementwise : uint8_t { Sigmoid, Softplus, Silu, Add, Mul, Swiglu };
// y = f(x) (Sigmoid, Softplus, Silu: b unused); y += x (Add), y *= x (Mul); y = silu(x) · b (Swiglu).
// Elementwise on [rows, cols]: y may alias x or b element for element.
void elementwise(Elementwise f, const Rows& x, const Rows& b, const Rows& y, cudaStream_t stream);
void fill(const Rows& y, float value, cudaStream_t stream);
// In place: g = -exp(A_log[c / per_head]) · softplus(g + dt_bias[c]) per column c.
void decay_gate(const Rows& g, const float* dt_bias, const float* A_log, int64_t per_head, cudaStream_t stream);

// y[t, :] *= sigmoid(g[t, 0]) (the shared expert's gate).
void scale_rows_sigmoid(const Rows& y, const Rows& g, cudaStream_t stream);

}  // namespace linfer::kernels::cuda
