#pragma once
// Multi-head latent attention (Kimi Linear's NoPE MLA, DeepSeek-style). Per token the cache keeps
// one row of r + d_r float32 values: the latent c (kv_a_proj_with_mqa's first r outputs, after
// kv_a_layernorm) then the shared key part k_r (its last d_r outputs; not rotated: NoPE). That is
// the row kv_a_proj_with_mqa produces, so the model appends it as is (after the norm of c).
//
// kv_b_proj (w_kv_b, [H·(d_n + d_v), r], as stored: f32 / bf16 / f16) holds per head h the d_n
// rows of W_k[h] (k_nope = W_k[h] · c) then the d_v rows of W_v[h] (v = W_v[h] · c), the order in
// which transformers splits kv_b_proj's output ([..., H, d_n + d_v] → k_nope, value_states).
// Per head: k = [k_nope, k_r], q = [q_nope, q_r], o = softmax(scale · q·kᵀ) · v, causal.
//
// Two forms, equal up to float32 rounding:
//   expanded: build k_nope, v for every cached row, then plain attention (cheaper for long prefill);
//   absorbed: q̃ = W_k[h]ᵀ q_nope, scores = q̃·c + q_r·k_r over the latent, o = W_v[h] · Σ p·c
//             (cheaper for decode: touches the cache once, r + d_r values per token). q̃ is a plain
//             matmul over W_k[h]ᵀ, which the model keeps beside kv_b_proj (mla_keys_transposed, made
//             once at load: transposing per call cost a Kimi decode step half of its MLA time).
// mla_attention picks the cheaper form per sequence.
//
//   MlaDims d{.n_heads = 32, .kv_lora_rank = 512, .qk_nope_dim = 128, .qk_rope_dim = 64,
//                  .v_dim = 128, .scale = 1.0f / std::sqrt(192.0f)};
//   Tensor k_t = mla_keys_transposed(w_kv_b, d);   // once, at load
//   MlaCache c{latent_rows, len};            // this call's tokens already appended
//   mla_attention(q, d, {w_kv_b, k_t}, offsets, {&c, 1}, o);
//
// Thread-safety: reentrant; work runs on the global thread pool.

#include <cstdint>
#include <span>

#include "linfer/core/cpu_features.h"
#include "linfer/core/tensor.h"

namespace linfer::kernels {

struct MlaDims {
  int64_t n_heads = 0;       // H
  int64_t kv_lora_rank = 0;  // r
  int64_t qk_nope_dim = 0;   // d_n
  int64_t qk_rope_dim = 0;   // d_r
  int64_t v_dim = 0;         // d_v
  float scale = 0.0f;        // Kimi: (d_n + d_r)^-0.5
};

// One sequence's latent cache, this call's new tokens already appended.
struct MlaCache {
  const float* rows = nullptr;  // [len, r + d_r]: c then k_r
  int64_t len = 0;
};

// kv_b_proj in the two forms' layouts.
struct MlaKv {
  TensorView kv_b;  // [H·(d_n + d_v), r] as stored (f32 / bf16 / f16 / quantized)
  TensorView k_t;   // [H·r, d_n]: W_k[h]ᵀ of head h at rows [h·r, (h+1)·r) (mla_keys_transposed)
};

// W_k[h]ᵀ of every head from kv_b_proj: [H·r, d_n] in kv_b's dtype (float32 for a quantized kv_b).
Tensor mla_keys_transposed(const TensorView& w_kv_b, const MlaDims& d);

// Packed sequences as in attention.h: sequence i owns queries [offsets[i], offsets[i+1]), query j
// at position caches[i].len − n_i + j.
void mla_attention(const float* q,  // [T, H, d_n + d_r], nope part first
                   const MlaDims& d, const MlaKv& w, std::span<const int64_t> offsets,
                   std::span<const MlaCache> caches,
                   float* o,  // [T, H, d_v]
                   SimdLevel level = simd_level());

void mla_attention_expanded(const float* q, const MlaDims& d, const MlaKv& w, std::span<const int64_t> offsets,
                            std::span<const MlaCache> caches, float* o, SimdLevel level = simd_level());
void mla_attention_absorbed(const float* q, const MlaDims& d, const MlaKv& w, std::span<const int64_t> offsets,
                            std::span<const MlaCache> caches, float* o, SimdLevel level = simd_level());

}  // namespace linfer::kernels
