#pragma once
// Internal: Q8_0, Q4_0, Q4_K and Q6_K weights with 16 rows interleaved (DType::Q8_0x16, Q4_0x16, Q4_Kx16,
// Q6_Kx16), the layout the CPU backend gives such matrices on CPUs with AVX-512 VNNI (backend/cpu_backend.cpp)
// so that one vpdpbusd multiplies 16 weight rows by 4 int8 activations at once and a vector lane is a weight
// row: no horizontal sums, one scale conversion per block for 16 rows (docs/quantization.md; decode at batch 8:
// 2.7-3.6x the int8 kernel on Q4_0's own rows, docs/benchmarks.md). Rows in groups of 16, the last group padded
// with zero rows (every byte 0, so every scale and value 0). Group g (rows 16g .. 16g + 15) starts at byte
// g · rows16_group_bytes(t, K) (a multiple of 64) and holds its K / block blocks in order, each:
//
//   Q4_0x16 and Q8_0x16, blocks of 32 elements, the 16 rows' scales of all blocks after all values (a group:
//   nb × V value bytes, then nb × 32 scale bytes, padded to 64):
//     values   block b at V b, V = 256 (Q4_0) or 512 (Q8_0): vectors of 64 bytes; in vector c, bytes 4i .. 4i + 3
//              are row i's stored bytes qs[4c .. 4c + 3]. Q4_0 (4 vectors): its own bytes, low nibbles elements
//              4c + j, high nibbles 16 + 4c + j (j < 4), each q + 8. Q8_0 (8 vectors): elements 4c + j, each q + 128
//              as an unsigned byte (the stored int8 with its top bit flipped), as vpdpbusd's unsigned operand;
//     scales   block b at V nb + 32 b: the 16 rows' fp16 d, row i's at 2i.
//   Q4_Kx16, 2368 bytes per block of 256 (Q4_K's 144 per row, plus 4 for the scales unpacked):
//     nibbles  at 0: 32 vectors of 64 bytes; in vector v, bytes 4i .. 4i + 3 are qs[4v .. 4v + 3] of row i
//              (Q4_K's bytes: vectors 8g .. 8g + 7 hold sub-block 2g in their low nibbles, 2g + 1 in their
//              high ones; byte j of vector 8g + c: elements 64g + 4c + j and 64g + 32 + 4c + j);
//     sc       at 2048 + 16 s: row i's 6-bit scale of sub-block s (s < 8) in byte i;
//     m        at 2176 + 16 s: the mins alike;
//     d, dmin  at 2304, 2336: the 16 rows' fp16 d, then dmin.
//   Q6_Kx16, blocks of 256, the scales of all blocks after all values (a group: nb × 3072 value bytes, then nb ×
//   288 scale bytes, padded to 64; Q6_K's 210 bytes per row and block):
//     values   block b at 3072 b: 32 vectors of ql (Q6_K's low 4 bits; in vector v, bytes 4i .. 4i + 3 are
//              ql[4v .. 4v + 3] of row i), then 16 vectors of qh (the high 2 bits, alike);
//     scales   block b at 3072 nb + 288 b: row i's int8 scale of sub-block s (s < 16) at 16 s + i, then the 16
//              rows' fp16 d at 256.
//
// A WeightMatrix of these types has data at group 0, N and K as the matrix it came from, ld = K. Two kernels
// read each (rows16_avx512vnni.h: blocks of 32 in rows16_avx512vnni.cpp, the K-quants in
// rows16_kquants_avx512vnni.cpp): x rounded to int8 (QuantActivations::Q8) and float32 x. Everything else that
// reads these weights (the prefill GEMMs' dequantizers, embedding rows, the scalar path) takes a row back in its
// own format (quant_row). Products split their rows at multiples of 16 (or N).

#include <cstdint>
#include <optional>

#include "kernels/cpu/matmul_simd.h"
#include "kernels/cpu/quant/q8_activations.h"
#include "linfer/core/cpu_features.h"

namespace linfer::kernels::quant {

constexpr int64_t kRows16 = 16;

// The interleaved type of a stored one (Q8_0 -> Q8_0x16, Q4_0 -> Q4_0x16, Q4_K -> Q4_Kx16, Q6_K -> Q6_Kx16), and
// the way back.
std::optional<DType> rows16_type(DType stored);
DType rows16_stored(DType t16);

constexpr int64_t rows16_groups(int64_t N) { return (N + kRows16 - 1) / kRows16; }
int64_t rows16_group_bytes(DType t16, int64_t K);
inline int64_t rows16_bytes(DType t16, int64_t N, int64_t K) { return rows16_groups(N) * rows16_group_bytes(t16, K); }

// Whether the CPU has the kernels (AVX-512 F / BW / VL / VNNI) and `level` is the avx512 path: where the CPU
// backend repacks Q8_0, Q4_0, Q4_K and Q6_K weights.
bool rows16_runs(SimdLevel level);

// Rows [N, K] of type rows16_stored(t16) at src, row n at src + n · row_bytes -> dst (rows16_bytes(t16, N, K)
// bytes). K whole blocks; parallel over groups on the thread pool.
void repack_rows16(DType t16, const void* src, int64_t N, int64_t K, int64_t row_bytes, uint8_t* dst);

// Blocks [b0, b0 + nb) of row n of w (interleaved) in the stored format at dst (nb · its block bytes).
void rows16_row(const WeightMatrix& w, int64_t n, int64_t b0, int64_t nb, uint8_t* dst);

// Where the elements of row n from k0 on lie in a format to_f32 / dequantize_row read (any weight type): the row
// itself, or (interleaved types) n_k elements' blocks in the stored format copied to tmp (room for
// dtype_nbytes(rows16_stored(w.dtype), n_k)). `t` is that format.
struct QuantRow {
  const uint8_t* p;
  DType t;
};
QuantRow quant_row(const WeightMatrix& w, int64_t n, int64_t k0, int64_t n_k, uint8_t* tmp);
// The room quant_row needs at tmp for n_k elements of a weight of type t (0 where it uses none).
inline size_t quant_row_bytes(DType t, int64_t n_k) { return is_rows16(t) ? dtype_nbytes(rows16_stored(t), n_k) : 0; }

// y[M, n0:n1) = x · w[n0:n1)ᵀ (+ bias) on the calling thread for an interleaved w, n0 a multiple of 16, n1 too or
// N; a row's result does not depend on n0, n1, M or the other rows of x. AVX-512 VNNI only (rows16_runs).
// x rounded to int8 (quantize_q8): a Q8RowsFn.
void rows16_q8(const Q8Acts& x, int64_t M, const WeightMatrix& w, const float* bias, float* y, int64_t n0, int64_t n1);
// x float32; xs its sums of 32 (group_sums).
void rows16_f32(const float* x, const float* xs, int64_t M, const WeightMatrix& w, const float* bias, float* y,
                int64_t n0, int64_t n1);

}  // namespace linfer::kernels::quant
