#pragma once
// Helpers shared by the dense-kernel tests (test_matmul.cpp, test_norm.cpp, ...): random data,
// the relative-RMS metric ‖out − ref‖ / ‖ref‖, and the SIMD levels this CPU can run.

#include <cmath>
#include <random>
#include <vector>

#include "linfer/core/cpu_features.h"
#include "linfer/core/dtype.h"

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

// Scalar always; AVX2 / AVX-512 where this CPU has them.
inline std::vector<linfer::SimdLevel> simd_levels() {
  std::vector<linfer::SimdLevel> levels;
  for (auto l : {linfer::SimdLevel::Scalar, linfer::SimdLevel::Avx2, linfer::SimdLevel::Avx512})
    if (l <= linfer::simd_level()) levels.push_back(l);
  return levels;
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

}  // namespace dense_test
