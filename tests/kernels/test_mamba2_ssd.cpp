// Mamba2 SSD: float32 step and chunked prefill against the float64 token-by-token reference.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "kernels/cpu/mamba2_ssd.h"
#include "kernels/reference/mamba2_ssd.h"
#include "linfer/core/error.h"
#include "test_linear_attn_util.h"

namespace linfer::kernels {
namespace {

using test::rel_err;
using test::States;

constexpr double kTol = 1e-5;

// Random inputs in the ranges of a trained Mamba2 layer (A = -exp(A_log) in [-16, -1], dt around
// softplus(dt_bias) in [1e-3, 0.1]), or with the decay pushed to an extreme.
struct Mamba2Data {
  Mamba2Dims d;
  std::vector<int64_t> off;
  int64_t T;
  std::vector<float> x, dt, B, C, A_log, dt_bias, D;
  float dt_min = 0.0f, dt_max = INFINITY;

  Mamba2Data(Mamba2Dims dims, const std::vector<int64_t>& lengths, uint32_t seed) : d(dims) {
    std::mt19937 rng(seed);
    off = test::offsets_of(lengths);
    T = off.back();
    x = test::normal(rng, T * d.H * d.P);
    dt = test::normal(rng, T * d.H);
    B = test::normal(rng, T * d.G * d.N, 0.0f, 0.5f);
    C = test::normal(rng, T * d.G * d.N, 0.0f, 0.5f);
    A_log = test::uniform(rng, d.H, 0.0f, std::log(16.0f));
    dt_bias = test::uniform(rng, d.H, std::log(std::expm1(1e-3f)), std::log(std::expm1(0.1f)));
    D = test::normal(rng, d.H);
  }
  Mamba2Params params() const { return {A_log.data(), dt_bias.data(), D.data(), dt_min, dt_max}; }
  Mamba2Inputs inputs() const { return {x.data(), dt.data(), B.data(), C.data()}; }
  int64_t elems() const { return mamba2_state_elems(d); }
};

std::vector<double> run_ref(const Mamba2Data& m, States& s) {
  std::vector<double> y(m.T * m.d.H * m.d.P);
  ref::mamba2_ssd(m.d, m.params(), m.inputs(), m.off, s.dp, y.data());
  return y;
}

std::vector<float> run_prefill(const Mamba2Data& m, States& s, SimdLevel level = simd_level()) {
  std::vector<float> y(m.T * m.d.H * m.d.P);
  mamba2_ssd_prefill(m.d, m.params(), m.inputs(), m.off, s.fp, y.data(), level);
  return y;
}

// Decodes every sequence token by token, batching the sequences still running at each position.
std::vector<float> run_step(const Mamba2Data& m, States& s) {
  const int64_t H = m.d.H, P = m.d.P, GN = m.d.G * m.d.N;
  const int64_t n = int64_t(m.off.size()) - 1;
  std::vector<float> y(m.T * H * P);
  for (int64_t pos = 0;; ++pos) {
    std::vector<int64_t> rows;
    std::vector<float*> ptrs;
    for (int64_t i = 0; i < n; ++i)
      if (m.off[i] + pos < m.off[i + 1]) {
        rows.push_back(m.off[i] + pos);
        ptrs.push_back(s.fp[i]);
      }
    if (rows.empty()) break;
    const size_t b = rows.size();
    std::vector<float> x(b * H * P), dt(b * H), B(b * GN), C(b * GN), out(b * H * P);
    for (size_t r = 0; r < b; ++r) {
      std::copy_n(m.x.begin() + rows[r] * H * P, H * P, x.begin() + r * H * P);
      std::copy_n(m.dt.begin() + rows[r] * H, H, dt.begin() + r * H);
      std::copy_n(m.B.begin() + rows[r] * GN, GN, B.begin() + r * GN);
      std::copy_n(m.C.begin() + rows[r] * GN, GN, C.begin() + r * GN);
    }
    mamba2_ssd_step(m.d, m.params(), {x.data(), dt.data(), B.data(), C.data()}, ptrs, out.data());
    for (size_t r = 0; r < b; ++r) std::copy_n(out.begin() + r * H * P, H * P, y.begin() + rows[r] * H * P);
  }
  return y;
}

// Reference, prefill and step from the same nonzero initial states agree on outputs and final states.
void expect_all_forms_agree(const Mamba2Data& m, double tol = kTol) {
  const size_t n = m.off.size() - 1;
  std::mt19937 r1(7), r2(7);
  States sp(n, m.elems(), r1, 0.5f), ss(n, m.elems(), r2, 0.5f);
  const auto y_ref = run_ref(m, sp);
  const auto y_pre = run_prefill(m, sp);
  const auto y_step = run_step(m, ss);
  EXPECT_LT(rel_err(y_pre, y_ref), tol) << "prefill output";
  EXPECT_LT(rel_err(sp.all_f(), sp.all_d()), tol) << "prefill final state";
  EXPECT_LT(rel_err(y_step, y_ref), tol) << "step output";
  EXPECT_LT(rel_err(ss.all_f(), sp.all_d()), tol) << "step final state";
}

TEST(Mamba2Ssd, AllFormsAgreeOverLengthsAndDims) {
  for (int64_t T : {1, 63, 64, 65, 1000})
    for (int64_t P : {32, 64})
      for (int64_t N : {16, 64, 128}) {
        if (T == 1000 && P * N > 64 * 64) continue;  // one long case per dim pair is enough below
        SCOPED_TRACE(::testing::Message() << "T " << T << " P " << P << " N " << N);
        expect_all_forms_agree(Mamba2Data({.H = 4, .P = P, .N = N, .G = 2}, {T}, uint32_t(T * 1000 + P + N)));
      }
  SCOPED_TRACE("T 1000 P 64 N 128, one group");
  expect_all_forms_agree(Mamba2Data({.H = 2, .P = 64, .N = 128, .G = 1}, {1000}, 5));
}

TEST(Mamba2Ssd, BatchOfDifferentLengths) {
  expect_all_forms_agree(Mamba2Data({.H = 6, .P = 32, .N = 64, .G = 3}, {65, 1, 0, 130, 64, 7}, 11));
}

TEST(Mamba2Ssd, TimeStepLimitClamps) {
  Mamba2Data m({.H = 4, .P = 32, .N = 16, .G = 1}, {100, 37}, 12);
  m.dt_min = 0.01f;
  m.dt_max = 0.05f;
  expect_all_forms_agree(m);
}

TEST(Mamba2Ssd, StrongAndNoDecay) {
  Mamba2Data strong({.H = 4, .P = 32, .N = 64, .G = 2}, {200, 65}, 13);
  std::fill(strong.A_log.begin(), strong.A_log.end(), 0.0f);     // A = -1
  std::fill(strong.dt_bias.begin(), strong.dt_bias.end(), 20.0f);  // dt ≈ 20: g ≈ -20 per token
  expect_all_forms_agree(strong);
  Mamba2Data none({.H = 4, .P = 32, .N = 64, .G = 2}, {200, 65}, 14);
  std::fill(none.A_log.begin(), none.A_log.end(), -40.0f);  // A ≈ -4e-18: exp(dt A) == 1 in float32
  expect_all_forms_agree(none);
}

TEST(Mamba2Ssd, SplitPrefillEqualsWholePrefill) {
  std::mt19937 rng(99);
  for (int trial = 0; trial < 4; ++trial) {
    const int64_t T = 150;
    Mamba2Data m({.H = 4, .P = 32, .N = 64, .G = 2}, {T}, 20 + trial);
    const int64_t cut = std::uniform_int_distribution<int64_t>(1, T - 1)(rng);
    SCOPED_TRACE(::testing::Message() << "cut " << cut);
    std::mt19937 r1(3), r2(3);
    States whole(1, m.elems(), r1, 0.5f), split(1, m.elems(), r2, 0.5f);
    const auto y_whole = run_prefill(m, whole);
    std::vector<float> y_split(y_whole.size());
    const int64_t HP = m.d.H * m.d.P, GN = m.d.G * m.d.N;
    for (auto [t0, t1] : {std::pair<int64_t, int64_t>{0, cut}, {cut, T}}) {
      const std::vector<int64_t> off{0, t1 - t0};
      Mamba2Inputs in{m.x.data() + t0 * HP, m.dt.data() + t0 * m.d.H, m.B.data() + t0 * GN, m.C.data() + t0 * GN};
      mamba2_ssd_prefill(m.d, m.params(), in, off, split.fp, y_split.data() + t0 * HP);
    }
    EXPECT_LT(rel_err(y_split, y_whole), kTol);
    EXPECT_LT(rel_err(split.f[0], whole.f[0]), kTol);
  }
}

TEST(Mamba2Ssd, StridedInputsFromOneRow) {
  // The mixer's conv output row is [x | B | C] and in_proj's row ends in dt: read them in place.
  Mamba2Data m({.H = 4, .P = 32, .N = 16, .G = 2}, {70, 5}, 30);
  const int64_t HP = m.d.H * m.d.P, GN = m.d.G * m.d.N, W = HP + 2 * GN + m.d.H;
  std::vector<float> rows(m.T * W);
  for (int64_t t = 0; t < m.T; ++t) {
    std::copy_n(m.x.begin() + t * HP, HP, rows.begin() + t * W);
    std::copy_n(m.B.begin() + t * GN, GN, rows.begin() + t * W + HP);
    std::copy_n(m.C.begin() + t * GN, GN, rows.begin() + t * W + HP + GN);
    std::copy_n(m.dt.begin() + t * m.d.H, m.d.H, rows.begin() + t * W + HP + 2 * GN);
  }
  Mamba2Inputs in{rows.data(), rows.data() + HP + 2 * GN, rows.data() + HP, rows.data() + HP + GN, W, W, W, W};
  std::mt19937 r1(4), r2(4);
  States dense(2, m.elems(), r1, 0.5f), strided(2, m.elems(), r2, 0.5f);
  const auto y_dense = run_prefill(m, dense);
  std::vector<float> y(y_dense.size());
  mamba2_ssd_prefill(m.d, m.params(), in, m.off, strided.fp, y.data());
  EXPECT_EQ(y, y_dense);
  EXPECT_EQ(strided.all_f(), dense.all_f());
}

TEST(Mamba2Ssd, Avx2MatchesScalar) {
  if (!cpu_supports(SimdLevel::Avx2)) GTEST_SKIP() << "this CPU cannot run the avx2 kernels";
  Mamba2Data m({.H = 4, .P = 64, .N = 128, .G = 2}, {129, 3}, 40);
  std::mt19937 r1(5), r2(5);
  States a(2, m.elems(), r1, 0.5f), b(2, m.elems(), r2, 0.5f);
  const auto y_scalar = run_prefill(m, a, SimdLevel::Scalar);
  const auto y_avx2 = run_prefill(m, b, SimdLevel::Avx2);
  EXPECT_LT(rel_err(y_avx2, y_scalar), 1e-6);
  EXPECT_LT(rel_err(b.all_f(), a.all_f()), 1e-6);
}

TEST(Mamba2Ssd, HundredThousandTokensStayFiniteAndClose) {
  Mamba2Data m({.H = 2, .P = 8, .N = 16, .G = 1}, {100000}, 50);
  std::mt19937 r1(6);
  States s(1, m.elems(), r1, 0.5f);
  const auto y_ref = run_ref(m, s);
  const auto y = run_prefill(m, s);
  ASSERT_TRUE(test::all_finite(y));
  ASSERT_TRUE(test::all_finite(s.f[0]));
  EXPECT_LT(rel_err(y, y_ref), 1e-3);
  EXPECT_LT(rel_err(s.f[0], s.d[0]), 1e-3);
}

TEST(Mamba2Ssd, RejectsBadDims) {
  Mamba2Data m({.H = 4, .P = 8, .N = 16, .G = 3}, {2}, 60);
  std::mt19937 r1(6);
  States s(1, 4 * 8 * 16, r1, 0.5f);
  std::vector<float> y(2 * 4 * 8);
  EXPECT_THROW(mamba2_ssd_prefill(m.d, m.params(), m.inputs(), m.off, s.fp, y.data()), Error);
}

}  // namespace
}  // namespace linfer::kernels
