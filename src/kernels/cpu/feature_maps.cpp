#include "kernels/cpu/feature_maps.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "linfer/core/error.h"

namespace linfer::kernels {

void apply_feature_map(FeatureMap f, float* x, int64_t n) {
  switch (f) {
    case FeatureMap::Identity: return;
    case FeatureMap::EluPlusOne:
      for (int64_t i = 0; i < n; ++i) x[i] = x[i] > 0.0f ? x[i] + 1.0f : std::exp(x[i]);
      return;
    case FeatureMap::Relu:
      for (int64_t i = 0; i < n; ++i) x[i] = std::max(x[i], 0.0f);
      return;
  }
}

namespace {

// Standard normal draws from a fixed engine and Box-Muller, so a seed gives the same features with
// every standard library (std::normal_distribution's algorithm is unspecified).
class Gaussian {
 public:
  explicit Gaussian(uint64_t seed) : rng_(seed) {}
  double operator()() {
    constexpr double kTwoPi = 6.283185307179586;
    const double u1 = (double(rng_() >> 11) + 1.0) * 0x1.0p-53;  // (0, 1]
    const double u2 = double(rng_() >> 11) * 0x1.0p-53;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(kTwoPi * u2);
  }

 private:
  std::mt19937_64 rng_;
};

// A d×d matrix with orthonormal rows: Gram-Schmidt (twice, for float64 orthogonality) on Gaussian
// rows, which is the Q of a QR with positive diag(R): Haar-distributed.
std::vector<double> orthogonal_block(int64_t d, Gaussian& gauss) {
  std::vector<double> q(d * d);
  for (auto& x : q) x = gauss();
  for (int64_t i = 0; i < d; ++i) {
    double* row = q.data() + i * d;
    for (int pass = 0; pass < 2; ++pass)
      for (int64_t j = 0; j < i; ++j) {
        const double* prev = q.data() + j * d;
        double dot = 0.0;
        for (int64_t c = 0; c < d; ++c) dot += row[c] * prev[c];
        for (int64_t c = 0; c < d; ++c) row[c] -= dot * prev[c];
      }
    double norm = 0.0;
    for (int64_t c = 0; c < d; ++c) norm += row[c] * row[c];
    norm = std::sqrt(norm);
    for (int64_t c = 0; c < d; ++c) row[c] /= norm;
  }
  return q;
}

}  // namespace

PerformerFeatures::PerformerFeatures(int64_t d, int64_t m, uint64_t seed, PerformerScaling scaling)
    : d_(d), m_(m), w_(m * d) {
  LINFER_CHECK(d > 0 && m > 0, "Performer features: d = {} and m = {} must be positive", d, m);
  Gaussian gauss(seed);
  double max_norm2 = 0.0;
  for (int64_t r0 = 0; r0 < m; r0 += d) {
    const std::vector<double> block = orthogonal_block(d, gauss);
    for (int64_t i = 0; i < d && r0 + i < m; ++i) {
      double norm = std::sqrt(double(d));
      if (scaling == PerformerScaling::Chi) {
        double s = 0.0;
        for (int64_t c = 0; c < d; ++c) {
          const double g = gauss();
          s += g * g;
        }
        norm = std::sqrt(s);
      }
      for (int64_t c = 0; c < d; ++c) w_[(r0 + i) * d + c] = float(norm * block[i * d + c]);
      max_norm2 = std::max(max_norm2, norm * norm);
    }
  }
  key_shift_ = float(std::max(0.0, max_norm2 / 2.0 - 60.0));
}

void PerformerFeatures::map(const float* x, int64_t rows, int64_t stride, float* phi, PerformerRole role) const {
  const float pre = float(std::pow(double(d_), -0.25));
  const float norm = float(1.0 / std::sqrt(double(m_)));
  std::vector<float> xs(d_);
  for (int64_t r = 0; r < rows; ++r) {
    float half_sq = 0.0f;
    for (int64_t c = 0; c < d_; ++c) {
      xs[c] = pre * x[r * stride + c];
      half_sq += 0.5f * xs[c] * xs[c];
    }
    float* out = phi + r * m_;
    for (int64_t i = 0; i < m_; ++i) {
      const float* w = w_.data() + i * d_;
      float dot = 0.0f;
      for (int64_t c = 0; c < d_; ++c) dot += w[c] * xs[c];
      out[i] = dot - half_sq;
    }
    float shift = 0.0f;
    if (role == PerformerRole::Query) shift = *std::max_element(out, out + m_);
    if (role == PerformerRole::Key) shift = key_shift_;
    for (int64_t i = 0; i < m_; ++i) out[i] = norm * std::exp(out[i] - shift);
  }
}

}  // namespace linfer::kernels
