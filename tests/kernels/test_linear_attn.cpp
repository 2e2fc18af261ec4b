// Linear-attention family: float32 step and chunked prefill against the float64 reference, for every
// decay form, with and without the z normaliser.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "dense_test_util.h"
#include "kernels/cpu/feature_maps.h"
#include "kernels/cpu/linear_attn.h"
#include "kernels/reference/feature_maps.h"
#include "kernels/reference/linear_attn.h"
#include "linfer/core/error.h"
#include "test_linear_attn_util.h"

namespace linfer::kernels {
namespace {

using test::rel_err;
using test::States;

constexpr double kTol = 1e-5;

const char* name(LinearAttnDecay d) {
  switch (d) {
    case LinearAttnDecay::None: return "none";
    case LinearAttnDecay::PerHead: return "per-head";
    case LinearAttnDecay::Scalar: return "scalar";
    case LinearAttnDecay::Vector: return "vector";
  }
  return "?";
}

// Inputs of one call; `a` points into this object, so it is built in place and never copied.
struct LaData {
  LinearAttnArgs a;
  std::vector<int64_t> off;
  int64_t T;
  std::vector<float> q, k, v, g;

  // g_lo..g_hi: range of the per-token log decays (Scalar / Vector).
  LaData(int64_t H, int64_t HV, int64_t K, int64_t V, LinearAttnDecay decay, bool normalize,
         const std::vector<int64_t>& lengths, uint32_t seed, float g_lo = -0.3f, float g_hi = -0.001f) {
    std::mt19937 rng(seed);
    off = test::offsets_of(lengths);
    T = off.back();
    const float sd = 1.0f / std::sqrt(float(K));
    q = test::normal(rng, T * H * K, 0.0f, normalize ? 1.0f : sd);
    k = test::normal(rng, T * H * K, 0.0f, normalize ? 1.0f : sd);
    v = test::normal(rng, T * HV * V);
    if (normalize) {  // the normaliser needs positive features: Katharopoulos elu + 1
      apply_feature_map(FeatureMap::EluPlusOne, q.data(), int64_t(q.size()));
      apply_feature_map(FeatureMap::EluPlusOne, k.data(), int64_t(k.size()));
    }
    switch (decay) {
      case LinearAttnDecay::None: break;
      case LinearAttnDecay::PerHead: g = retnet_log_decays(HV); break;
      case LinearAttnDecay::Scalar: g = test::uniform(rng, T * HV, g_lo, g_hi); break;
      case LinearAttnDecay::Vector: g = test::uniform(rng, T * HV * K, g_lo, g_hi); break;
    }
    a.H = H;
    a.HV = HV;
    a.K = K;
    a.V = V;
    a.q = q.data();
    a.k = k.data();
    a.v = v.data();
    a.decay = decay;
    a.g = g.empty() ? nullptr : g.data();
    a.scale = 1.0f / std::sqrt(float(K));
    a.normalize = normalize;
  }
  LaData(const LaData&) = delete;
  int64_t n_seqs() const { return int64_t(off.size()) - 1; }
};

struct LaStates {
  States s, z;
  LaStates(const LaData& d, uint32_t seed)
      : s(d.n_seqs(), linear_attn_state_elems(d.a), rng(seed), 0.5f),
        z(d.a.normalize ? d.n_seqs() : 0, linear_attn_z_elems(d.a), rng(seed + 1), 0.0f) {
    // a positive initial z, as a normalised prefix would leave it
    for (size_t i = 0; i < z.f.size(); ++i)
      for (size_t c = 0; c < z.f[i].size(); ++c) z.d[i][c] = z.f[i][c] = 1.0f + float(c % 3);
  }
  static std::mt19937& rng(uint32_t seed) {
    static std::mt19937 r;
    r.seed(seed);
    return r;
  }
};

std::vector<double> run_ref(const LaData& d, LaStates& st) {
  std::vector<double> o(d.T * d.a.HV * d.a.V);
  ref::linear_attn(d.a, d.off, st.s.dp, st.z.dp, o.data());
  return o;
}

std::vector<float> run_prefill(const LaData& d, LaStates& st, SimdLevel level = simd_level()) {
  std::vector<float> o(d.T * d.a.HV * d.a.V);
  linear_attn_prefill(d.a, d.off, st.s.fp, st.z.fp, o.data(), level);
  return o;
}

// Token-by-token decode, batching the sequences still running at each position.
std::vector<float> run_step(const LaData& d, LaStates& st, SimdLevel level = simd_level()) {
  const auto& a = d.a;
  const int64_t HK = a.H * a.K, HVV = a.HV * a.V;
  const int64_t g_row = a.decay == LinearAttnDecay::Scalar ? a.HV : a.decay == LinearAttnDecay::Vector ? a.HV * a.K : 0;
  std::vector<float> o(d.T * HVV);
  for (int64_t pos = 0;; ++pos) {
    std::vector<int64_t> rows;
    std::vector<float*> sp, zp;
    for (int64_t i = 0; i < d.n_seqs(); ++i)
      if (d.off[i] + pos < d.off[i + 1]) {
        rows.push_back(d.off[i] + pos);
        sp.push_back(st.s.fp[i]);
        if (a.normalize) zp.push_back(st.z.fp[i]);
      }
    if (rows.empty()) break;
    const int64_t b = int64_t(rows.size());
    std::vector<float> q(b * HK), k(b * HK), v(b * HVV), g(b * g_row), out(b * HVV);
    for (int64_t r = 0; r < b; ++r) {
      std::copy_n(d.q.begin() + rows[r] * HK, HK, q.begin() + r * HK);
      std::copy_n(d.k.begin() + rows[r] * HK, HK, k.begin() + r * HK);
      std::copy_n(d.v.begin() + rows[r] * HVV, HVV, v.begin() + r * HVV);
      std::copy_n(d.g.begin() + rows[r] * g_row, g_row, g.begin() + r * g_row);
    }
    LinearAttnArgs one = a;
    one.q = q.data();
    one.k = k.data();
    one.v = v.data();
    if (g_row) one.g = g.data();
    linear_attn_step(one, sp, zp, out.data(), level);
    for (int64_t r = 0; r < b; ++r) std::copy_n(out.begin() + r * HVV, HVV, o.begin() + rows[r] * HVV);
  }
  return o;
}

void expect_all_forms_agree(const LaData& d, double tol = kTol, SimdLevel level = simd_level()) {
  LaStates sp(d, 7), ss(d, 7);
  const auto o_ref = run_ref(d, sp);
  const auto o_pre = run_prefill(d, sp, level);
  const auto o_step = run_step(d, ss, level);
  EXPECT_LT(rel_err(o_pre, o_ref), tol) << "prefill output";
  EXPECT_LT(rel_err(sp.s.all_f(), sp.s.all_d()), tol) << "prefill final state";
  EXPECT_LT(rel_err(o_step, o_ref), tol) << "step output";
  EXPECT_LT(rel_err(ss.s.all_f(), sp.s.all_d()), tol) << "step final state";
  if (d.a.normalize) {
    EXPECT_LT(rel_err(sp.z.all_f(), sp.z.all_d()), tol) << "prefill final z";
    EXPECT_LT(rel_err(ss.z.all_f(), sp.z.all_d()), tol) << "step final z";
  }
}

constexpr LinearAttnDecay kDecays[] = {LinearAttnDecay::None, LinearAttnDecay::PerHead, LinearAttnDecay::Scalar,
                                       LinearAttnDecay::Vector};

TEST(LinearAttn, AllFormsAgreeOverLengthsAndHeadDims) {
  for (LinearAttnDecay decay : kDecays)
    for (int64_t D : {32, 64, 128})
      for (int64_t T : {1, 63, 64, 65, 1000}) {
        if (T == 1000 && D != 32) continue;  // long runs at the smallest dim; the others below
        SCOPED_TRACE(::testing::Message() << name(decay) << " D " << D << " T " << T);
        expect_all_forms_agree(LaData(2, 4, D, D, decay, false, {T}, uint32_t(T + D)));
      }
  SCOPED_TRACE("scalar D 128 T 1000");
  expect_all_forms_agree(LaData(1, 2, 128, 128, LinearAttnDecay::Scalar, false, {1000}, 3));
}

TEST(LinearAttn, NormalisedKatharopoulos) {
  for (LinearAttnDecay decay : {LinearAttnDecay::None, LinearAttnDecay::Scalar, LinearAttnDecay::Vector})
    for (int64_t T : {1, 65, 300}) {
      SCOPED_TRACE(::testing::Message() << name(decay) << " T " << T);
      expect_all_forms_agree(LaData(2, 4, 32, 64, decay, true, {T, 17}, uint32_t(T)));
    }
}

TEST(LinearAttn, BatchOfDifferentLengthsAndUnequalKV) {
  for (LinearAttnDecay decay : kDecays) {
    SCOPED_TRACE(name(decay));
    expect_all_forms_agree(LaData(2, 6, 64, 32, decay, false, {65, 1, 0, 130, 64, 7}, 11));
  }
}

TEST(LinearAttn, StrongAndNoDecay) {
  for (LinearAttnDecay decay : {LinearAttnDecay::Scalar, LinearAttnDecay::Vector}) {
    SCOPED_TRACE(name(decay));
    expect_all_forms_agree(LaData(2, 4, 32, 32, decay, false, {150, 70}, 12, -20.5f, -19.5f));
    expect_all_forms_agree(LaData(2, 4, 32, 32, decay, false, {150, 70}, 13, 0.0f, 0.0f));
  }
}

TEST(LinearAttn, LightningDecays) {
  LaData d(2, 4, 32, 32, LinearAttnDecay::PerHead, false, {200}, 14);
  d.g = lightning_log_decays(4, 3, 8);
  d.a.g = d.g.data();
  expect_all_forms_agree(d);
}

TEST(LinearAttn, DecayHelpersMatchTheirDefinitions) {
  const auto retnet = retnet_log_decays(8);
  for (int h = 0; h < 8; ++h) EXPECT_NEAR(std::exp(double(retnet[h])), 1.0 - std::pow(2.0, -5.0 - h), 1e-7);
  // MiniMax-01: rate_h = (1 / 2^(8 / H))^(h + 1) * (1 - l / (L - 1 + 1e-5) + 1e-5); g = -rate.
  const auto light = lightning_log_decays(8, 2, 5);
  for (int h = 0; h < 8; ++h) {
    const double rate = std::pow(1.0 / std::pow(2.0, 8.0 / 8), h + 1) * (1.0 - 2.0 / (4.0 + 1e-5) + 1e-5);
    EXPECT_NEAR(light[h], -rate, 1e-7);
  }
}

TEST(LinearAttn, SplitPrefillEqualsWholePrefill) {
  std::mt19937 rng(99);
  for (LinearAttnDecay decay : kDecays)
    for (int trial = 0; trial < 2; ++trial) {
      const int64_t T = 150;
      const int64_t cut = std::uniform_int_distribution<int64_t>(1, T - 1)(rng);
      SCOPED_TRACE(::testing::Message() << name(decay) << " cut " << cut);
      LaData d(2, 4, 32, 32, decay, decay == LinearAttnDecay::None, {T}, 20 + trial);
      LaStates whole(d, 3), split(d, 3);
      const auto o_whole = run_prefill(d, whole);
      std::vector<float> o_split(o_whole.size());
      const int64_t HK = d.a.H * d.a.K, HVV = d.a.HV * d.a.V;
      const int64_t g_row = decay == LinearAttnDecay::Scalar ? d.a.HV : decay == LinearAttnDecay::Vector ? d.a.HV * d.a.K : 0;
      for (auto [t0, t1] : {std::pair<int64_t, int64_t>{0, cut}, {cut, T}}) {
        LinearAttnArgs part = d.a;
        part.q += t0 * HK;
        part.k += t0 * HK;
        part.v += t0 * HVV;
        if (g_row) part.g += t0 * g_row;
        const std::vector<int64_t> off{0, t1 - t0};
        linear_attn_prefill(part, off, split.s.fp, split.z.fp, o_split.data() + t0 * HVV);
      }
      EXPECT_LT(rel_err(o_split, o_whole), kTol);
      EXPECT_LT(rel_err(split.s.all_f(), whole.s.all_f()), kTol);
    }
}

// Each SIMD path against the reference, with head dims that leave a tail after whole vectors of every width (4, 8,
// 16 lanes) and whole ones; the tests above run the best path only.
class LinearAttnPath : public dense_test::SimdPathTest {};

TEST_P(LinearAttnPath, AllFormsAgreeWithTheReference) {
  for (LinearAttnDecay decay : kDecays)
    for (auto [K, V] : {std::pair<int64_t, int64_t>{64, 40}, {37, 19}}) {
      SCOPED_TRACE(testing::Message() << name(decay) << " K " << K << " V " << V);
      expect_all_forms_agree(LaData(2, 4, K, V, decay, decay == LinearAttnDecay::None, {100, 9}, 30), kTol, path());
    }
}

INSTANTIATE_TEST_SUITE_P(Simd, LinearAttnPath, dense_test::SimdPaths(), dense_test::SimdPathName);

TEST(LinearAttn, HundredThousandTokensWithDecayStayFiniteAndClose) {
  LaData d(1, 1, 16, 16, LinearAttnDecay::Scalar, false, {100000}, 40, -0.1f, -0.001f);
  LaStates st(d, 6);
  const auto o_ref = run_ref(d, st);
  const auto o = run_prefill(d, st);
  ASSERT_TRUE(test::all_finite(o));
  ASSERT_TRUE(test::all_finite(st.s.f[0]));
  EXPECT_LT(rel_err(o, o_ref), 1e-3);
  EXPECT_LT(rel_err(st.s.f[0], st.s.d[0]), 1e-3);
}

TEST(LinearAttn, ElementwiseFeatureMapsMatchReference) {
  std::mt19937 rng(8);
  const auto x = test::normal(rng, 1000, 0.0f, 3.0f);
  for (FeatureMap f : {FeatureMap::Identity, FeatureMap::EluPlusOne, FeatureMap::Relu}) {
    std::vector<float> y = x;
    apply_feature_map(f, y.data(), int64_t(y.size()));
    std::vector<double> want(x.size());
    for (size_t i = 0; i < x.size(); ++i) want[i] = ref::feature_map(f, x[i]);
    EXPECT_LT(rel_err(y, want), 1e-6);
  }
}

TEST(LinearAttn, RejectsInconsistentArguments) {
  LaData d(3, 4, 16, 16, LinearAttnDecay::None, false, {5}, 50);  // HV % H != 0
  LaStates st(d, 1);
  std::vector<float> o(d.T * 4 * 16);
  EXPECT_THROW(linear_attn_prefill(d.a, d.off, st.s.fp, {}, o.data()), Error);
  LaData e(2, 4, 16, 16, LinearAttnDecay::Scalar, false, {5}, 51);
  e.a.g = nullptr;
  LaStates st2(e, 1);
  EXPECT_THROW(linear_attn_step(e.a, st2.s.fp, {}, o.data()), Error);
}

}  // namespace
}  // namespace linfer::kernels
