#include "kernels/reference/norm.h"

#include <cmath>
#include <vector>

#include "kernels/reference/activation.h"
#include "linfer/core/error.h"

namespace linfer::kernels::ref {

// 1 / sqrt(mean(x²) + eps) over n values.
static double inv_rms(const double* x, int64_t n, double eps) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += x[i] * x[i];
  return 1.0 / std::sqrt(ss / double(n) + eps);
}

void rms_norm(const float* x, const float* w, float* y, int64_t rows, int64_t n, float eps, NormWeight mode) {
  std::vector<double> h(n);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < n; ++i) h[i] = x[r * n + i];
    const double s = inv_rms(h.data(), n, eps);
    for (int64_t i = 0; i < n; ++i) {
      const double wi = !w ? 1.0 : mode == NormWeight::OnePlus ? 1.0 + double(w[i]) : double(w[i]);
      y[r * n + i] = float(h[i] * s * wi);
    }
  }
}

void rms_norm_gated(const float* x, const float* gate, const float* w, float* y, int64_t rows, int64_t n,
                    float eps, GateAct act) {
  std::vector<double> h(n);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < n; ++i) h[i] = x[r * n + i];
    const double s = inv_rms(h.data(), n, eps);
    for (int64_t i = 0; i < n; ++i) {
      const double g = gate[r * n + i];
      const double a = act == GateAct::Sigmoid ? sigmoid(g) : silu(g);
      y[r * n + i] = float(h[i] * s * (w ? double(w[i]) : 1.0) * a);
    }
  }
}

void rms_norm_gate_first(const float* x, const float* z, const float* w, float* y, int64_t rows, int64_t n,
                         int64_t group, float eps) {
  LINFER_CHECK(group > 0 && n % group == 0, "rms_norm_gate_first: group {} does not divide width {}", group, n);
  std::vector<double> h(n);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < n; ++i) h[i] = double(x[r * n + i]) * silu(double(z[r * n + i]));
    for (int64_t g0 = 0; g0 < n; g0 += group) {
      const double s = inv_rms(h.data() + g0, group, eps);
      for (int64_t i = g0; i < g0 + group; ++i) y[r * n + i] = float(h[i] * s * (w ? double(w[i]) : 1.0));
    }
  }
}

void l2_norm(const float* x, float* y, int64_t rows, int64_t n, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int64_t i = 0; i < n; ++i) ss += double(x[r * n + i]) * x[r * n + i];
    const double s = 1.0 / std::sqrt(ss + eps);
    for (int64_t i = 0; i < n; ++i) y[r * n + i] = float(x[r * n + i] * s);
  }
}

}  // namespace linfer::kernels::ref
