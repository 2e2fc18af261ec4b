#include "kernels/cpu/norm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/norm_simd.h"
#include "linfer/core/error.h"
#include "linfer/core/thread_pool.h"

namespace linfer::kernels {
namespace {

float sum_squares(const float* x, int64_t n, SimdLevel level) {
#if LINFER_HWY
  if (level != SimdLevel::Scalar) return hwy_paths::sum_squares(level, x, n);
#endif
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += double(x[i]) * x[i];
  return float(s);
}

float act1(float g, GateAct act) {
  const float sig = 1.0f / (1.0f + std::exp(-g));
  return act == GateAct::Sigmoid ? sig : g * sig;
}

void scale_row(const float* x, float s, const float* w, NormWeight mode, const float* gate, GateAct act, float* y,
               int64_t n, SimdLevel level) {
#if LINFER_HWY
  if (level != SimdLevel::Scalar) return hwy_paths::scale_row(level, x, s, w, mode, gate, act, y, n);
#endif
  for (int64_t i = 0; i < n; ++i) {
    const float wi = !w ? 1.0f : mode == NormWeight::OnePlus ? 1.0f + w[i] : w[i];
    y[i] = x[i] * s * wi * (gate ? act1(gate[i], act) : 1.0f);
  }
}

// Rows are independent; a task gets at least ~16K values.
void for_rows(int64_t rows, int64_t n, FunctionRef<void(int64_t)> row_fn) {  // no std::function: no allocation
  parallel_for(0, rows, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) row_fn(r);
  }, std::max<int64_t>(1, 16384 / std::max<int64_t>(n, 1)));
}

}  // namespace

void rms_norm(const float* x, const float* w, float* y, int64_t rows, int64_t n, float eps, NormWeight mode,
              SimdLevel level) {
  for_rows(rows, n, [&](int64_t r) {
    const float s = 1.0f / std::sqrt(sum_squares(x + r * n, n, level) / float(n) + eps);
    scale_row(x + r * n, s, w, mode, nullptr, GateAct::Sigmoid, y + r * n, n, level);
  });
}

void rms_norm_gated(const float* x, const float* gate, const float* w, float* y, int64_t rows, int64_t n, float eps,
                    GateAct act, SimdLevel level) {
  for_rows(rows, n, [&](int64_t r) {
    const float s = 1.0f / std::sqrt(sum_squares(x + r * n, n, level) / float(n) + eps);
    scale_row(x + r * n, s, w, NormWeight::Plain, gate + r * n, act, y + r * n, n, level);
  });
}

void rms_norm_gate_first(const float* x, const float* z, const float* w, float* y, int64_t rows, int64_t n,
                         int64_t group, float eps, SimdLevel level) {
  LINFER_CHECK(group > 0 && n % group == 0, "rms_norm_gate_first: group {} does not divide width {}", group, n);
  for_rows(rows, n, [&](int64_t r) {
    float* h = y + r * n;  // h = x · silu(z) is built in y (x and y may alias: elementwise)
#if LINFER_HWY
    if (level != SimdLevel::Scalar) hwy_paths::gate_silu(level, x + r * n, z + r * n, h, n);
    else
#endif
      for (int64_t i = 0; i < n; ++i) h[i] = x[r * n + i] * act1(z[r * n + i], GateAct::Silu);
    for (int64_t g0 = 0; g0 < n; g0 += group) {
      const float s = 1.0f / std::sqrt(sum_squares(h + g0, group, level) / float(group) + eps);
      scale_row(h + g0, s, w ? w + g0 : nullptr, NormWeight::Plain, nullptr, GateAct::Sigmoid, h + g0, group, level);
    }
  });
}

void l2_norm(const float* x, float* y, int64_t rows, int64_t n, float eps, SimdLevel level) {
  for_rows(rows, n, [&](int64_t r) {
    const float s = 1.0f / std::sqrt(sum_squares(x + r * n, n, level) + eps);
    scale_row(x + r * n, s, nullptr, NormWeight::Plain, nullptr, GateAct::Sigmoid, y + r * n, n, level);
  });
}

}  // namespace linfer::kernels
