#include "kernels/reference/mla.h"

#include <vector>

#include "kernels/reference/attention.h"
#include "kernels/reference/matmul.h"

namespace linfer::kernels::ref {

void mla_attention(const float* q, const MlaDims& d, const TensorView& w_kv_b, std::span<const int64_t> offsets,
                   std::span<const MlaCache> caches, float* o) {
  const int64_t H = d.n_heads, r = d.kv_lora_rank, dn = d.qk_nope_dim, dr = d.qk_rope_dim, dv = d.v_dim;
  const int64_t dq = dn + dr, row = r + dr;
  // W_kv_b as float32: [H, dn + dv, r]
  std::vector<float> wkv(size_t(H * (dn + dv) * r));
  for (int64_t i = 0; i < H * (dn + dv); ++i) weight_row(w_kv_b, i, wkv.data() + i * r);

  for (size_t s = 0; s + 1 < offsets.size(); ++s) {
    const MlaCache& cache = caches[s];
    const int64_t n = offsets[s + 1] - offsets[s], past = cache.len - n;
    // expanded keys [len, H, dq] and values [len, H, dv]
    std::vector<float> k(size_t(cache.len * H * dq)), v(size_t(cache.len * H * dv));
    for (int64_t p = 0; p < cache.len; ++p) {
      const float* c = cache.rows + p * row;
      for (int64_t h = 0; h < H; ++h) {
        for (int64_t i = 0; i < dn + dv; ++i) {
          const float* wr = wkv.data() + (h * (dn + dv) + i) * r;
          double acc = 0;
          for (int64_t j = 0; j < r; ++j) acc += double(wr[j]) * c[j];
          if (i < dn) k[(p * H + h) * dq + i] = float(acc);
          else v[(p * H + h) * dv + i - dn] = float(acc);
        }
        for (int64_t i = 0; i < dr; ++i) k[(p * H + h) * dq + dn + i] = c[r + i];
      }
    }
    for (int64_t j = 0; j < n; ++j) {
      const int64_t t = offsets[s] + j;
      for (int64_t h = 0; h < H; ++h) {
        attend_one(
            q + (t * H + h) * dq, dq, dv, d.scale, 0, past + j, [&](int64_t p) { return k.data() + (p * H + h) * dq; },
            [&](int64_t p) { return v.data() + (p * H + h) * dv; }, o + (t * H + h) * dv);
      }
    }
  }
}

}  // namespace linfer::kernels::ref
