#pragma once
// Softmax attention over float32 KV caches: causal, grouped-query (GQA), q/k head dim may differ
// from the v head dim. Online softmax in float32 (running max, rescaled sums), so any cache length
// is stable. Query head h reads KV head h / (n_heads / n_kv_heads), as transformers' repeat_kv.
//
// Full attention: the caller appends the new tokens' K/V to the sequence's cache first, then
// attends; query j of a sequence with n new tokens and a cache of len rows sits at position
// len − n + j and sees rows [0, len − n + j].
//
//   AttentionDims d{.n_heads = 16, .n_kv_heads = 2, .qk_dim = 256, .v_dim = 256,
//                        .scale = 1.0f / 16.0f};
//   KvCache kv{k_cache, v_cache, len};
//   attention_prefill(q, d, offsets, {&kv, 1}, o);
//
// Sliding window W (transformers' sliding_window: query p sees keys p − W < j <= p, W keys
// counting itself) keeps a ring of `capacity` >= W − 1 rows per sequence, row of token t at
// t % capacity. Unlike full attention, the caller attends with the ring as it was *before* this
// call plus the new K/V, then writes the new rows with ring_write (writing first would overwrite
// keys that earlier queries of a multi-token prefill still need).
//
// Thread-safety: reentrant; work runs on the global thread pool.

#include <cstdint>
#include <span>

#include "linfer/core/cpu_features.h"

namespace linfer::kernels {

struct AttentionDims {
  int64_t n_heads = 0;     // Hq
  int64_t n_kv_heads = 0;  // Hkv; n_heads % n_kv_heads == 0
  int64_t qk_dim = 0;      // D, head dim of q and k
  int64_t v_dim = 0;       // Dv, head dim of v and of the output
  float scale = 0.0f;      // softmax scale, usually 1 / sqrt(D)
};

// One sequence's full-attention cache, this call's new tokens already appended.
struct KvCache {
  const float* k = nullptr;  // [len, Hkv, D]
  const float* v = nullptr;  // [len, Hkv, Dv]
  int64_t len = 0;
  // Floats between consecutive rows; 0 means dense (Hkv·D, Hkv·Dv). Lets k and v be views into one
  // wider row, e.g. MLA's latent cache [len, r + d_r] read as keys (all of it) and values (c).
  int64_t k_stride = 0, v_stride = 0;
};

// Packed sequences: sequence i owns queries [offsets[i], offsets[i+1]) and cache kv[i], whose len
// must be at least its query count.
void attention_prefill(const float* q,  // [T, Hq, D]
                       const AttentionDims& d, std::span<const int64_t> offsets,
                       std::span<const KvCache> kv,
                       float* o,  // [T, Hq, Dv]
                       SimdLevel level = simd_level());

// One query per sequence (B = kv.size()): the same as prefill with offsets 0, 1, ..., B, with work
// split along the cache so that one long sequence still uses every thread.
void attention_decode(const float* q,  // [B, Hq, D]
                      const AttentionDims& d, std::span<const KvCache> kv,
                      float* o,  // [B, Hq, Dv]
                      SimdLevel level = simd_level());

// One sequence's sliding-window ring, as it was before this call.
struct KvRing {
  float* k = nullptr;     // [capacity, Hkv, D], row of token t at t % capacity
  float* v = nullptr;     // [capacity, Hkv, Dv]
  int64_t capacity = 0;   // >= window − 1
  int64_t past = 0;       // tokens of the sequence before this call
};

// Sequence i's queries and new keys / values are rows [offsets[i], offsets[i+1]) of q, k_new,
// v_new; its query j sits at position rings[i].past + j.
void sliding_attention_prefill(const float* q,      // [T, Hq, D]
                               const float* k_new,  // [T, Hkv, D]
                               const float* v_new,  // [T, Hkv, Dv]
                               const AttentionDims& d, int64_t window, std::span<const int64_t> offsets,
                               std::span<const KvRing> rings,
                               float* o,  // [T, Hq, Dv]
                               SimdLevel level = simd_level());

// One token per sequence (B = rings.size()).
void sliding_attention_decode(const float* q,      // [B, Hq, D]
                              const float* k_new,  // [B, Hkv, D]
                              const float* v_new,  // [B, Hkv, Dv]
                              const AttentionDims& d, int64_t window, std::span<const KvRing> rings,
                              float* o,  // [B, Hq, Dv]
                              SimdLevel level = simd_level());

// Writes n new tokens (positions ring.past .. ring.past + n − 1) into the ring; only the last
// `capacity` of them survive. Does not change ring.past (the caller's token count does).
void ring_write(const KvRing& ring, const float* k_new,  // [n, Hkv, D]
                const float* v_new,                      // [n, Hkv, Dv]
                int64_t n, int64_t n_kv_heads, int64_t qk_dim, int64_t v_dim);

}  // namespace linfer::kernels
