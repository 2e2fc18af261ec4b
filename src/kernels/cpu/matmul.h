#pragma once
// Linear layers and embedding lookup over weights as stored in the checkpoint (f32 / bf16 / f16, and the
// block-quantized types of core/quant_formats.h for matmul). Activations are float32; bf16 / f16 and
// quantized weights are converted to float32 in registers, never copied.
//
//   TensorView w = weights.get("model.layers.0.mlp.down_proj.weight");   // [N, K] bf16
//   matmul(x, M, w, /*bias=*/nullptr, y);                            // y[M, N] = x · wᵀ
//
// Small M (decode: one row per sequence) is the GEMV (streams W once for all rows, bandwidth-bound);
// more rows a cache-blocked GEMM. Both parallelise over N (and M) on the global thread pool.
// Thread-safety: reentrant; calls from different threads serialise on the pool (core/thread_pool.h).

#include <cstdint>
#include <span>

#include "linfer/core/cpu_features.h"
#include "linfer/core/quant_activations.h"
#include "linfer/core/tensor.h"

namespace linfer::kernels {

// y[M, N] = x[M, K] · wᵀ (+ bias[N]). w: 2-D [N, K] with contiguous rows (row stride may exceed K,
// e.g. a column slice is not allowed but a row slice is), dtype f32 / bf16 / f16 or block-quantized (K
// and the row stride whole blocks). bias may be null. x and y must not overlap. Throws linfer::Error on
// a bad dtype or shape.
void matmul(const float* x,  // [M, K]
            int64_t M, const TensorView& w, const float* bias,
            float* y,  // [M, N]
            SimdLevel level = simd_level());

// One product of matmul_many, with matmul's arguments.
struct MatmulArgs {
  const float* x;       // [M, K]
  int64_t M;
  const TensorView* w;  // [N, K]
  const float* bias;    // [N] or null
  float* y;             // [M, N]
};

// Independent products (no y is another's x) in one parallel region: a layer's projections of the
// same input, a MoE layer's experts. Decode-sized products (the GEMV, float and block-quantized weights
// alike) share one split of all their weight rows over the pool, balanced by bytes, so the pool wakes
// once instead of once per product;
// the rest run one by one as matmul(). Results are bit-identical to one matmul() per product.
//
//   const MatmulArgs qkv[] = {{x, 1, &wq, nullptr, q}, {x, 1, &wk, nullptr, k}, {x, 1, &wv, nullptr, v}};
//   matmul_many(qkv);
void matmul_many(std::span<const MatmulArgs> products, SimdLevel level = simd_level());

// What an activations setting (linfer/core/quant_activations.h) changes on the `level` path of this CPU for
// weights of the given types: each rounding needs its kernel (bf16 prefill: the bf16 GEMM, avx512 path with
// AVX-512 BF16, for BF16 or block-quantized weights; bf16 decode: the bf16 GEMV, the same path, for BF16 weights;
// int8 decode: an int8 kernel for one of the types, x86-64 with AVX2); without it the products stay float32.
struct ActivationRounding {
  bool bf16_prefill = false, bf16_decode = false, int8_decode = false;
};
ActivationRounding activation_rounding(QuantActivations a, std::span<const DType> weight_types,
                                       SimdLevel level = simd_level());

// out[i, :] = float32(table[ids[i], :]). table: 2-D [V, D], f32 / bf16 / f16. Throws linfer::Error
// naming the id when ids[i] is outside [0, V).
void embedding(const TensorView& table, std::span<const int32_t> ids,
               float* out,  // [ids.size(), D]
               SimdLevel level = simd_level());

}  // namespace linfer::kernels
