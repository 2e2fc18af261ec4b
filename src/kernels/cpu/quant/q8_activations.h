#pragma once
// Internal: activations rounded to int8 per run of 32 (linfer/core/quant_activations.h, QuantActivations::Q8),
// the x side of the int8 quantized-weight kernels (qmatmul_q8.h; x86-64 only, AVX2). x ≈ d · q within each run
// of 32:
// d = max |x| / 127, q = round(x / d) in [-127, 127] (an all-zero run: d = 0; a run holding a NaN or an
// infinity: d = NaN, so the products that read it come out NaN, as they would in float32).

#include <cstdint>

namespace linfer::kernels::quant {

// One product's rounded rows of x [M, K] (K a multiple of 32), row after row.
struct Q8Acts {
  // Elements from one row of q to the next: K and a cache line (rows exactly K apart share L1 sets when K is
  // a multiple of 2048, and a kernel reading 8 rows at once evicts its own).
  int64_t ld;
  const int8_t* q;    // [M][ld]      the integers, in x's own order
  const float* d;     // [M][K / 32]  the scale of each run of 32
  // Q4_0's offset 8 as x's share of each lane of 4 products (added to the lane as an integer): -Σ q over the
  // lane's run of 32 (8 lanes: -8 Σ q).
  const int32_t* off_q4_0;  // [M][ld / 4]
  const float* gs16;  // [M][K / 16]  d · (sum of q) per 16 elements (Q6_K's offset 32, per sub-block)
  const float* gs;    // [M][K / 32]  d · (sum of q) per run of 32: the sum of the rounded x (the K-quants' mins)
};

// x's row stride in Q8Acts for rows of K elements.
constexpr int64_t q8_ld(int64_t K) { return K + 64; }

// Rounds x [M, K] into q [M, q8_ld(K)], d [M, K / 32], off_q4_0 [M, q8_ld(K) / 4], gs16 [M, K / 16] and gs
// [M, K / 32] (Q8Acts has what each holds).
void quantize_q8(const float* x, int64_t M, int64_t K, int8_t* q, float* d, int32_t* off_q4_0, float* gs16,
                 float* gs);

}  // namespace linfer::kernels::quant
