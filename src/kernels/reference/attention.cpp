#include "kernels/reference/attention.h"

#include <algorithm>
#include <vector>

namespace linfer::kernels::ref {

void attention_prefill(const float* q, const AttentionDims& d, std::span<const int64_t> offsets,
                       std::span<const KvCache> kv, float* o) {
  const int64_t Hq = d.n_heads, Hkv = d.n_kv_heads, D = d.qk_dim, Dv = d.v_dim, group = Hq / Hkv;
  for (size_t s = 0; s + 1 < offsets.size(); ++s) {
    const int64_t n = offsets[s + 1] - offsets[s], past = kv[s].len - n;
    for (int64_t j = 0; j < n; ++j) {
      const int64_t t = offsets[s] + j;
      for (int64_t h = 0; h < Hq; ++h) {
        const int64_t g = h / group;
        attend_one(
            q + (t * Hq + h) * D, D, Dv, d.scale, 0, past + j, [&](int64_t p) { return kv[s].k + (p * Hkv + g) * D; },
            [&](int64_t p) { return kv[s].v + (p * Hkv + g) * Dv; }, o + (t * Hq + h) * Dv);
      }
    }
  }
}

void attention_decode(const float* q, const AttentionDims& d, std::span<const KvCache> kv, float* o) {
  std::vector<int64_t> offsets(kv.size() + 1);
  for (size_t i = 0; i <= kv.size(); ++i) offsets[i] = int64_t(i);
  ref::attention_prefill(q, d, offsets, kv, o);
}

void sliding_attention_prefill(const float* q, const float* k_new, const float* v_new, const AttentionDims& d,
                               int64_t window, std::span<const int64_t> offsets, std::span<const KvRing> rings,
                               float* o) {
  const int64_t Hq = d.n_heads, Hkv = d.n_kv_heads, D = d.qk_dim, Dv = d.v_dim, group = Hq / Hkv;
  for (size_t s = 0; s + 1 < offsets.size(); ++s) {
    const KvRing& ring = rings[s];
    const int64_t t0 = offsets[s], n = offsets[s + 1] - t0;
    for (int64_t j = 0; j < n; ++j) {
      const int64_t pos = ring.past + j, t = t0 + j;
      for (int64_t h = 0; h < Hq; ++h) {
        const int64_t g = h / group;
        auto key = [&](int64_t p) {
          return p >= ring.past ? k_new + ((t0 + p - ring.past) * Hkv + g) * D
                                : ring.k + ((p % ring.capacity) * Hkv + g) * D;
        };
        auto value = [&](int64_t p) {
          return p >= ring.past ? v_new + ((t0 + p - ring.past) * Hkv + g) * Dv
                                : ring.v + ((p % ring.capacity) * Hkv + g) * Dv;
        };
        attend_one(q + (t * Hq + h) * D, D, Dv, d.scale, std::max<int64_t>(0, pos - window + 1), pos, key, value,
                   o + (t * Hq + h) * Dv);
      }
    }
  }
}

void sliding_attention_decode(const float* q, const float* k_new, const float* v_new, const AttentionDims& d,
                              int64_t window, std::span<const KvRing> rings, float* o) {
  std::vector<int64_t> offsets(rings.size() + 1);
  for (size_t i = 0; i <= rings.size(); ++i) offsets[i] = int64_t(i);
  ref::sliding_attention_prefill(q, k_new, v_new, d, window, offsets, rings, o);
}

}  // namespace linfer::kernels::ref
