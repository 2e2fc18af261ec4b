#include "kernels/reference/linear_attn.h"

#include <cmath>
#include <vector>

namespace linfer::kernels::ref {

void linear_attn(const LinearAttnArgs& a, std::span<const int64_t> offsets, std::span<double* const> states,
                 std::span<double* const> z_states, double* o) {
  const int64_t H = a.H, HV = a.HV, K = a.K, V = a.V;
  const int64_t qs = a.q_stride ? a.q_stride : H * K, ks = a.k_stride ? a.k_stride : H * K;
  const int64_t vs = a.v_stride ? a.v_stride : HV * V;
  std::vector<double> decay(K), q(K);
  for (size_t seq = 0; seq + 1 < offsets.size(); ++seq) {
    for (int64_t t = offsets[seq]; t < offsets[seq + 1]; ++t) {
      for (int64_t hv = 0; hv < HV; ++hv) {
        const int64_t h = hv / (HV / H);  // the q/k head this v head reads
        const float* qt = a.q + t * qs + h * K;
        const float* kt = a.k + t * ks + h * K;
        const float* vt = a.v + t * vs + hv * V;
        for (int64_t c = 0; c < K; ++c) {
          double g = 0.0;
          switch (a.decay) {
            case LinearAttnDecay::None: g = 0.0; break;
            case LinearAttnDecay::PerHead: g = a.g[hv]; break;
            case LinearAttnDecay::Scalar: g = a.g[t * HV + hv]; break;
            case LinearAttnDecay::Vector: g = a.g[(t * HV + hv) * K + c]; break;
          }
          decay[c] = std::exp(g);
          q[c] = double(a.scale) * qt[c];
        }
        const double beta = a.beta ? a.beta[t * HV + hv] : 1.0;

        // S <- diag(decay) S + k (beta v)ᵀ, stored v-major: S[r][c] is key channel c of value r.
        double* S = states[seq] + hv * V * K;
        for (int64_t r = 0; r < V; ++r)
          for (int64_t c = 0; c < K; ++c) S[r * K + c] = decay[c] * S[r * K + c] + double(kt[c]) * beta * vt[r];

        double den = 1.0;
        if (a.normalize) {
          double* z = z_states[seq] + hv * K;
          den = a.eps;
          for (int64_t c = 0; c < K; ++c) {
            z[c] = decay[c] * z[c] + kt[c];
            den += q[c] * z[c];
          }
        }
        const double skip = a.skip ? a.skip[hv] : 0.0;
        for (int64_t r = 0; r < V; ++r) {
          double num = 0.0;
          for (int64_t c = 0; c < K; ++c) num += S[r * K + c] * q[c];
          o[(t * HV + hv) * V + r] = num / den + skip * vt[r];
        }
      }
    }
  }
}

}  // namespace linfer::kernels::ref
