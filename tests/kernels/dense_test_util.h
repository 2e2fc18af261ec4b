#pragma once
// Helpers shared by the dense-kernel tests (test_matmul.cpp, test_norm.cpp, ...): random data,
// the relative-RMS metric ‖out − ref‖ / ‖ref‖, and a fixture that runs a suite once per SIMD path.

#include <gtest/gtest.h>

#include <cmath>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "linfer/core/cpu_features.h"
#include "linfer/core/dtype.h"
#include "linfer/core/quant_activations.h"

namespace linfer {
// gtest prints a parameter as this (found by argument-dependent lookup), not as raw bytes.
inline void PrintTo(SimdLevel level, std::ostream* os) { *os << simd_level_name(level); }
}  // namespace linfer

namespace dense_test {

inline std::vector<float> random_vec(std::mt19937& rng, size_t n, float scale = 1.0f) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

inline double rel_err(const std::vector<float>& out, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double d = double(out[i]) - ref[i];
    num += d * d;
    den += double(ref[i]) * ref[i];
  }
  if (den == 0) return std::sqrt(num);
  return std::sqrt(num / den);
}

// A suite run once per SIMD path linfer has kernels for, each row named after the path it calls:
//   class MatmulPath : public SimdPathTest {};
//   TEST_P(MatmulPath, Sizes) { kernels::matmul(..., path()); }        // MatmulPath.Sizes/avx2
//   INSTANTIATE_TEST_SUITE_P(Simd, MatmulPath, SimdPaths(), SimdPathName);
// A path this CPU cannot run is skipped with a message, never silently replaced by another.
class SimdPathTest : public ::testing::TestWithParam<linfer::SimdLevel> {
 protected:
  void SetUp() override {
    if (!linfer::cpu_supports(path()))
      GTEST_SKIP() << "this CPU cannot run the " << linfer::simd_level_name(path()) << " kernels";
  }
  linfer::SimdLevel path() const { return GetParam(); }
};

inline auto SimdPaths() { return ::testing::ValuesIn(linfer::kSimdLevels); }
inline std::string SimdPathName(const ::testing::TestParamInfo<linfer::SimdLevel>& info) {
  return linfer::simd_level_name(info.param);
}

// n float32 values stored as `t` (bytes), and the float32 values they represent.
struct StoredWeights {
  std::vector<uint8_t> bytes;
  std::vector<float> values;
};

inline StoredWeights store_as(linfer::DType t, const std::vector<float>& v) {
  StoredWeights s;
  s.bytes.resize(v.size() * linfer::dtype_size(t));
  linfer::from_f32(t, v.data(), s.bytes.data(), v.size());
  s.values.resize(v.size());
  linfer::to_f32(t, s.bytes.data(), s.values.data(), v.size());
  return s;
}

// Sets the process-wide activations setting for a test and restores float32 however the test ends.
struct ActivationsGuard {
  explicit ActivationsGuard(linfer::QuantActivations a) { linfer::set_quant_activations(a); }
  ~ActivationsGuard() { linfer::set_quant_activations(linfer::QuantActivations::F32); }
};

}  // namespace dense_test
