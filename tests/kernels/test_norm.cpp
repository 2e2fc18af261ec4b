// kernels/cpu/norm.h against kernels/reference/norm.h: every variant, row widths around the vector
// width, per-head use (many short rows), in place, every SIMD path.
#include <gtest/gtest.h>

#include "dense_test_util.h"
#include "kernels/cpu/norm.h"
#include "kernels/reference/norm.h"
#include "linfer/core/error.h"

using namespace linfer;
using namespace linfer::kernels;
using namespace dense_test;

namespace {

constexpr int64_t kWidths[] = {1, 7, 16, 63, 65, 128, 257, 2048};

struct Data {
  std::vector<float> x, gate, w;
};

Data make(int64_t rows, int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  return {random_vec(rng, size_t(rows * n), 2.0f), random_vec(rng, size_t(rows * n), 2.0f),
          random_vec(rng, size_t(n), 0.5f)};
}

class NormPath : public SimdPathTest {};

}  // namespace

TEST_P(NormPath, RmsNormPlainAndOnePlus) {
  for (int64_t n : kWidths) {
    const int64_t rows = 9;
    Data d = make(rows, n, uint32_t(n));
    for (NormWeight mode : {NormWeight::Plain, NormWeight::OnePlus}) {
      for (const float* w : {(const float*)d.w.data(), (const float*)nullptr}) {
        std::vector<float> ref(d.x.size());
        ref::rms_norm(d.x.data(), w, ref.data(), rows, n, 1e-6f, mode);
        std::vector<float> y(d.x.size());
        rms_norm(d.x.data(), w, y.data(), rows, n, 1e-6f, mode, path());
        EXPECT_LT(rel_err(y, ref), 1e-6) << n;
        std::vector<float> inplace = d.x;
        rms_norm(inplace.data(), w, inplace.data(), rows, n, 1e-6f, mode, path());
        EXPECT_EQ(inplace, y);
      }
    }
  }
}

TEST(Norm, EpsMattersForTinyRows) {
  // all-zero and tiny rows: the result is x / sqrt(eps), not NaN
  std::vector<float> x = {0, 0, 0, 0, 1e-6f, -1e-6f, 2e-6f, 0}, ref(8), y(8);
  ref::rms_norm(x.data(), nullptr, ref.data(), 2, 4, 1e-5f, NormWeight::Plain);
  rms_norm(x.data(), nullptr, y.data(), 2, 4, 1e-5f);
  EXPECT_LT(rel_err(y, ref), 1e-6);
  EXPECT_EQ(y[0], 0.0f);
}

TEST_P(NormPath, GatedNormThenGate) {
  for (int64_t n : kWidths) {
    const int64_t rows = 6;  // e.g. T = 3 tokens × 2 heads
    Data d = make(rows, n, uint32_t(100 + n));
    for (GateAct act : {GateAct::Sigmoid, GateAct::Silu}) {
      std::vector<float> ref(d.x.size());
      ref::rms_norm_gated(d.x.data(), d.gate.data(), d.w.data(), ref.data(), rows, n, 1e-5f, act);
      std::vector<float> y(d.x.size());
      rms_norm_gated(d.x.data(), d.gate.data(), d.w.data(), y.data(), rows, n, 1e-5f, act, path());
      EXPECT_LT(rel_err(y, ref), 1e-6) << n;
    }
  }
}

TEST_P(NormPath, GateFirstWholeRowAndGroups) {
  for (int64_t n : {8, 24, 130, 2048}) {
    const int64_t rows = 5;
    Data d = make(rows, n, uint32_t(200 + n));
    for (int64_t groups : {1, 2, 8}) {
      if (n % groups) continue;
      std::vector<float> ref(d.x.size());
      ref::rms_norm_gate_first(d.x.data(), d.gate.data(), d.w.data(), ref.data(), rows, n, n / groups, 1e-5f);
      std::vector<float> y(d.x.size());
      rms_norm_gate_first(d.x.data(), d.gate.data(), d.w.data(), y.data(), rows, n, n / groups, 1e-5f, path());
      EXPECT_LT(rel_err(y, ref), 1e-6) << n << " groups " << groups;
      std::vector<float> inplace = d.x;
      rms_norm_gate_first(inplace.data(), d.gate.data(), d.w.data(), inplace.data(), rows, n, n / groups, 1e-5f,
                          path());
      EXPECT_EQ(inplace, y);
    }
  }
}

TEST(Norm, GateFirstGroupsDifferFromWholeRow) {
  // group-wise differs from whole-row normalisation (the test above can tell them apart)
  Data d = make(1, 16, 1);
  std::vector<float> a(16), b(16);
  rms_norm_gate_first(d.x.data(), d.gate.data(), d.w.data(), a.data(), 1, 16, 16, 1e-5f);
  rms_norm_gate_first(d.x.data(), d.gate.data(), d.w.data(), b.data(), 1, 16, 8, 1e-5f);
  EXPECT_GT(rel_err(a, b), 1e-3);
  EXPECT_THROW(rms_norm_gate_first(d.x.data(), d.gate.data(), d.w.data(), a.data(), 1, 16, 5, 1e-5f), Error);
}

TEST_P(NormPath, L2Norm) {
  for (int64_t n : kWidths) {
    const int64_t rows = 7;
    Data d = make(rows, n, uint32_t(300 + n));
    std::vector<float> ref(d.x.size());
    ref::l2_norm(d.x.data(), ref.data(), rows, n, 1e-6f);
    std::vector<float> y(d.x.size());
    l2_norm(d.x.data(), y.data(), rows, n, 1e-6f, path());
    EXPECT_LT(rel_err(y, ref), 1e-6) << n;
  }
}

INSTANTIATE_TEST_SUITE_P(Simd, NormPath, SimdPaths(), SimdPathName);
