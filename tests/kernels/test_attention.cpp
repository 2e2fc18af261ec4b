// kernels/cpu/attention.h against kernels/reference/attention.h: packed sequences with nonzero
// cache lengths, GQA ratios 1 / 2 / 4, q/k head dim != v head dim, decode with long caches (split
// over keys), sliding window smaller and larger than the sequence over a wrapped ring, and
// chunked sliding prefill + ring_write == one prefill.
#include <gtest/gtest.h>

#include <cmath>

#include "dense_test_util.h"
#include "kernels/cpu/attention.h"
#include "kernels/reference/attention.h"
#include "linfer/core/error.h"

using namespace linfer;
using namespace linfer::kernels;
using namespace dense_test;

namespace {

struct Dims {
  int64_t Hq, Hkv, D, Dv;
};
const Dims kDims[] = {{2, 2, 16, 16}, {4, 2, 64, 32}, {8, 2, 128, 128}, {4, 1, 256, 256}, {4, 4, 192, 128}};

AttentionDims attn(const Dims& d) {
  return {d.Hq, d.Hkv, d.D, d.Dv, float(1.0 / std::sqrt(double(d.D)))};
}

struct Caches {
  std::vector<std::vector<float>> k, v;
  std::vector<KvCache> views;
};

Caches make_caches(std::mt19937& rng, const Dims& d, const std::vector<int64_t>& lens) {
  Caches c;
  for (int64_t len : lens) {
    c.k.push_back(random_vec(rng, size_t(len * d.Hkv * d.D)));
    c.v.push_back(random_vec(rng, size_t(len * d.Hkv * d.Dv)));
  }
  for (size_t i = 0; i < lens.size(); ++i) c.views.push_back({c.k[i].data(), c.v[i].data(), lens[i]});
  return c;
}

class AttentionPath : public SimdPathTest {};
class SlidingAttentionPath : public SimdPathTest {};

}  // namespace

TEST_P(AttentionPath, PrefillPackedWithCachesAgainstReference) {
  std::mt19937 rng(31);
  const std::vector<int64_t> offsets = {0, 1, 8, 73, 76};  // new tokens 1, 7, 65, 3
  const std::vector<int64_t> past = {0, 5, 31, 100};
  for (const Dims& d : kDims) {
    std::vector<int64_t> lens;
    for (size_t s = 0; s < past.size(); ++s) lens.push_back(past[s] + offsets[s + 1] - offsets[s]);
    Caches c = make_caches(rng, d, lens);
    const int64_t T = offsets.back();
    auto q = random_vec(rng, size_t(T * d.Hq * d.D), 2.0f);  // peaky softmax
    std::vector<float> ref(size_t(T * d.Hq * d.Dv));
    ref::attention_prefill(q.data(), attn(d), offsets, c.views, ref.data());
    std::vector<float> o(ref.size(), NAN);
    attention_prefill(q.data(), attn(d), offsets, c.views, o.data(), path());
    EXPECT_LT(rel_err(o, ref), 2e-6) << "Hq=" << d.Hq << " Hkv=" << d.Hkv << " D=" << d.D;
  }
}

