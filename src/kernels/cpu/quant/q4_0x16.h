#pragma once
// Internal: Q4_0 weights with 16 rows interleaved (DType::Q4_0x16), the layout the CPU backend gives Q4_0
// matrices on CPUs with AVX-512 VNNI (backend/cpu_backend.cpp) so that one vpdpbusd multiplies 16 weight rows
// by 4 int8 activations at once: no horizontal sums and one scale conversion per block for 16 rows (decode at
// batch 8: 2.7-3.6x the int8 kernel on Q4_0's own rows, docs/benchmarks.md). The same 18 bytes per 32 weights.
//
// Layout. Rows in groups of 16 (the last group padded with zero rows: scale 0, nibbles 8). Group g (rows 16g ..
// 16g + 15) starts at byte g · q4_0x16_group_bytes(K) (a multiple of 64) and holds, for nb = K / 32 blocks:
//   nibbles  nb × 256 bytes, block b at 256 b: 4 vectors of 64 bytes; in vector c (c < 4), bytes 4i .. 4i + 3 are
//            qs[4c .. 4c + 3] of row 16g + i's block b, Q4_0's own bytes: low nibbles elements 4c + j, high
//            nibbles elements 16 + 4c + j (j < 4);
//   scales   nb × 32 bytes at 256 nb: block b's 16 fp16 d, row i's at 32 b + 2i;
//   padding  to the next multiple of 64 bytes.
// A WeightMatrix of this type has data at group 0, N and K as the Q4_0 matrix, ld = K.
//
// The kernels (q4_0x16_avx512vnni.cpp): the int8 one (QuantActivations::Q8; per block, per row of x, 8 vpdpbusd
// started from Q4_0's offset -8 Σq, one conversion, one scale product, one FMA into 16 rows' lanes) and the
// float32 one (each element's 16 weights as float lanes, one FMA per row of x; the offset through x's sums of
// 32). Everything else that reads these weights (the prefill GEMMs' dequantizers, embedding rows, the scalar
// path) takes a row back as Q4_0 blocks (q4_0x16_row). Rows are taken 16 at a time: split points of a product's
// rows are multiples of 16 (or N).

#include <cstdint>

#include "kernels/cpu/matmul_simd.h"
#include "kernels/cpu/quant/q8_activations.h"
#include "linfer/core/cpu_features.h"

namespace linfer::kernels::quant {

constexpr int64_t kQ4x16Rows = 16;
constexpr int64_t q4_0x16_group_bytes(int64_t K) { return ((K / 32) * 288 + 63) / 64 * 64; }
constexpr int64_t q4_0x16_groups(int64_t N) { return (N + kQ4x16Rows - 1) / kQ4x16Rows; }
constexpr int64_t q4_0x16_bytes(int64_t N, int64_t K) { return q4_0x16_groups(N) * q4_0x16_group_bytes(K); }

// Whether the CPU has the kernels (AVX-512 F / BW / VL / VNNI) and `level` is the avx512 path: where the CPU
// backend repacks Q4_0 weights.
bool q4_0x16_runs(SimdLevel level);

// Q4_0 rows [N, K] at src, row n at src + n · row_bytes -> dst (q4_0x16_bytes(N, K) bytes). K a multiple of 32;
// parallel over groups on the thread pool.
void repack_q4_0x16(const void* src, int64_t N, int64_t K, int64_t row_bytes, uint8_t* dst);

// Blocks [b0, b0 + nb) of row n of w (Q4_0x16) as Q4_0 blocks at dst (18 · nb bytes).
void q4_0x16_row(const WeightMatrix& w, int64_t n, int64_t b0, int64_t nb, uint8_t* dst);

// Where the elements of row n from k0 on lie in a format to_f32 / dequantize_row read (any weight type): the row
// itself, or (Q4_0x16) n_k elements' Q4_0 blocks copied to tmp (room for dtype_nbytes(Q4_0, n_k)). `t` is that
// format.
struct QuantRow {
  const uint8_t* p;
  DType t;
};
QuantRow quant_row(const WeightMatrix& w, int64_t n, int64_t k0, int64_t n_k, uint8_t* tmp);

// y[M, n0:n1) = x · w[n0:n1)ᵀ (+ bias) on the calling thread, n0 a multiple of 16, n1 too or N; a row's result
// does not depend on n0, n1, M or the other rows of x. AVX-512 VNNI only (q4_0x16_runs).
// x rounded to int8 (quantize_q8): a Q8RowsFn.
void q4_0x16_rows_q8(const Q8Acts& x, int64_t M, const WeightMatrix& w, const float* bias, float* y, int64_t n0,
                     int64_t n1);
// x float32; xs its sums of 32 (group_sums).
void q4_0x16_rows_f32(const float* x, const float* xs, int64_t M, const WeightMatrix& w, const float* bias, float* y,
                      int64_t n0, int64_t n1);

}  // namespace linfer::kernels::quant
