#pragma once
// Helpers shared by the linear-attention / Mamba2 / Performer kernel tests.

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace linfer::test {

// ‖out − ref‖ / ‖ref‖ (ref = float64 specification); 0 when both are zero.
template <class A, class B>
double rel_err(const std::vector<A>& out, const std::vector<B>& ref) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double d = double(out[i]) - double(ref[i]);
    num += d * d;
    den += double(ref[i]) * double(ref[i]);
  }
  return den == 0.0 ? std::sqrt(num) : std::sqrt(num / den);
}

inline bool all_finite(const std::vector<float>& v) {
  for (float x : v)
    if (!std::isfinite(x)) return false;
  return true;
}

inline std::vector<float> normal(std::mt19937& rng, size_t n, float mean = 0.0f, float sd = 1.0f) {
  std::normal_distribution<float> dist(mean, sd);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

inline std::vector<float> uniform(std::mt19937& rng, size_t n, float lo, float hi) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

inline std::vector<int64_t> offsets_of(const std::vector<int64_t>& lengths) {
  std::vector<int64_t> off{0};
  for (int64_t n : lengths) off.push_back(off.back() + n);
  return off;
}

// Per-sequence float states of `elems` floats each, plus their pointers and float64 copies.
struct States {
  std::vector<std::vector<float>> f;
  std::vector<std::vector<double>> d;
  std::vector<float*> fp;
  std::vector<double*> dp;

  States(size_t n, int64_t elems, std::mt19937& rng, float sd) {
    for (size_t i = 0; i < n; ++i) {
      f.push_back(normal(rng, size_t(elems), 0.0f, sd));
      d.emplace_back(f.back().begin(), f.back().end());
    }
    for (size_t i = 0; i < n; ++i) {
      fp.push_back(f[i].data());
      dp.push_back(d[i].data());
    }
  }
  States(const States&) = delete;  // the pointers refer to this object's buffers
  States& operator=(const States&) = delete;

  // Every sequence's state, concatenated (for one error over the batch).
  std::vector<float> all_f() const {
    std::vector<float> out;
    for (auto& s : f) out.insert(out.end(), s.begin(), s.end());
    return out;
  }
  std::vector<double> all_d() const {
    std::vector<double> out;
    for (auto& s : d) out.insert(out.end(), s.begin(), s.end());
    return out;
  }
};

}  // namespace linfer::test
