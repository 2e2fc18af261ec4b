// Mamba2 SSD on the CPU: the recurrence is scalar-decay linear attention (q = C, k = B, v = x,
// beta = dt, g = dt * A, skip = D, B / C groups as q/k heads), so both forms run on the
// linear-attention kernels after this file turns the raw dt into dt and g.
#include "kernels/cpu/mamba2_ssd.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/linear_attn.h"
#include "linfer/core/error.h"

namespace linfer::kernels {
namespace {

void check(const Mamba2Dims& d, const Mamba2Params& p, const Mamba2Inputs& in) {
  LINFER_CHECK(d.H > 0 && d.P > 0 && d.N > 0 && d.G > 0, "mamba2_ssd: dims must be positive (H {}, P {}, N {}, G {})",
               d.H, d.P, d.N, d.G);
  LINFER_CHECK(d.H % d.G == 0, "mamba2_ssd: heads H = {} must be a multiple of groups G = {}", d.H, d.G);
  LINFER_CHECK(p.A_log && p.dt_bias, "mamba2_ssd: A_log and dt_bias are required");
  LINFER_CHECK(in.x && in.dt && in.B && in.C, "mamba2_ssd: x, dt, B and C are required");
  LINFER_CHECK(p.dt_min <= p.dt_max, "mamba2_ssd: time_step_limit ({}, {}) is empty", p.dt_min, p.dt_max);
}

// dt [T, H] and g = dt * A [T, H] from the raw projections (transformers: softplus with threshold 20,
// then clamp to time_step_limit, then dA = exp(dt * A)).
void discretize(const Mamba2Dims& d, const Mamba2Params& p, const Mamba2Inputs& in, int64_t T, float* dt, float* g) {
  const int64_t stride = in.dt_stride ? in.dt_stride : d.H;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < d.H; ++h) {
      const float x = in.dt[t * stride + h] + p.dt_bias[h];
      const float sp = x > 20.0f ? x : std::log1p(std::exp(x));
      const float v = std::clamp(sp, p.dt_min, p.dt_max);
      dt[t * d.H + h] = v;
      g[t * d.H + h] = v * -std::exp(p.A_log[h]);
    }
}

LinearAttnArgs as_linear_attn(const Mamba2Dims& d, const Mamba2Params& p, const Mamba2Inputs& in, const float* dt,
                              const float* g) {
  LinearAttnArgs a;
  a.H = d.G;
  a.HV = d.H;
  a.K = d.N;
  a.V = d.P;
  a.q = in.C;
  a.k = in.B;
  a.v = in.x;
  a.q_stride = in.C_stride;
  a.k_stride = in.B_stride;
  a.v_stride = in.x_stride;
  a.decay = LinearAttnDecay::Scalar;
  a.g = g;
  a.beta = dt;
  a.skip = p.D;
  return a;
}

}  // namespace

void mamba2_ssd_step(const Mamba2Dims& dims, const Mamba2Params& params, const Mamba2Inputs& in,
                     std::span<float* const> states, float* y, SimdLevel level) {
  check(dims, params, in);
  const int64_t n = int64_t(states.size());
  thread_local std::vector<float> dt, g;  // reused: decode allocates nothing
  dt.resize(size_t(n * dims.H)), g.resize(size_t(n * dims.H));
  discretize(dims, params, in, n, dt.data(), g.data());
  linear_attn_step(as_linear_attn(dims, params, in, dt.data(), g.data()), states, {}, y, level);
}

void mamba2_ssd_prefill(const Mamba2Dims& dims, const Mamba2Params& params, const Mamba2Inputs& in,
                        std::span<const int64_t> offsets, std::span<float* const> states, float* y,
                        SimdLevel level) {
  check(dims, params, in);
  LINFER_CHECK(!offsets.empty(), "mamba2_ssd_prefill: offsets must hold n_seqs + 1 entries");
  const int64_t T = offsets.back();
  std::vector<float> dt(T * dims.H), g(T * dims.H);
  discretize(dims, params, in, T, dt.data(), g.data());
  linear_attn_prefill(as_linear_attn(dims, params, in, dt.data(), g.data()), offsets, states, {}, y, level);
}

}  // namespace linfer::kernels
