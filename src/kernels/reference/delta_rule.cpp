#include "kernels/reference/delta_rule.h"

#include <cmath>
#include <vector>

namespace linfer::kernels::reference {

// x / sqrt(sum(x²) + 1e-6), the normalisation transformers applies to q and k.
static std::vector<double> l2_normalised(const float* x, int64_t n) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += double(x[i]) * x[i];
  double inv = 1.0 / std::sqrt(ss + 1e-6);
  std::vector<double> y(n);
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * inv;
  return y;
}

static std::vector<double> as_double(const float* x, int64_t n) { return std::vector<double>(x, x + n); }

void delta_rule(const DeltaRuleShape& s, const DeltaRuleInputs& in, std::span<const int64_t> offsets,
                std::span<double* const> states, double* o) {
  const int64_t K = s.K, V = s.V, group = s.HV / s.H;
  const int64_t qs = in.q_stride ? in.q_stride : s.H * K;
  const int64_t ks = in.k_stride ? in.k_stride : s.H * K;
  const int64_t vs = in.v_stride ? in.v_stride : s.HV * V;
  const double scale = delta_rule_scale(s);

  for (size_t seq = 0; seq + 1 < offsets.size(); ++seq) {
    for (int64_t t = offsets[seq]; t < offsets[seq + 1]; ++t) {
      for (int64_t hv = 0; hv < s.HV; ++hv) {
        const int64_t h = hv / group;
        const float* qf = in.q + t * qs + h * K;
        const float* kf = in.k + t * ks + h * K;
        std::vector<double> q = s.l2norm_qk ? l2_normalised(qf, K) : as_double(qf, K);
        std::vector<double> k = s.l2norm_qk ? l2_normalised(kf, K) : as_double(kf, K);
        const float* v = in.v + t * vs + hv * V;
        const double beta = in.beta[t * s.HV + hv];
        double* S = states[seq] + hv * V * K;  // S[v * K + k] = S[k][v]

        // decay: α = exp(g), one per head (GDN) or one per key channel (KDA)
        std::vector<double> alpha(K, 1.0);
        if (s.decay == DeltaDecay::Scalar)
          alpha.assign(K, std::exp(double(in.g[t * s.HV + hv])));
        else if (s.decay == DeltaDecay::PerKey)
          for (int64_t i = 0; i < K; ++i) alpha[i] = std::exp(double(in.g[(t * s.HV + hv) * K + i]));
        for (int64_t j = 0; j < V; ++j)
          for (int64_t i = 0; i < K; ++i) S[j * K + i] *= alpha[i];

        // u = β (v - Sᵀk);  S += k uᵀ
        for (int64_t j = 0; j < V; ++j) {
          double sk = 0;
          for (int64_t i = 0; i < K; ++i) sk += S[j * K + i] * k[i];
          const double u = beta * (v[j] - sk);
          for (int64_t i = 0; i < K; ++i) S[j * K + i] += k[i] * u;
        }

        // o = Sᵀ (scale q)
        double* out = o + (t * s.HV + hv) * V;
        for (int64_t j = 0; j < V; ++j) {
          double acc = 0;
          for (int64_t i = 0; i < K; ++i) acc += S[j * K + i] * q[i];
          out[j] = scale * acc;
        }
      }
    }
  }
}

}  // namespace linfer::kernels::reference
