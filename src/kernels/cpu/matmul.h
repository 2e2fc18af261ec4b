#pragma once
// Linear layers and embedding lookup over weights as stored in the checkpoint (f32 / bf16 / f16).
// Activations are float32; bf16 / f16 weights are converted to float32 in registers, never copied.
//
//   TensorView w = weights.get("model.layers.0.mlp.down_proj.weight");   // [N, K] bf16
//   matmul(x, M, w, /*bias=*/nullptr, y);                            // y[M, N] = x · wᵀ
//
// M == 1 is the decode GEMV (streams W once, bandwidth-bound); M > 1 a cache-blocked GEMM.
// Both parallelise over N (and M) on the global thread pool. Thread-safety: reentrant; calls
// from different threads serialise on the pool (core/thread_pool.h).

#include <cstdint>
#include <span>

#include "linfer/core/cpu_features.h"
#include "linfer/core/tensor.h"

namespace linfer::kernels {

// y[M, N] = x[M, K] · wᵀ (+ bias[N]). w: 2-D [N, K] with contiguous rows (row stride may exceed K,
// e.g. a column slice is not allowed but a row slice is), dtype f32 / bf16 / f16. bias may be null.
// x and y must not overlap. Throws linfer::Error on a bad dtype or shape.
void matmul(const float* x,  // [M, K]
            int64_t M, const TensorView& w, const float* bias,
            float* y,  // [M, N]
            SimdLevel level = simd_level());

// out[i, :] = float32(table[ids[i], :]). table: 2-D [V, D], f32 / bf16 / f16. Throws linfer::Error
// naming the id when ids[i] is outside [0, V).
void embedding(const TensorView& table, std::span<const int32_t> ids,
               float* out,  // [ids.size(), D]
               SimdLevel level = simd_level());

}  // namespace linfer::kernels
