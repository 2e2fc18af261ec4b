#include "kernels/cpu/mla.h"

#include <cstring>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/matmul.h"
#include "linfer/core/error.h"
#include "linfer/core/thread_pool.h"

namespace linfer::kernels {
namespace {

void check(const MlaDims& d, const MlaKv& kv, std::span<const int64_t> offsets, std::span<const MlaCache> caches) {
  const TensorView& w = kv.kv_b;
  LINFER_CHECK(d.n_heads > 0 && d.kv_lora_rank > 0 && d.qk_nope_dim > 0 && d.qk_rope_dim >= 0 && d.v_dim > 0,
               "mla: bad dims (heads {}, rank {}, nope {}, rope {}, v {})", d.n_heads, d.kv_lora_rank, d.qk_nope_dim,
               d.qk_rope_dim, d.v_dim);
  LINFER_CHECK(w.ndim() == 2 && w.dim(0) == d.n_heads * (d.qk_nope_dim + d.v_dim) && w.dim(1) == d.kv_lora_rank,
               "mla: kv_b_proj must be [{}, {}] (heads × (nope + v), rank), got {}",
               d.n_heads * (d.qk_nope_dim + d.v_dim), d.kv_lora_rank, shape_str(w.shape()));
  LINFER_CHECK(w.contiguous(), "mla: kv_b_proj must be contiguous");
  LINFER_CHECK(kv.k_t.ndim() == 2 && kv.k_t.dim(0) == d.n_heads * d.kv_lora_rank && kv.k_t.dim(1) == d.qk_nope_dim,
               "mla: the transposed keys must be [{}, {}] (heads × rank, nope), got {}", d.n_heads * d.kv_lora_rank,
               d.qk_nope_dim, shape_str(kv.k_t.shape()));
  LINFER_CHECK(caches.size() + 1 == offsets.size(), "mla: {} caches for {} sequences", caches.size(),
               offsets.size() - 1);
  for (size_t s = 0; s < caches.size(); ++s)
    LINFER_CHECK(caches[s].len >= offsets[s + 1] - offsets[s], "mla: sequence {} has {} new tokens but {} cached rows",
                 s, offsets[s + 1] - offsets[s], caches[s].len);
}

// Rows [row0, row0 + n) of kv_b_proj: W_k[h] (n = d_n) or W_v[h] (n = d_v).
TensorView head_rows(const TensorView& w, int64_t row0, int64_t n) { return w.slice0(row0, row0 + n); }

// Floats per cached row and per query row.
int64_t cache_row(const MlaDims& d) { return d.kv_lora_rank + d.qk_rope_dim; }
int64_t q_row(const MlaDims& d) { return d.qk_nope_dim + d.qk_rope_dim; }

}  // namespace

MlaCost mla_cost(const MlaDims& d, int64_t n, int64_t len) {
  const double H = double(d.n_heads), r = double(d.kv_lora_rank), dn = double(d.qk_nope_dim), dv = double(d.v_dim);
  // query-key pairs under the causal mask: query j of n sees len - n + j + 1 rows
  const double pairs = double(n) * double(len) - double(n) * double(n - 1) / 2;
  MlaCost c;
  c.expanded = double(len) * H * (dn + dv) * r +                              // K_nope, V = c · kv_bᵀ
               kMlaExpandedAttentionWeight * pairs * H * double(q_row(d) + d.v_dim);  // q·k, p·v
  c.absorbed = double(n) * H * dn * r +                                      // q̃ = W_k[h]ᵀ q_nope
               pairs * H * double(cache_row(d) + d.kv_lora_rank) +           // q̃·[c, k_r], p·c
               double(n) * H * r * dv;                                       // o = W_v[h] · ctx
  c.expanded_bytes = len * (d.kv_lora_rank + d.n_heads * (d.qk_nope_dim + d.v_dim) + d.n_heads * (q_row(d) + d.v_dim)) *
                     int64_t(sizeof(float));  // c, kv, K, V
  return c;
}

MlaForm mla_form(const MlaDims& d, int64_t n, int64_t len) {
  const MlaCost c = mla_cost(d, n, len);
  return c.expanded < c.absorbed && c.expanded_bytes <= kMlaExpandedScratchCap ? MlaForm::Expanded : MlaForm::Absorbed;
}

Tensor mla_keys_transposed(const TensorView& w_kv_b, const MlaDims& d) {
  const int64_t H = d.n_heads, r = d.kv_lora_rank, dn = d.qk_nope_dim, dv = d.v_dim;
  LINFER_CHECK(w_kv_b.ndim() == 2 && w_kv_b.dim(0) == H * (dn + dv) && w_kv_b.dim(1) == r && w_kv_b.contiguous(),
               "mla: kv_b_proj must be a contiguous [{}, {}] (heads × (nope + v), rank), got {}", H * (dn + dv), r,
               shape_str(w_kv_b.shape()));
  const DType dt = is_quantized(w_kv_b.dtype()) ? DType::F32 : w_kv_b.dtype();
  const size_t es = dtype_size(dt);
  Tensor out = Tensor::zeros({H * r, dn}, dt);
  std::vector<std::byte> wk(size_t(dn * r) * es);  // W_k[h] [d_n, r] in dt
  for (int64_t h = 0; h < H; ++h) {
    const TensorView rows = head_rows(w_kv_b, h * (dn + dv), dn);
    if (dt == w_kv_b.dtype()) std::memcpy(wk.data(), rows.data(), wk.size());
    else to_f32(w_kv_b.dtype(), rows.data(), reinterpret_cast<float*>(wk.data()), size_t(dn * r));
    auto* dst = static_cast<std::byte*>(out.view().data()) + size_t(h * r * dn) * es;
    for (int64_t i = 0; i < dn; ++i)
      for (int64_t j = 0; j < r; ++j) std::memcpy(dst + size_t(j * dn + i) * es, wk.data() + size_t(i * r + j) * es, es);
  }
  return out;
}

void mla_attention_expanded(const float* q, const MlaDims& d, const MlaKv& w, std::span<const int64_t> offsets,
                            std::span<const MlaCache> caches, float* o, SimdLevel level) {
  check(d, w, offsets, caches);
  const int64_t H = d.n_heads, r = d.kv_lora_rank, dn = d.qk_nope_dim, dr = d.qk_rope_dim, dv = d.v_dim;
  const int64_t dq = q_row(d), row = cache_row(d);
  for (size_t s = 0; s < caches.size(); ++s) {
    const MlaCache& cache = caches[s];
    const int64_t len = cache.len;
    std::vector<float> c(size_t(len * r)), kv(size_t(len * H * (dn + dv)));
    for (int64_t p = 0; p < len; ++p) std::memcpy(c.data() + p * r, cache.rows + p * row, size_t(r) * 4);
    matmul(c.data(), len, w.kv_b, nullptr, kv.data(), level);  // [len, H, d_n + d_v]
    std::vector<float> k(size_t(len * H * dq)), v(size_t(len * H * dv));
    parallel_for(0, len, [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p)
        for (int64_t h = 0; h < H; ++h) {
          const float* src = kv.data() + (p * H + h) * (dn + dv);
          std::memcpy(k.data() + (p * H + h) * dq, src, size_t(dn) * 4);
          std::memcpy(k.data() + (p * H + h) * dq + dn, cache.rows + p * row + r, size_t(dr) * 4);
          std::memcpy(v.data() + (p * H + h) * dv, src + dn, size_t(dv) * 4);
        }
    }, 64);
    const int64_t t0 = offsets[s], n = offsets[s + 1] - t0;
    const std::vector<int64_t> one = {0, n};
    const KvCache kc{k.data(), v.data(), len};
    attention_prefill(q + t0 * H * dq, {H, H, dq, dv, d.scale}, one, {&kc, 1}, o + t0 * H * dv, level);
  }
}

