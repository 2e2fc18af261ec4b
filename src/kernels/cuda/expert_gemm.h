#pragma once
// The routed experts' products on the tensor cores, for calls with many (token, expert) rows (prefill):
// the rows are grouped by expert on the device (a counting pass: no trip to the host), then each (column
// block, expert) block multiplies 64-row tiles of its rows of x by the expert's bf16 weight with mma.sync
// (bf16 operands, float32 accumulation). x (float32) enters as three bf16 terms hi + mid + lo whose sum is x
// exactly (8 significant bits each), so every product x·w is exact in float32; each k tile's sums (which the
// tensor cores accumulate without rounding to nearest) are added to the row's in float32, so a row's sum
// keeps float32 quality whatever K. The contract of expert_gemv (dense.h):
// y[j, :] = x[j / x_every, :] · W[ids[j]]ᵀ for each of y's rows j.
//
//   if (expert_gemm_takes(x, DType::BF16, E, K, J)) {
//     DeviceBuffer<int> scratch(expert_gemm_scratch_ints(E, J));
//     expert_gemm(x, k, table, E, first_rows, N, K, ids, y, scratch.data(), stream);
//   }

#include "kernels/cuda/dense.h"

namespace linfer::kernels::cuda {

// Rows per expert (on average) from which expert_gemm beats expert_gemv's grouped GEMV.
constexpr int64_t kExpertGemmMinRowsPerExpert = 16;
constexpr int64_t kExpertGemmMaxExperts = 4096;

// Whether expert_gemm takes the call: bf16 weights, K a multiple of 8, x's rows 16-byte aligned, at most
// kExpertGemmMaxExperts experts and at least kExpertGemmMinRowsPerExpert rows per expert.
bool expert_gemm_takes(const Rows& x, DType wt, int64_t experts, int64_t K, int64_t rows);
// The device ints expert_gemm needs as scratch for `rows` rows over `experts` experts.
int64_t expert_gemm_scratch_ints(int64_t experts, int64_t rows);
// ids: y.rows exact expert numbers as floats (moe_route's output). Asynchronous on `stream`.
void expert_gemm(const Rows& x, int64_t x_every, const ExpertRows* table, int64_t experts, int64_t first_rows,
                 int64_t N, int64_t K, const float* ids, const Rows& y, int* scratch, cudaStream_t stream);

}  // namespace linfer::kernels::cuda
