#include "kernels/cpu/rope.h"

#include <cmath>
#include <vector>

#include "linfer/core/error.h"
#include "linfer/core/thread_pool.h"

namespace linfer::kernels {

std::vector<float> rope_inv_freq(int64_t rotary_dim, double theta) {
  LINFER_CHECK(rotary_dim > 0 && rotary_dim % 2 == 0, "rope: rotary_dim must be even and positive, got {}",
               rotary_dim);
  std::vector<float> inv(size_t(rotary_dim / 2));
  for (int64_t i = 0; i < rotary_dim / 2; ++i) {
    const float exponent = float(2 * i) / float(rotary_dim);  // float32 as torch computes it
    inv[i] = 1.0f / float(std::pow(double(float(theta)), double(exponent)));
  }
  return inv;
}

// Cheap next to the projections around it: plain loops (the compiler vectorises the pair updates).
void rope(float* x, int64_t T, int64_t H, int64_t D, int64_t rotary_dim, std::span<const int64_t> positions,
          std::span<const float> inv_freq, SimdLevel) {
  LINFER_CHECK(rotary_dim % 2 == 0 && rotary_dim <= D && int64_t(inv_freq.size()) == rotary_dim / 2,
               "rope: rotary_dim {} (head dim {}) needs {} inverse frequencies, got {}", rotary_dim, D,
               rotary_dim / 2, inv_freq.size());
  LINFER_CHECK(int64_t(positions.size()) >= T, "rope: {} positions for {} tokens", positions.size(), T);
  const int64_t half = rotary_dim / 2;
  parallel_for(0, T, [&](int64_t t0, int64_t t1) {
    thread_local std::vector<float> cs, sn;  // this worker's, reused: decode allocates nothing
    cs.resize(static_cast<size_t>(half)), sn.resize(static_cast<size_t>(half));
    for (int64_t t = t0; t < t1; ++t) {
      for (int64_t i = 0; i < half; ++i) {
        const float angle = float(positions[t]) * inv_freq[i];
        cs[i] = float(std::cos(double(angle)));
        sn[i] = float(std::sin(double(angle)));
      }
      for (int64_t h = 0; h < H; ++h) {
        float* a = x + (t * H + h) * D;
        float* b = a + half;
        for (int64_t i = 0; i < half; ++i) {
          const float x1 = a[i], x2 = b[i];
          a[i] = x1 * cs[i] - x2 * sn[i];
          b[i] = x2 * cs[i] + x1 * sn[i];
        }
      }
    }
  }, 16);
}

}  // namespace linfer::kernels
