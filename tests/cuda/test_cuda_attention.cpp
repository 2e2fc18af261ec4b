// Causal attention on the GPU (kernels/cuda/attention.h) against the float64 references: full attention
// (ref::attention_prefill: grouped-query heads, packed sequences mixing a fresh prefill, decode steps on
// long caches and a chunk appended to a cache, padded rows) and MLA's expanded form (ref::mla_attention:
// the key [k_nope | shared k_r] in two parts, the k_r part read from the latent cache with head stride 0) and
// its absorbed decode (per-head GEMVs through W_k[h]ᵀ and W_v[h] in one launch each, attention over the latent).
// Lengths cross the kernel's 128-key tiles; outputs are poisoned first and padding must stay untouched.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "cuda_test_util.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/cache_rows.h"
#include "kernels/cuda/dense.h"
#include "kernels/reference/attention.h"
#include "kernels/reference/mla.h"
#include "linfer/core/error.h"

using namespace linfer::kernels;
using namespace cuda_test;

namespace {

struct SeqShape {
  int64_t len, n;  // cache rows (this call's included), queries
};

struct AttnCase {
  const char* name;
  int64_t Hq, Hkv, D, Dv, pad;  // pad: extra floats at the end of every q, o, k and v row
  std::vector<SeqShape> seqs;
};

void PrintTo(const AttnCase& c, std::ostream* os) { *os << c.name; }

bool untouched(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return u == 0xFFFFFFFFu;
}

class CudaAttention : public ::testing::TestWithParam<AttnCase> {};

TEST_P(CudaAttention, MatchesReference) {
  LINFER_SKIP_WITHOUT_CUDA();
  const AttnCase& c = GetParam();
  std::mt19937 rng(uint32_t(std::hash<std::string>{}(c.name)));
  const int64_t Hq = c.Hq, Hkv = c.Hkv, D = c.D, Dv = c.Dv, S = int64_t(c.seqs.size());
  const int64_t q_ld = Hq * D + c.pad, o_ld = Hq * Dv + c.pad, k_ld = Hkv * D + c.pad, v_ld = Hkv * Dv + c.pad;
  std::vector<int64_t> offsets{0}, cache_at{0};
  int64_t max_n = 0;
  for (const auto& s : c.seqs) {
    offsets.push_back(offsets.back() + s.n);
    cache_at.push_back(cache_at.back() + s.len);
    max_n = std::max(max_n, s.n);
  }
  const int64_t T = offsets.back(), rows = cache_at.back();
  const auto q = normal(rng, T * q_ld), k = normal(rng, rows * k_ld), v = normal(rng, rows * v_ld);

  // The reference reads dense rows: copy each sequence's cache and the queries without their padding.
  std::vector<float> qd(T * Hq * D), kd(rows * Hkv * D), vd(rows * Hkv * Dv);
  for (int64_t t = 0; t < T; ++t) std::copy_n(q.data() + t * q_ld, Hq * D, qd.data() + t * Hq * D);
  for (int64_t r = 0; r < rows; ++r) {
    std::copy_n(k.data() + r * k_ld, Hkv * D, kd.data() + r * Hkv * D);
    std::copy_n(v.data() + r * v_ld, Hkv * Dv, vd.data() + r * Hkv * Dv);
  }
  std::vector<KvCache> caches;
  for (int64_t i = 0; i < S; ++i)
    caches.push_back({kd.data() + cache_at[i] * Hkv * D, vd.data() + cache_at[i] * Hkv * Dv, c.seqs[i].len});
  const float scale = 1.0f / std::sqrt(float(D));
  std::vector<float> ref_o(T * Hq * Dv);
  ref::attention_prefill(qd.data(), {.n_heads = Hq, .n_kv_heads = Hkv, .qk_dim = D, .v_dim = Dv, .scale = scale},
                         offsets, caches, ref_o.data());

  DeviceBuffer<float> d_q(q), d_k(k), d_v(v), d_o(T * o_ld);
  std::vector<cuda::AttnSeq> seqs;
  for (int64_t i = 0; i < S; ++i)
    seqs.push_back({.k1 = d_k.data() + cache_at[i] * k_ld, .k2 = nullptr, .v = d_v.data() + cache_at[i] * v_ld,
                    .len = c.seqs[i].len, .q0 = offsets[i], .n = c.seqs[i].n});
  std::vector<char> raw(seqs.size() * sizeof(cuda::AttnSeq));
  std::memcpy(raw.data(), seqs.data(), raw.size());
  DeviceBuffer<char> d_seqs(raw);
  const cuda::AttnLayout l{.Hq = Hq, .Hkv = Hkv, .D1 = D, .D2 = 0, .Dv = Dv, .q_ld = q_ld, .o_ld = o_ld,
                           .k1_row = k_ld, .k1_head = D, .k2_row = 0, .k2_head = 0, .v_row = v_ld, .v_head = Dv,
                           .scale = scale};
  // One block per (query, head, sequence), then the keys split into 3 and 7 ranges (flash-decoding; 7 leaves
  // some ranges of the short caches empty).
  for (const int64_t splits : {1, 3, 7}) {
    d_o.fill_bytes(0xFF);
    DeviceBuffer<float> partial(size_t(std::max<int64_t>(1, cuda::attention_partial_floats(l, S, max_n, splits))));
    cuda::attention(d_q.data(), reinterpret_cast<const cuda::AttnSeq*>(d_seqs.data()), S, max_n, l, d_o.data(),
                    nullptr, {.splits = splits, .partial = partial.data()});
    cuda::cuda_check(cudaDeviceSynchronize(), "attention");
    const auto o = d_o.download();
    std::vector<float> got(T * Hq * Dv);
    size_t pad_written = 0;
    for (int64_t t = 0; t < T; ++t) {
      std::copy_n(o.data() + t * o_ld, Hq * Dv, got.data() + t * Hq * Dv);
      for (int64_t p = Hq * Dv; p < o_ld; ++p) pad_written += !untouched(o[t * o_ld + p]);
    }
    const double err = rel_err(got, ref_o);
    EXPECT_LT(err, 2e-3) << c.name << ", " << splits << " key ranges";
    EXPECT_LT(err, 1e-5) << c.name << ", " << splits << " key ranges: float32 sums should land far under the 2e-3 bar";
    EXPECT_EQ(pad_written, 0u) << splits << " key ranges";
  }
}

const AttnCase kCases[] = {
    {"gqa_mixed", 4, 2, 33, 17, 3, {{1, 1}, {300, 300}, {257, 1}, {129, 5}}},
    {"mqa_wide_v", 6, 1, 64, 130, 0, {{70, 70}, {128, 1}, {129, 1}}},
    {"qwen3_next_heads", 16, 2, 256, 256, 4, {{200, 37}, {5, 5}}},
    {"widest_v", 2, 2, 20, 512, 1, {{140, 3}}},
    {"decode_batch", 8, 4, 128, 128, 0, {{1, 1}, {2, 1}, {3, 1}, {64, 1}, {513, 1}, {1000, 1}}},
};

INSTANTIATE_TEST_SUITE_P(Cuda, CudaAttention, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

// MLA as the CUDA backend runs it: kv = c · kv_bᵀ (float32, here on the host), then the kernel with key
// parts [k_nope (head stride d_n + d_v in kv) | k_r (latent cache, head stride 0)] and value v from kv.
TEST(CudaAttentionMla, ExpandedFormMatchesReference) {
  LINFER_SKIP_WITHOUT_CUDA();
  std::mt19937 rng(7);
  const int64_t H = 3, r = 40, dn = 24, dr = 9, dv = 20, L = r + dr, kv_row = H * (dn + dv);
  const std::vector<SeqShape> shapes{{150, 150}, {131, 1}, {9, 4}};
  const auto w = normal(rng, kv_row * r, 1.0f / std::sqrt(float(r)));
  const linfer::TensorView wv(const_cast<float*>(w.data()), linfer::DType::F32, {kv_row, r});
  std::vector<int64_t> offsets{0};
  for (const auto& s : shapes) offsets.push_back(offsets.back() + s.n);
  const int64_t T = offsets.back();
  const auto q = normal(rng, T * H * (dn + dr));
  const float scale = 1.0f / std::sqrt(float(dn + dr));
  const MlaDims md{.n_heads = H, .kv_lora_rank = r, .qk_nope_dim = dn, .qk_rope_dim = dr, .v_dim = dv, .scale = scale};
  const cuda::AttnLayout l{.Hq = H, .Hkv = H, .D1 = dn, .D2 = dr, .Dv = dv, .q_ld = H * (dn + dr), .o_ld = H * dv,
                           .k1_row = kv_row, .k1_head = dn + dv, .k2_row = L, .k2_head = 0, .v_row = kv_row,
                           .v_head = dn + dv, .scale = scale};
  std::vector<std::vector<float>> latents;
  std::vector<MlaCache> caches;
  for (const auto& s : shapes) latents.push_back(normal(rng, s.len * L));
  for (size_t i = 0; i < shapes.size(); ++i) caches.push_back({latents[i].data(), shapes[i].len});
  std::vector<float> ref_o(T * H * dv);
  ref::mla_attention(q.data(), md, wv, offsets, caches, ref_o.data());

  DeviceBuffer<float> d_q(q), d_o(T * H * dv);
  d_o.fill_bytes(0xFF);
  for (size_t i = 0; i < shapes.size(); ++i) {
    const int64_t len = shapes[i].len;
    std::vector<float> kv(len * kv_row);
    for (int64_t p = 0; p < len; ++p)
      for (int64_t o = 0; o < kv_row; ++o) {
        double a = 0;
        for (int64_t j = 0; j < r; ++j) a += double(latents[i][p * L + j]) * w[o * r + j];
        kv[p * kv_row + o] = float(a);
      }
    DeviceBuffer<float> d_kv(kv), d_lat(latents[i]);
    const cuda::AttnSeq s{.k1 = d_kv.data(), .k2 = d_lat.data() + r, .v = d_kv.data() + dn, .len = len,
                          .q0 = offsets[i], .n = shapes[i].n};
    std::vector<char> raw(sizeof s);
    std::memcpy(raw.data(), &s, sizeof s);
    DeviceBuffer<char> d_s(raw);
    cuda::attention(d_q.data(), reinterpret_cast<const cuda::AttnSeq*>(d_s.data()), 1, s.n, l, d_o.data(), nullptr);
    cuda::cuda_check(cudaDeviceSynchronize(), "mla attention");
  }
  const double err = rel_err(d_o.download(), ref_o);
  EXPECT_LT(err, 2e-3);
  EXPECT_LT(err, 1e-5);
}

// MLA's decode as the CUDA backend runs it (CudaBackend::mla_absorbed): q̃[h] = W_k[h]ᵀ q_nope[h] for every head
// in one gemv launch (GemvHeads), q_r beside it, attention over the latent rows (one KV head, key [c | k_r],
// value c), o[h] = W_v[h] · ctx[h] in one more launch. d_n + d_r = 29 takes the gemv's scalar path, r = 40 its
// 16-byte path.
TEST(CudaAttentionMla, AbsorbedDecodeMatchesReference) {
  LINFER_SKIP_WITHOUT_CUDA();
  std::mt19937 rng(11);
  const int64_t H = 3, r = 40, dn = 20, dr = 9, dv = 24, L = r + dr, dq = dn + dr, kv_row = H * (dn + dv);
  const std::vector<int64_t> lens{150, 131, 9, 1};
  const int64_t T = int64_t(lens.size());
  const auto w = normal(rng, kv_row * r, 1.0f / std::sqrt(float(r)));
  std::vector<float> k_t(H * r * dn);  // W_k[h]ᵀ: row h·r + j, column i = kv_b row h·(d_n + d_v) + i, column j
  for (int64_t h = 0; h < H; ++h)
    for (int64_t j = 0; j < r; ++j)
      for (int64_t i = 0; i < dn; ++i) k_t[(h * r + j) * dn + i] = w[(h * (dn + dv) + i) * r + j];
  const auto q = normal(rng, T * H * dq);
  const float scale = 1.0f / std::sqrt(float(dq));
  const MlaDims md{.n_heads = H, .kv_lora_rank = r, .qk_nope_dim = dn, .qk_rope_dim = dr, .v_dim = dv, .scale = scale};
  std::vector<std::vector<float>> latents;
  std::vector<MlaCache> caches;
  std::vector<int64_t> offsets{0};
  for (int64_t len : lens) latents.push_back(normal(rng, len * L)), offsets.push_back(offsets.back() + 1);
  for (size_t i = 0; i < lens.size(); ++i) caches.push_back({latents[i].data(), lens[i]});
  std::vector<float> ref_o(T * H * dv);
  const linfer::TensorView wv(const_cast<float*>(w.data()), linfer::DType::F32, {kv_row, r});
  ref::mla_attention(q.data(), md, wv, offsets, caches, ref_o.data());

  DeviceBuffer<float> d_q(q), d_w(w), d_kt(k_t), d_qa(T * H * L), d_ctx(T * H * r), d_o(T * H * dv);
  d_o.fill_bytes(0xFF);
  cuda::gemv({d_q.data(), T, dn, H * dq}, d_kt.data(), linfer::DType::F32, r, dn, nullptr, {d_qa.data(), T, r, H * L},
             nullptr, {.n = H, .x = dq, .w = r * dn, .y = L});
  cuda::cuda_check(cudaMemcpy2D(d_qa.data() + r, L * sizeof(float), d_q.data() + dn, dq * sizeof(float),
                                dr * sizeof(float), T * H, cudaMemcpyDeviceToDevice),
                   "q_r");
  const cuda::AttnLayout l{.Hq = H, .Hkv = 1, .D1 = r, .D2 = dr, .Dv = r, .q_ld = H * L, .o_ld = H * r, .k1_row = L,
                           .k1_head = 0, .k2_row = L, .k2_head = 0, .v_row = L, .v_head = 0, .scale = scale};
  std::vector<DeviceBuffer<float>> d_lat;
  std::vector<cuda::AttnSeq> seqs;
  for (size_t i = 0; i < lens.size(); ++i) {
    d_lat.emplace_back(latents[i]);
    seqs.push_back({.k1 = d_lat.back().data(), .k2 = d_lat.back().data() + r, .v = d_lat.back().data(),
                    .len = lens[i], .q0 = int64_t(i), .n = 1});
  }
  std::vector<char> raw(seqs.size() * sizeof(cuda::AttnSeq));
  std::memcpy(raw.data(), seqs.data(), raw.size());
  DeviceBuffer<char> d_s(raw);
  cuda::attention(d_qa.data(), reinterpret_cast<const cuda::AttnSeq*>(d_s.data()), T, 1, l, d_ctx.data(), nullptr);
  cuda::gemv({d_ctx.data(), T, r, H * r}, d_w.data() + dn * r, linfer::DType::F32, dv, r, nullptr,
             {d_o.data(), T, dv, H * dv}, nullptr, {.n = H, .x = r, .w = (dn + dv) * r, .y = dv});
  cuda::cuda_check(cudaDeviceSynchronize(), "mla absorbed decode");
  const double err = rel_err(d_o.download(), ref_o);
  EXPECT_LT(err, 2e-3);
  EXPECT_LT(err, 1e-5);
}

// A call's rows land at the end of each sequence's cache, found through the binding's table (sequences of
// 3, 0, 1 and 5 new rows on caches of different lengths; the rows before them and the room after untouched),
// and each sequence's attention view is made from the same table.
TEST(CudaCacheRows, AppendAndViewFromTheTable) {
  LINFER_SKIP_WITHOUT_CUDA();
  std::mt19937 rng(11);
  const int64_t cols = 37, ld = 41;
  const std::vector<int64_t> offsets{0, 3, 3, 4, 9}, rows_after{7, 2, 1, 600};
  const int64_t S = 4, T = offsets.back();
  const auto src = normal(rng, size_t(T * ld));
  std::vector<DeviceBuffer<float>> caches;
  std::vector<std::vector<float>> before;
  std::vector<linfer::CacheRows> table;
  for (int64_t i = 0; i < S; ++i) {
    before.push_back(normal(rng, size_t((rows_after[i] + 2) * cols)));
    caches.emplace_back(before.back());
    table.push_back({.p = caches.back().data(), .rows = rows_after[i]});
  }
  std::vector<char> raw(table.size() * sizeof(linfer::CacheRows));
  std::memcpy(raw.data(), table.data(), raw.size());
  DeviceBuffer<char> d_table(raw), d_seqs(size_t(S) * sizeof(cuda::AttnSeq));
  DeviceBuffer<float> d_src(src);
  const DeviceBuffer<int64_t> d_offsets(offsets);
  const auto* rows = reinterpret_cast<const linfer::CacheRows*>(d_table.data());
  cuda::append_to_caches({d_src.data(), T, cols, ld}, d_offsets.data(), rows, S, 5, nullptr);
  cuda::attn_seqs_from_caches(rows, rows, 32, d_offsets.data(), S, reinterpret_cast<cuda::AttnSeq*>(d_seqs.data()),
                              nullptr);
  cuda::cuda_check(cudaDeviceSynchronize(), "append_to_caches");
  for (int64_t i = 0; i < S; ++i) {
    std::vector<float> want = before[size_t(i)];
    const int64_t n = offsets[i + 1] - offsets[i];
    for (int64_t t = 0; t < n; ++t)
      std::copy_n(src.begin() + (offsets[i] + t) * ld, cols, want.begin() + (rows_after[i] - n + t) * cols);
    EXPECT_EQ(caches[size_t(i)].download(), want) << "sequence " << i;
  }
  const auto got = d_seqs.download();
  for (int64_t i = 0; i < S; ++i) {
    cuda::AttnSeq s;
    std::memcpy(&s, got.data() + i * int64_t(sizeof s), sizeof s);
    const float* p = caches[size_t(i)].data();
    EXPECT_TRUE(s.k1 == p && s.k2 == p + 32 && s.v == p && s.len == rows_after[i] && s.q0 == offsets[i] &&
                s.n == offsets[i + 1] - offsets[i])
        << "sequence " << i;
  }
}

TEST(CudaAttentionArgs, BadShapesAreErrors) {
  cuda::AttnLayout l{.Hq = 3, .Hkv = 2, .D1 = 8, .Dv = 8, .scale = 1};
  EXPECT_THROW(cuda::attention(nullptr, nullptr, 1, 1, l, nullptr, nullptr), linfer::Error);
  l.Hkv = 1, l.Dv = 513;
  EXPECT_THROW(cuda::attention(nullptr, nullptr, 1, 1, l, nullptr, nullptr), linfer::Error);
}

}  // namespace