void mla_attention_absorbed(const float* q, const MlaDims& d, const MlaKv& w, std::span<const int64_t> offsets,
                            std::span<const MlaCache> caches, float* o, SimdLevel level) {
  check(d, w, offsets, caches);
  const int64_t H = d.n_heads, r = d.kv_lora_rank, dn = d.qk_nope_dim, dr = d.qk_rope_dim, dv = d.v_dim;
  const int64_t dq = q_row(d), row = cache_row(d), T = offsets.back();
  // q̃[t, h] = [W_k[h]ᵀ q_nope[t, h], q_r[t, h]]: queries over the latent row [r + d_r]
  std::vector<float> q_abs(size_t(T * H * row)), ctx(size_t(T * H * r));
  parallel_for(0, H, [&](int64_t h0, int64_t h1) {
    std::vector<float> qh(size_t(T * dn)), out(size_t(T * r));
    for (int64_t h = h0; h < h1; ++h) {
      for (int64_t t = 0; t < T; ++t) std::memcpy(qh.data() + t * dn, q + (t * H + h) * dq, size_t(dn) * 4);
      matmul(qh.data(), T, head_rows(w.k_t, h * r, r), nullptr, out.data(), level);
      for (int64_t t = 0; t < T; ++t) {
        float* dst = q_abs.data() + (t * H + h) * row;
        std::memcpy(dst, out.data() + t * r, size_t(r) * 4);
        std::memcpy(dst + r, q + (t * H + h) * dq + dn, size_t(dr) * 4);
      }
    }
  });
  // MQA over the latent: one KV head, keys = whole rows [c, k_r], values = c
  std::vector<KvCache> kv(caches.size());
  for (size_t s = 0; s < caches.size(); ++s) kv[s] = {caches[s].rows, caches[s].rows, caches[s].len, row, row};
  attention_prefill(q_abs.data(), {H, 1, row, r, d.scale}, offsets, kv, ctx.data(), level);
  // o[t, h] = W_v[h] · ctx[t, h]
  parallel_for(0, H, [&](int64_t h0, int64_t h1) {
    std::vector<float> ch(size_t(T * r)), out(size_t(T * dv));
    for (int64_t h = h0; h < h1; ++h) {
      for (int64_t t = 0; t < T; ++t) std::memcpy(ch.data() + t * r, ctx.data() + (t * H + h) * r, size_t(r) * 4);
      matmul(ch.data(), T, head_rows(w.kv_b, h * (dn + dv) + dn, dv), nullptr, out.data(), level);
      for (int64_t t = 0; t < T; ++t) std::memcpy(o + (t * H + h) * dv, out.data() + t * dv, size_t(dv) * 4);
    }
  });
}

void mla_attention(const float* q, const MlaDims& d, const MlaKv& w, std::span<const int64_t> offsets,
                   std::span<const MlaCache> caches, float* o, SimdLevel level) {
  check(d, w, offsets, caches);
  bool all_absorbed = true;
  for (size_t s = 0; s < caches.size(); ++s)
    all_absorbed = all_absorbed && mla_form(d, offsets[s + 1] - offsets[s], caches[s].len) == MlaForm::Absorbed;
  if (all_absorbed) return mla_attention_absorbed(q, d, w, offsets, caches, o, level);
  const int64_t dq = q_row(d), H = d.n_heads;
  for (size_t s = 0; s < caches.size(); ++s) {  // mixed batch: each sequence its own way
    const int64_t t0 = offsets[s], n = offsets[s + 1] - t0;
    const std::vector<int64_t> one = {0, n};
    auto form = mla_form(d, n, caches[s].len) == MlaForm::Absorbed ? mla_attention_absorbed : mla_attention_expanded;
    form(q + t0 * H * dq, d, w, one, caches.subspan(s, 1), o + t0 * H * d.v_dim, level);
  }
}

}  // namespace linfer::kernels
