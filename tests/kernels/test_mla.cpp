// kernels/cpu/mla.h against kernels/reference/mla.h (expand the latent per head, then attend):
// the expanded and absorbed forms and the automatic choice, every weight dtype, packed sequences
// with nonzero cache lengths, decode, Kimi-like and odd dims; the cost model's choice between them.
#include <gtest/gtest.h>

#include <cmath>

#include "dense_test_util.h"
#include "kernels/cpu/mla.h"
#include "kernels/reference/mla.h"
#include "linfer/core/error.h"

using namespace linfer;
using namespace linfer::kernels;
using namespace dense_test;

namespace {

using MlaFn = void (*)(const float*, const MlaDims&, const MlaKv&, std::span<const int64_t>,
                       std::span<const MlaCache>, float*, SimdLevel);

void check_mla(SimdLevel path, const MlaDims& d, DType dt, const std::vector<int64_t>& past,
               const std::vector<int64_t>& n_new, uint32_t seed) {
  std::mt19937 rng(seed);
  const int64_t H = d.n_heads, r = d.kv_lora_rank, dq = d.qk_nope_dim + d.qk_rope_dim, row = r + d.qk_rope_dim;
  auto w = store_as(dt, random_vec(rng, size_t(H * (d.qk_nope_dim + d.v_dim) * r), float(1.0 / std::sqrt(r))));
  TensorView wv(w.bytes.data(), dt, {H * (d.qk_nope_dim + d.v_dim), r});
  const Tensor k_t = mla_keys_transposed(wv, d);
  std::vector<int64_t> offsets = {0};
  for (int64_t n : n_new) offsets.push_back(offsets.back() + n);
  const int64_t T = offsets.back();
  std::vector<std::vector<float>> rows;
  std::vector<MlaCache> caches;
  for (size_t s = 0; s < past.size(); ++s) rows.push_back(random_vec(rng, size_t((past[s] + n_new[s]) * row)));
  for (size_t s = 0; s < past.size(); ++s) caches.push_back({rows[s].data(), past[s] + n_new[s]});
  auto q = random_vec(rng, size_t(T * H * dq));
  std::vector<float> ref(size_t(T * H * d.v_dim));
  ref::mla_attention(q.data(), d, wv, offsets, caches, ref.data());
  const std::pair<const char*, MlaFn> forms[] = {
      {"expanded", mla_attention_expanded}, {"absorbed", mla_attention_absorbed}, {"auto", mla_attention}};
  for (auto [name, fn] : forms) {
    std::vector<float> o(ref.size(), NAN);
    fn(q.data(), d, {wv, k_t}, offsets, caches, o.data(), path);
    EXPECT_LT(rel_err(o, ref), 3e-6) << name << " " << dtype_name(dt) << " H=" << H << " r=" << r;
  }
}

class MlaPath : public SimdPathTest {};

}  // namespace

TEST_P(MlaPath, PrefillPackedSequencesEveryForm) {
  const float kimi_scale = float(1.0 / std::sqrt(48.0));
  const MlaDims kimi_like{4, 64, 32, 16, 32, kimi_scale};  // Kimi's shape scaled down (r > d_n, d_r shared)
  const MlaDims odd{3, 19, 7, 5, 11, 0.3f};
  const MlaDims no_rope{2, 32, 16, 0, 24, 0.25f};
  uint32_t seed = 60;
  for (const MlaDims& d : {kimi_like, odd, no_rope})
    for (DType dt : {DType::F32, DType::BF16, DType::F16}) check_mla(path(), d, dt, {0, 4, 33}, {5, 1, 70}, seed++);
}

TEST_P(MlaPath, DecodeBatch) {
  const MlaDims d{8, 128, 64, 32, 64, float(1.0 / std::sqrt(96.0))};
  check_mla(path(), d, DType::BF16, {0, 17, 600}, {1, 1, 1}, 70);
}

TEST_P(MlaPath, AbsorbedEqualsExpandedOnLongPrefill) {
  // where mla_attention picks the expanded form (many new tokens); both forms must still agree
  const MlaDims d{2, 32, 16, 8, 16, 0.2f};
  check_mla(path(), d, DType::BF16, {10}, {300}, 71);
}

