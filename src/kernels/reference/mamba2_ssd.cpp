#include "kernels/reference/mamba2_ssd.h"

#include <algorithm>
#include <cmath>

namespace linfer::kernels::ref {

void mamba2_ssd(const Mamba2Dims& d, const Mamba2Params& p, const Mamba2Inputs& in, std::span<const int64_t> offsets,
                std::span<double* const> states, double* y) {
  const int64_t H = d.H, P = d.P, N = d.N, G = d.G;
  const int64_t xs = in.x_stride ? in.x_stride : H * P, ds = in.dt_stride ? in.dt_stride : H;
  const int64_t bs = in.B_stride ? in.B_stride : G * N, cs = in.C_stride ? in.C_stride : G * N;
  for (size_t seq = 0; seq + 1 < offsets.size(); ++seq) {
    for (int64_t t = offsets[seq]; t < offsets[seq + 1]; ++t) {
      for (int64_t h = 0; h < H; ++h) {
        const int64_t g = h / (H / G);  // heads share B and C within a group
        const double raw = double(in.dt[t * ds + h]) + p.dt_bias[h];
        const double sp = raw > 20.0 ? raw : std::log1p(std::exp(raw));
        const double dt = std::clamp(sp, double(p.dt_min), double(p.dt_max));
        const double A = -std::exp(double(p.A_log[h]));
        const double dA = std::exp(dt * A);
        const float* x = in.x + t * xs + h * P;
        const float* B = in.B + t * bs + g * N;
        const float* C = in.C + t * cs + g * N;
        const double D = p.D ? p.D[h] : 0.0;
        double* S = states[seq] + h * P * N;
        for (int64_t i = 0; i < P; ++i) {
          double acc = 0.0;
          for (int64_t n = 0; n < N; ++n) {
            S[i * N + n] = S[i * N + n] * dA + dt * B[n] * x[i];
            acc += S[i * N + n] * C[n];
          }
          y[(t * H + h) * P + i] = acc + D * x[i];
        }
      }
    }
  }
}

}  // namespace linfer::kernels::ref