TEST_P(AttentionPath, DecodeLongAndShortCaches) {
  std::mt19937 rng(32);
  for (const Dims& d : {kDims[1], kDims[2]}) {
    for (const std::vector<int64_t>& lens : {std::vector<int64_t>{3000}, std::vector<int64_t>{1, 700, 2049}}) {
      Caches c = make_caches(rng, d, lens);
      const int64_t B = int64_t(lens.size());
      auto q = random_vec(rng, size_t(B * d.Hq * d.D), 2.0f);
      std::vector<float> ref(size_t(B * d.Hq * d.Dv));
      ref::attention_decode(q.data(), attn(d), c.views, ref.data());
      std::vector<float> o(ref.size(), NAN);
      attention_decode(q.data(), attn(d), c.views, o.data(), path());
      EXPECT_LT(rel_err(o, ref), 2e-6) << "B=" << B;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Simd, AttentionPath, SimdPaths(), SimdPathName);

TEST(Attention, LargeScoresStayFinite) {
  // scores of several hundred: a naive exp overflows, the online softmax must not
  std::mt19937 rng(33);
  const Dims d{2, 1, 32, 32};
  Caches c = make_caches(rng, d, {300});
  auto q = random_vec(rng, size_t(d.Hq * d.D), 60.0f);
  std::vector<float> ref(size_t(d.Hq * d.Dv)), o(ref.size());
  ref::attention_decode(q.data(), attn(d), c.views, ref.data());
  attention_decode(q.data(), attn(d), c.views, o.data());
  for (float x : o) ASSERT_TRUE(std::isfinite(x));
  EXPECT_LT(rel_err(o, ref), 2e-6);
}

TEST(Attention, RejectsBadShapes) {
  std::vector<float> q(64), o(64), k(64), v(64);
  std::vector<KvCache> kv = {{k.data(), v.data(), 1}};
  const std::vector<int64_t> offsets = {0, 2};  // 2 new tokens, cache of 1 row
  EXPECT_THROW(attention_prefill(q.data(), {2, 1, 8, 8, 1.0f}, offsets, kv, o.data()), Error);
  EXPECT_THROW(attention_decode(q.data(), {3, 2, 8, 8, 1.0f}, kv, o.data()), Error);
}

namespace {

// Sliding-window fixture: each sequence's full K/V history; the ring holds what the model would
// have written for tokens before `past`.
struct SlidingCase {
  Dims d;
  int64_t window, capacity;
  std::vector<int64_t> past, n_new;
};

void check_sliding(SimdLevel path, const SlidingCase& sc, uint32_t seed) {
  std::mt19937 rng(seed);
  const Dims& d = sc.d;
  const int64_t kr = d.Hkv * d.D, vr = d.Hkv * d.Dv;
  std::vector<int64_t> offsets = {0};
  for (int64_t n : sc.n_new) offsets.push_back(offsets.back() + n);
  const int64_t T = offsets.back();
  auto q = random_vec(rng, size_t(T * d.Hq * d.D), 1.5f);
  auto k_new = random_vec(rng, size_t(T * kr)), v_new = random_vec(rng, size_t(T * vr));
  std::vector<std::vector<float>> rk, rv;
  std::vector<KvRing> rings;
  for (size_t s = 0; s < sc.past.size(); ++s) {
    rk.emplace_back(size_t(sc.capacity * kr), NAN);  // rows never written must never be read
    rv.emplace_back(size_t(sc.capacity * vr), NAN);
    KvRing ring{rk.back().data(), rv.back().data(), sc.capacity, 0};
    auto hk = random_vec(rng, size_t(sc.past[s] * kr)), hv = random_vec(rng, size_t(sc.past[s] * vr));
    ring_write(ring, hk.data(), hv.data(), sc.past[s], d.Hkv, d.D, d.Dv);
    ring.past = sc.past[s];
    rings.push_back(ring);
  }
  std::vector<float> ref(size_t(T * d.Hq * d.Dv));
  ref::sliding_attention_prefill(q.data(), k_new.data(), v_new.data(), attn(d), sc.window, offsets, rings, ref.data());
  for (float x : ref) ASSERT_TRUE(std::isfinite(x)) << "reference read an unwritten ring row";
  std::vector<float> o(ref.size(), NAN);
  sliding_attention_prefill(q.data(), k_new.data(), v_new.data(), attn(d), sc.window, offsets, rings, o.data(), path);
  EXPECT_LT(rel_err(o, ref), 2e-6) << "window " << sc.window << " capacity " << sc.capacity;
}

}  // namespace

TEST_P(SlidingAttentionPath, WindowSmallerAndLargerThanSequence) {
  uint32_t seed = 40;
  for (const Dims& d : {kDims[0], kDims[1], kDims[3]})
    for (int64_t window : {1, 4, 16, 200})
      for (int64_t capacity : {std::max<int64_t>(1, window - 1), window}) {
        // ring never written, partly written, wrapped several times
        check_sliding(path(), {d, window, capacity, {0, 3, 50, 77}, {20, 1, 9, 40}}, seed++);
      }
}

TEST_P(SlidingAttentionPath, DecodeOneTokenEachWithLongWindows) {
  // one token per sequence takes the decode path (all heads per task, keys split across threads)
  check_sliding(path(), {kDims[2], 600, 600, {1000, 599, 5}, {1, 1, 1}}, 45);
  check_sliding(path(), {kDims[1], 700, 699, {2000}, {1}}, 46);
}

INSTANTIATE_TEST_SUITE_P(Simd, SlidingAttentionPath, SimdPaths(), SimdPathName);

TEST(SlidingAttention, ChunkedWithRingWriteEqualsOnePrefillAndDecode) {
  std::mt19937 rng(50);
  const Dims d{4, 2, 32, 16};
  const int64_t window = 8, T = 30, kr = d.Hkv * d.D, vr = d.Hkv * d.Dv;
  auto q = random_vec(rng, size_t(T * d.Hq * d.D)), k = random_vec(rng, size_t(T * kr)),
       v = random_vec(rng, size_t(T * vr));
  std::vector<float> rk(size_t(window * kr)), rv(size_t(window * vr));
  std::vector<float> whole(size_t(T * d.Hq * d.Dv));
  {
    std::vector<KvRing> ring = {{rk.data(), rv.data(), window, 0}};
    const std::vector<int64_t> offsets = {0, T};
    sliding_attention_prefill(q.data(), k.data(), v.data(), attn(d), window, offsets, ring, whole.data());
  }
  for (int64_t chunk : {1, 3, 8, 11}) {
    std::vector<float> out(whole.size());
    KvRing ring{rk.data(), rv.data(), window, 0};
    for (int64_t t = 0; t < T; t += chunk) {
      const int64_t n = std::min(chunk, T - t);
      const std::vector<KvRing> one = {ring};
      if (n == 1) {
        sliding_attention_decode(q.data() + t * d.Hq * d.D, k.data() + t * kr, v.data() + t * vr, attn(d), window, one,
                                 out.data() + t * d.Hq * d.Dv);
      } else {
        const std::vector<int64_t> offsets = {0, n};
        sliding_attention_prefill(q.data() + t * d.Hq * d.D, k.data() + t * kr, v.data() + t * vr, attn(d), window,
                                  offsets, one, out.data() + t * d.Hq * d.Dv);
      }
      ring_write(ring, k.data() + t * kr, v.data() + t * vr, n, d.Hkv, d.D, d.Dv);
      ring.past += n;
    }
    EXPECT_LT(rel_err(out, whole), 1e-6) << "chunk " << chunk;
  }
}

TEST(SlidingAttention, WindowCoveringEverythingEqualsFullAttention) {
  std::mt19937 rng(51);
  const Dims d{4, 2, 64, 64};
  const int64_t T = 40, kr = d.Hkv * d.D, vr = d.Hkv * d.Dv;
  auto q = random_vec(rng, size_t(T * d.Hq * d.D)), k = random_vec(rng, size_t(T * kr)),
       v = random_vec(rng, size_t(T * vr));
  std::vector<float> rk(size_t(T * kr)), rv(size_t(T * vr)), full(size_t(T * d.Hq * d.Dv)), swa(full.size());
  const std::vector<int64_t> offsets = {0, T};
  const std::vector<KvCache> cache = {{k.data(), v.data(), T}};
  attention_prefill(q.data(), attn(d), offsets, cache, full.data());
  const std::vector<KvRing> ring = {{rk.data(), rv.data(), T, 0}};
  sliding_attention_prefill(q.data(), k.data(), v.data(), attn(d), T, offsets, ring, swa.data());
  EXPECT_LT(rel_err(swa, full), 1e-6);
}
