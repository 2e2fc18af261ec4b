#include "kernels/reference/rope.h"

#include <cmath>
#include <vector>

namespace linfer::kernels::ref {

void rope(float* x, int64_t T, int64_t H, int64_t D, int64_t rotary_dim, std::span<const int64_t> positions,
          std::span<const float> inv_freq) {
  const int64_t half = rotary_dim / 2;
  std::vector<double> rotated(rotary_dim);
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t h = 0; h < H; ++h) {
      float* v = x + (t * H + h) * D;
      for (int64_t i = 0; i < rotary_dim; ++i) {
        const float angle = float(positions[t]) * inv_freq[i % half];
        const double other = i < half ? -double(v[i + half]) : double(v[i - half]);  // rotate_half(x)[i]
        rotated[i] = v[i] * std::cos(double(angle)) + other * std::sin(double(angle));
      }
      for (int64_t i = 0; i < rotary_dim; ++i) v[i] = float(rotated[i]);
    }
  }
}

}  // namespace linfer::kernels::ref
