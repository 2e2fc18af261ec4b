#pragma once
// The routed experts' products on the tensor cores, for calls with many (token, expert) rows (prefill):
// the rows are grouped by expert on the device (a counting pass: no trip to the host) and each expert's rows cut
// into 64-row tiles; x (float32) is split once into three bf16 terms hi + mid + lo whose sum is x exactly (8
// significant bits each), so every product x·w is exact in float32; then each (column block, tile) block
// multiplies its tile's rows of the terms by the expert's bf16 weight with mma.sync (bf16 operands, float32
// accumulation), and each k tile's sums (which the tensor cores accumulate without rounding to nearest) are added
// to the row's in float32, so a row's sum keeps float32 quality whatever K. One block per tile, not per expert:
// an expert with many rows is spread over many blocks. The contract of expert_gemv (dense.h):
// y[j, :] = x[j / x_every, :] · W[ids[j]]ᵀ for each of y's rows j.
//
//   if (expert_gemm_takes(x, DType::BF16, E, K, J)) {
//     DeviceBuffer<char> scratch(expert_gemm_scratch_bytes(E, J, x_every, K));
//     expert_gemm(x, x_every, table, E, first_rows, N, K, ids, y, scratch.data(), stream);
//   }

#include "kernels/cuda/dense.h"

namespace linfer::kernels::cuda {

// Rows per expert (on average) from which expert_gemm beats expert_gemv's grouped GEMV (H100, bench/cuda/moe.cpp:
// at 8 rows per expert 1.7-2.3x its speed; at 4, even with 32 experts and 1.2x with 256).
constexpr int64_t kExpertGemmMinRowsPerExpert = 8;
constexpr int64_t kExpertGemmMaxExperts = 4096;

// Whether expert_gemm can run the call: bf16 weights, K a multiple of 8, x's rows 16-byte aligned, at most
// kExpertGemmMaxExperts experts.
bool expert_gemm_supports(const Rows& x, DType wt, int64_t experts, int64_t K);
// Whether it should: it can, with at least kExpertGemmMinRowsPerExpert rows per expert.
bool expert_gemm_takes(const Rows& x, DType wt, int64_t experts, int64_t K, int64_t rows);
// The device bytes expert_gemm needs as scratch (16-byte aligned) for `rows` rows of y over `experts` experts.
int64_t expert_gemm_scratch_bytes(int64_t experts, int64_t rows, int64_t x_every, int64_t K);
// ids: y.rows exact expert numbers as floats (moe_route's output). Asynchronous on `stream`.
void expert_gemm(const Rows& x, int64_t x_every, const ExpertRows* table, int64_t experts, int64_t first_rows,
                 int64_t N, int64_t K, const float* ids, const Rows& y, void* scratch, cudaStream_t stream);

}  // namespace linfer::kernels::cuda
