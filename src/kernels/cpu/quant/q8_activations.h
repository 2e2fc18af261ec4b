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
  const int8_t* q;    // [M][K]       the integers, in x's own order
  const float* d;     // [M][K / 32]  the scale of each run of 32
  const int32_t* s4;  // [M][K / 4]   sums of q over each 4 consecutive elements (formats whose integers carry
                      //              an offset: Q4_0's 8, Q6_K's 32, subtracted as offset · these)
  const float* gs;    // [M][K / 32]  d · (sum of q) per run of 32: the sum of the rounded x (the K-quants' mins)
};

// Rounds x [M, K] into q [M, K], d [M, K / 32], s4 [M, K / 4] and gs [M, K / 32] (Q8Acts has what each holds).
void quantize_q8(const float* x, int64_t M, int64_t K, int8_t* q, float* d, int32_t* s4, float* gs);

}  // namespace linfer::kernels::quant
