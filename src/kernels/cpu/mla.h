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
// mla_attention picks the cheaper form per sequence by counting multiply-adds (mla_cost, mla_form).
// The expanded form's scratch is about 4·(r + H·(2·d_n + d_r + 2·d_v)) bytes per cached row (20 KiB
// at Kimi's shape, 320 MiB at 16K), the absorbed form's about 4·H·(2r + d_r) per new token; past
// kMlaExpandedScratchCap of expanded scratch the absorbed form runs whatever it costs.
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

// Cost of one sequence's call in each form, n new tokens over a cache of len rows (this call's
// included), in multiply-adds (float32 SIMD; the few softmax ops per score are left out):
//   expanded: len·H·(d_n + d_v)·r                   K_nope, V rebuilt from every cached row
//             + w · pairs·H·(d_n + d_r + d_v)       attention, pairs = n·len − n(n−1)/2 (causal)
//   absorbed: n·H·d_n·r + pairs·H·(2r + d_r) + n·H·r·d_v
// w = kMlaExpandedAttentionWeight: a multiply-add of the expanded form's attention (heads of d_n + d_r
// and d_v) took 1.75 times one of the rebuild GEMM or of the absorbed attention (heads of r + d_r and
// r) in these kernels (Zen 4, AVX-512, 2 threads, CPU time; docs/benchmarks.md "MLA form by cost").
// Over a cache much longer than the call the crossover is n* = r·(d_n + d_v) / (2r + d_r − w·(d_n +
// d_r + d_v)), whatever H and len: about 250 new tokens at Kimi Linear's r = 512, 128 / 64 / 128, so
// decode and chunks under 250 run absorbed, 512-token prefill chunks and whole prompts expanded.
struct MlaCost {
  double expanded = 0, absorbed = 0;  // multiply-adds, the expanded form's attention weighted by w
  int64_t expanded_bytes = 0;         // the expanded form's scratch: c, c · kv_bᵀ, K, V
};
inline constexpr double kMlaExpandedAttentionWeight = 1.75;
inline constexpr int64_t kMlaExpandedScratchCap = int64_t(1) << 30;  // bytes

enum class MlaForm { Expanded, Absorbed };

MlaCost mla_cost(const MlaDims& d, int64_t n, int64_t len);
// Expanded where it costs less and its scratch fits under kMlaExpandedScratchCap; else absorbed.
MlaForm mla_form(const MlaDims& d, int64_t n, int64_t len);

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