TEST_P(MlaPath, ChooserPicksEachFormWhereTheCostSays) {
  // awkward dims (3 heads, r = 24, d_r = 5, d_n ≠ d_v; crossover n* ≈ 52): calls on either side of it, check
  // mla_form follows mla_cost there, and run every form on them against the reference
  const MlaDims d{3, 24, 8, 5, 12, 0.3f};
  bool seen[2] = {false, false};
  uint32_t seed = 80;
  for (int64_t past : {0, 9, 150})
    for (int64_t n : {1, 3, 17, 64, 200}) {
      const MlaCost c = mla_cost(d, n, past + n);
      const MlaForm form = mla_form(d, n, past + n);
      EXPECT_EQ(form, c.expanded < c.absorbed ? MlaForm::Expanded : MlaForm::Absorbed) << "n " << n << " past " << past;
      if (seen[int(form)]) continue;
      seen[int(form)] = true;
      check_mla(path(), d, DType::BF16, {past}, {n}, seed++);
    }
  EXPECT_TRUE(seen[int(MlaForm::Expanded)] && seen[int(MlaForm::Absorbed)]);
}

INSTANTIATE_TEST_SUITE_P(Simd, MlaPath, SimdPaths(), SimdPathName);

TEST(Mla, CostModelAtKimiShape) {
  // the random kimi_linear's MLA (docs/benchmarks.md "MLA form by cost"): decode and short chunks
  // absorbed over any cache, 512-token chunks and whole prompts expanded, the crossover near n = 250
  const MlaDims kimi{8, 512, 128, 64, 128, float(1.0 / std::sqrt(192.0))};
  for (int64_t len : {1024, 4096, 16384, 50000}) {
    EXPECT_EQ(mla_form(kimi, 1, len), MlaForm::Absorbed) << len;
    EXPECT_EQ(mla_form(kimi, 200, len), MlaForm::Absorbed) << len;
    EXPECT_EQ(mla_form(kimi, 512, len), MlaForm::Expanded) << len;
  }
  EXPECT_EQ(mla_form(kimi, 16384, 16384), MlaForm::Expanded);
  EXPECT_EQ(mla_cost(kimi, 512, 16384).expanded_bytes, int64_t(16384) * 5120 * 4);  // 20 KiB per cached row
  // past the scratch cap (1 GiB: 52,428 rows here) the absorbed form runs even where it costs more
  const int64_t big = kMlaExpandedScratchCap / (5120 * 4) + 1;
  const MlaCost c = mla_cost(kimi, 4096, big);
  EXPECT_LT(c.expanded, c.absorbed);
  EXPECT_GT(c.expanded_bytes, kMlaExpandedScratchCap);
  EXPECT_EQ(mla_form(kimi, 4096, big), MlaForm::Absorbed);
  EXPECT_EQ(mla_form(kimi, 4096, big - 1), MlaForm::Expanded);
}

TEST(Mla, RejectsWrongKvBShape) {
  const MlaDims d{2, 8, 4, 2, 4, 1.0f};
  std::vector<float> w(2 * 8 * 8), q(12), o(8), rows(10);  // q [1, H, d_n + d_r], o [1, H, d_v]
  const std::vector<int64_t> offsets = {0, 1};
  const std::vector<MlaCache> caches = {{rows.data(), 1}};
  const TensorView good(w.data(), DType::F32, {16, 8}), bad(w.data(), DType::F32, {12, 8});
  const Tensor k_t = mla_keys_transposed(good, d);  // [H·r, d_n] = [16, 4]
  EXPECT_THROW(mla_attention(q.data(), d, {bad, k_t}, offsets, caches, o.data()), Error);
  EXPECT_THROW(mla_attention(q.data(), d, {good, TensorView(w.data(), DType::F32, {8, 4})}, offsets, caches, o.data()),
               Error);
  EXPECT_THROW(mla_keys_transposed(bad, d), Error);
  EXPECT_NO_THROW(mla_attention(q.data(), d, {good, k_t}, offsets, caches, o.data()));
}
