#include "kernels/reference/feature_maps.h"

#include <cmath>

namespace linfer::kernels::ref {

double feature_map(FeatureMap f, double x) {
  switch (f) {
    case FeatureMap::Identity: return x;
    case FeatureMap::EluPlusOne: return x > 0.0 ? x + 1.0 : std::exp(x);  // elu(x) + 1
    case FeatureMap::Relu: return x > 0.0 ? x : 0.0;
  }
  return x;
}

void performer_features(const float* w, int64_t d, int64_t m, const float* x, double* phi) {
  const double pre = std::pow(double(d), -0.25);
  double half_sq = 0.0;
  for (int64_t c = 0; c < d; ++c) half_sq += 0.5 * (pre * x[c]) * (pre * x[c]);
  for (int64_t i = 0; i < m; ++i) {
    double dot = 0.0;
    for (int64_t c = 0; c < d; ++c) dot += double(w[i * d + c]) * pre * x[c];
    phi[i] = std::exp(dot - half_sq) / std::sqrt(double(m));
  }
}

}  // namespace linfer::kernels::ref
