// Delta-rule kernels (DeltaNet, GDN, KDA): decode step, recurrent and chunked prefill, each against the
// float64 reference on random inputs of awkward lengths, plus the invariances the engine relies on
// (split prefill == whole prefill, step == prefill, SIMD == portable) and long-run stability.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/delta_rule.h"
#include "kernels/reference/delta_rule.h"
#include "linfer/core/error.h"

using namespace linfer;
using namespace linfer::kernels;

namespace {

enum class Gates { Random, Strong, Zero };  // g ~ logsigmoid(N(0,1)) ; g ≈ -20 ; g = 0

struct Problem {
  DeltaRuleShape shape;
  std::vector<int64_t> offsets;
  std::vector<float> q, k, v, beta, g;
  std::vector<std::vector<float>> states0;  // initial state per sequence [HV, V, K]

  int64_t T() const { return offsets.back(); }
  int64_t n_seqs() const { return int64_t(offsets.size()) - 1; }
  DeltaRuleInputs inputs() const {
    return {q.data(), k.data(), v.data(), beta.data(), shape.decay == DeltaDecay::None ? nullptr : g.data()};
  }
};

Problem make_problem(DeltaRuleShape shape, const std::vector<int64_t>& lens, Gates gates, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Problem p;
  p.shape = shape;
  p.offsets = {0};
  for (int64_t n : lens) p.offsets.push_back(p.offsets.back() + n);
  const int64_t T = p.T(), H = shape.H, HV = shape.HV, K = shape.K, V = shape.V;
  auto fill = [&](std::vector<float>& x, int64_t n) {
    x.resize(n);
    for (auto& e : x) e = normal(rng);
  };
  fill(p.q, T * H * K);
  fill(p.k, T * H * K);
  fill(p.v, T * HV * V);
  if (!shape.l2norm_qk) {
    // without the in-kernel norm the caller normalises; unnormalised keys make the delta rule diverge
    for (auto* x : {&p.q, &p.k})
      for (int64_t r = 0; r < T * H; ++r) {
        float ss = 0;
        for (int64_t i = 0; i < K; ++i) ss += (*x)[r * K + i] * (*x)[r * K + i];
        for (int64_t i = 0; i < K; ++i) (*x)[r * K + i] /= std::sqrt(ss);
      }
  }
  p.beta.resize(T * HV);
  for (auto& b : p.beta) b = 1.0f / (1.0f + std::exp(-normal(rng)));
  const int64_t ng = shape.decay == DeltaDecay::PerKey ? T * HV * K : T * HV;
  p.g.resize(ng);
  for (auto& x : p.g) {
    if (gates == Gates::Zero) x = 0.0f;
    else if (gates == Gates::Strong) x = std::min(0.0f, -20.0f + normal(rng));
    else x = -std::log1p(std::exp(-normal(rng)));  // logsigmoid
  }
  for (int64_t s = 0; s < p.n_seqs(); ++s) {
    std::vector<float> st;
    fill(st, HV * V * K);
    for (auto& e : st) e *= 0.5f;
    p.states0.push_back(st);
  }
  return p;
}

struct Result {
  std::vector<double> o;
  std::vector<std::vector<double>> states;
};

Result run_reference(const Problem& p) {
  Result r;
  r.o.assign(p.T() * p.shape.HV * p.shape.V, 0.0);
  std::vector<double*> ptrs;
  for (const auto& s : p.states0) r.states.emplace_back(s.begin(), s.end());
  for (auto& s : r.states) ptrs.push_back(s.data());
  reference::delta_rule(p.shape, p.inputs(), p.offsets, ptrs, r.o.data());
  return r;
}

Result to_result(const std::vector<float>& o, const std::vector<std::vector<float>>& states) {
  Result r;
  r.o.assign(o.begin(), o.end());
  for (const auto& s : states) r.states.emplace_back(s.begin(), s.end());
  return r;
}

Result run_prefill(const Problem& p, DeltaPrefillOptions opt, SimdLevel level = simd_level()) {
  std::vector<float> o(p.T() * p.shape.HV * p.shape.V);
  auto states = p.states0;
  std::vector<float*> ptrs;
  for (auto& s : states) ptrs.push_back(s.data());
  delta_rule_prefill(p.shape, p.inputs(), p.offsets, ptrs, o.data(), opt, level);
  return to_result(o, states);
}

// Token by token: at step t, one batched call over every sequence that still has a token t.
Result run_steps(const Problem& p, SimdLevel level = simd_level()) {
  const auto& s = p.shape;
  const int64_t HK = s.H * s.K, HVV = s.HV * s.V, gw = s.decay == DeltaDecay::PerKey ? s.HV * s.K : s.HV;
  std::vector<float> o(p.T() * HVV);
  auto states = p.states0;
  int64_t longest = 0;
  for (int64_t i = 0; i < p.n_seqs(); ++i) longest = std::max(longest, p.offsets[i + 1] - p.offsets[i]);
  for (int64_t t = 0; t < longest; ++t) {
    std::vector<float> q, k, v, beta, g, out;
    std::vector<float*> ptrs;
    std::vector<int64_t> rows;
    for (int64_t i = 0; i < p.n_seqs(); ++i) {
      const int64_t row = p.offsets[i] + t;
      if (row >= p.offsets[i + 1]) continue;
      rows.push_back(row);
      ptrs.push_back(states[i].data());
      q.insert(q.end(), p.q.begin() + row * HK, p.q.begin() + (row + 1) * HK);
      k.insert(k.end(), p.k.begin() + row * HK, p.k.begin() + (row + 1) * HK);
      v.insert(v.end(), p.v.begin() + row * HVV, p.v.begin() + (row + 1) * HVV);
      beta.insert(beta.end(), p.beta.begin() + row * s.HV, p.beta.begin() + (row + 1) * s.HV);
      g.insert(g.end(), p.g.begin() + row * gw, p.g.begin() + (row + 1) * gw);
    }
    out.resize(rows.size() * HVV);
    DeltaRuleInputs in{q.data(), k.data(), v.data(), beta.data(), g.data()};
    delta_rule_step(s, in, ptrs, out.data(), level);
    for (size_t b = 0; b < rows.size(); ++b)
      std::copy(out.begin() + b * HVV, out.begin() + (b + 1) * HVV, o.begin() + rows[b] * HVV);
  }
  return to_result(o, states);
}

double rel_err(const std::vector<double>& x, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!std::isfinite(x[i])) return INFINITY;
    num += (x[i] - ref[i]) * (x[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

void expect_close(const Result& got, const Result& ref, double tol, const std::string& what) {
  EXPECT_LT(rel_err(got.o, ref.o), tol) << what << ": outputs";
  ASSERT_EQ(got.states.size(), ref.states.size());
  for (size_t i = 0; i < ref.states.size(); ++i)
    EXPECT_LT(rel_err(got.states[i], ref.states[i]), tol) << what << ": final state of sequence " << i;
}

const char* decay_name(DeltaDecay d) {
  return d == DeltaDecay::None ? "DeltaNet" : d == DeltaDecay::Scalar ? "GDN" : "KDA";
}

const DeltaPrefillOptions kRecurrent{DeltaPrefillForm::Recurrent, 0};
DeltaPrefillOptions chunked(int c) { return {DeltaPrefillForm::Chunked, c}; }

// Every form against the reference: one batch holding T = 1, 63, 64, 65 and 1000.
void check_all_forms(const Problem& p, double tol) {
  const Result ref = run_reference(p);
  expect_close(run_steps(p), ref, tol, "step");
  expect_close(run_prefill(p, kRecurrent), ref, tol, "recurrent prefill");
  for (int c : {16, 64}) expect_close(run_prefill(p, chunked(c)), ref, tol, "chunked prefill C=" + std::to_string(c));
  expect_close(run_prefill(p, {}), ref, tol, "default prefill");
}

class DeltaRuleDims : public ::testing::TestWithParam<std::tuple<DeltaDecay, int>> {};

TEST_P(DeltaRuleDims, AllFormsMatchReference) {
  const auto [decay, d] = GetParam();
  DeltaRuleShape shape{.H = 2, .HV = 4, .K = d, .V = d, .decay = decay, .l2norm_qk = true};
  check_all_forms(make_problem(shape, {1, 63, 64, 65, 1000}, Gates::Random, 7 + d), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Kernels, DeltaRuleDims,
                         ::testing::Combine(::testing::Values(DeltaDecay::None, DeltaDecay::Scalar,
                                                              DeltaDecay::PerKey),
                                            ::testing::Values(32, 64, 128)),
                         [](const auto& info) {
                           return std::string(decay_name(std::get<0>(info.param))) + "_d" +
                                  std::to_string(std::get<1>(info.param));
                         });

class DeltaRuleDecay : public ::testing::TestWithParam<DeltaDecay> {};

TEST_P(DeltaRuleDecay, CallerNormalisedQkAndExplicitScale) {
  DeltaRuleShape shape{.H = 1, .HV = 3, .K = 64, .V = 32, .decay = GetParam(), .l2norm_qk = false, .scale = 0.3f};
  check_all_forms(make_problem(shape, {5, 130, 17}, Gates::Random, 11), 1e-5);
}

class DeltaRuleGated : public ::testing::TestWithParam<DeltaDecay> {};

TEST_P(DeltaRuleGated, StrongAndZeroDecay) {
  DeltaRuleShape shape{.H = 2, .HV = 4, .K = 64, .V = 64, .decay = GetParam(), .l2norm_qk = true};
  for (Gates gates : {Gates::Strong, Gates::Zero}) {
    SCOPED_TRACE(gates == Gates::Strong ? "g ~ -20" : "g = 0");
    check_all_forms(make_problem(shape, {70, 3, 129}, gates, 5), 1e-5);
  }
}

INSTANTIATE_TEST_SUITE_P(Kernels, DeltaRuleGated, ::testing::Values(DeltaDecay::Scalar, DeltaDecay::PerKey),
                         [](const auto& info) { return std::string(decay_name(info.param)); });

TEST_P(DeltaRuleDecay, OddHeadDims) {  // not multiples of 8: the 1-wide build
  DeltaRuleShape shape{.H = 1, .HV = 2, .K = 36, .V = 20, .decay = GetParam(), .l2norm_qk = true};
  check_all_forms(make_problem(shape, {1, 40, 77}, Gates::Random, 3), 1e-5);
}

TEST_P(DeltaRuleDecay, SplitPrefillEqualsWholePrefill) {
  DeltaRuleShape shape{.H = 2, .HV = 4, .K = 32, .V = 64, .decay = GetParam(), .l2norm_qk = true};
  const Problem p = make_problem(shape, {300, 150}, Gates::Random, 21);
  std::mt19937 rng(4);
  for (DeltaPrefillOptions opt : {kRecurrent, chunked(16), chunked(64)}) {
    const Result whole = run_prefill(p, opt);
    for (int trial = 0; trial < 3; ++trial) {
      // cut every sequence at its own random point; run both halves as two batched calls
      std::vector<int64_t> cuts;
      for (int64_t i = 0; i < p.n_seqs(); ++i)
        cuts.push_back(std::uniform_int_distribution<int64_t>(0, p.offsets[i + 1] - p.offsets[i])(rng));
      Problem a = p, b = p;
      a.offsets = b.offsets = {0};
      for (auto* x : {&a.q, &a.k, &a.v, &a.beta, &a.g, &b.q, &b.k, &b.v, &b.beta, &b.g}) x->clear();
      const int64_t HK = shape.H * shape.K, HVV = shape.HV * shape.V;
      const int64_t gw = shape.decay == DeltaDecay::PerKey ? shape.HV * shape.K : shape.HV;
      auto take = [&](Problem& dst, int64_t from, int64_t to) {
        auto copy = [&](const std::vector<float>& src, std::vector<float>& d, int64_t w) {
          d.insert(d.end(), src.begin() + from * w, src.begin() + to * w);
        };
        copy(p.q, dst.q, HK);
        copy(p.k, dst.k, HK);
        copy(p.v, dst.v, HVV);
        copy(p.beta, dst.beta, shape.HV);
        copy(p.g, dst.g, gw);
        dst.offsets.push_back(dst.offsets.back() + to - from);
      };
      for (int64_t i = 0; i < p.n_seqs(); ++i) {
        take(a, p.offsets[i], p.offsets[i] + cuts[i]);
        take(b, p.offsets[i] + cuts[i], p.offsets[i + 1]);
      }
      const Result ra = run_prefill(a, opt);
      for (int64_t i = 0; i < p.n_seqs(); ++i) b.states0[i].assign(ra.states[i].begin(), ra.states[i].end());
      const Result rb = run_prefill(b, opt);
      // reassemble the outputs in the original token order
      std::vector<double> o;
      for (int64_t i = 0; i < p.n_seqs(); ++i) {
        o.insert(o.end(), ra.o.begin() + a.offsets[i] * HVV, ra.o.begin() + a.offsets[i + 1] * HVV);
        o.insert(o.end(), rb.o.begin() + b.offsets[i] * HVV, rb.o.begin() + b.offsets[i + 1] * HVV);
      }
      expect_close({o, rb.states}, whole, 1e-5, "split at " + std::to_string(cuts[0]) + "/" + std::to_string(cuts[1]));
    }
  }
}

TEST_P(DeltaRuleDecay, StepEqualsPrefill) {
  DeltaRuleShape shape{.H = 1, .HV = 2, .K = 128, .V = 128, .decay = GetParam(), .l2norm_qk = true};
  const Problem p = make_problem(shape, {90, 33}, Gates::Random, 8);
  const Result steps = run_steps(p);
  expect_close(run_prefill(p, kRecurrent), steps, 1e-5, "recurrent prefill vs steps");
  expect_close(run_prefill(p, chunked(32)), steps, 1e-5, "chunked prefill vs steps");
}

TEST_P(DeltaRuleDecay, Avx2EqualsPortable) {
  if (!cpu_supports(SimdLevel::Avx2)) GTEST_SKIP() << "this CPU cannot run the avx2 kernels";
  DeltaRuleShape shape{.H = 2, .HV = 4, .K = 64, .V = 128, .decay = GetParam(), .l2norm_qk = true};
  const Problem p = make_problem(shape, {1, 65, 200}, Gates::Random, 9);
  expect_close(run_steps(p, SimdLevel::Avx2), run_steps(p, SimdLevel::Scalar), 1e-5, "step");
  for (DeltaPrefillOptions opt : {kRecurrent, chunked(16)})
    expect_close(run_prefill(p, opt, SimdLevel::Avx2), run_prefill(p, opt, SimdLevel::Scalar), 1e-5, "prefill");
}

// 100,000 tokens through one small head: the float32 recurrence must not drift from float64.
TEST_P(DeltaRuleDecay, HundredThousandTokensStayClose) {
  DeltaRuleShape shape{.H = 1, .HV = 1, .K = 32, .V = 32, .decay = GetParam(), .l2norm_qk = true};
  const Problem p = make_problem(shape, {100000}, Gates::Random, 100);
  const Result ref = run_reference(p);
  expect_close(run_prefill(p, {}), ref, 1e-3, "default prefill");
  expect_close(run_prefill(p, chunked(64)), ref, 1e-3, "chunked prefill");
}

INSTANTIATE_TEST_SUITE_P(Kernels, DeltaRuleDecay,
                         ::testing::Values(DeltaDecay::None, DeltaDecay::Scalar, DeltaDecay::PerKey),
                         [](const auto& info) { return std::string(decay_name(info.param)); });

TEST(DeltaRule, RejectsBadArguments) {
  DeltaRuleShape shape{.H = 2, .HV = 3, .K = 8, .V = 8, .decay = DeltaDecay::Scalar};
  std::vector<float> x(64, 0.0f), state(3 * 64, 0.0f), o(64);
  std::vector<float*> states = {state.data()};
  DeltaRuleInputs in{x.data(), x.data(), x.data(), x.data(), x.data()};
  std::vector<int64_t> offsets = {0, 1};
  EXPECT_THROW(delta_rule_step(shape, in, states, o.data()), Error);  // HV % H != 0
  shape.H = 1;
  in.g = nullptr;
  EXPECT_THROW(delta_rule_step(shape, in, states, o.data()), Error);  // GDN without g
  in.g = x.data();
  EXPECT_THROW(delta_rule_prefill(shape, in, std::vector<int64_t>{0, 1, 2}, states, o.data()), Error);
  EXPECT_THROW(delta_rule_prefill(shape, in, offsets, states, o.data(), chunked(65)), Error);
  EXPECT_NO_THROW(delta_rule_prefill(shape, in, offsets, states, o.data()));
}

}  // namespace
