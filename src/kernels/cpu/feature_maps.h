#pragma once
// Feature maps for linear attention (kernels/cpu/linear_attn.h runs on the mapped q / k):
// elementwise maps (Katharopoulos elu+1, relu, identity) and Performer FAVOR+ positive orthogonal
// random features. The float64 specification is kernels/reference/feature_maps.h.
//
//   apply_feature_map(FeatureMap::EluPlusOne, q, T * H * K);            // in place
//
//   PerformerFeatures pf(/*d=*/64, /*m=*/256, /*seed=*/1234);          // drawn once, at load
//   pf.map(q, T * H, 64, phi_q, PerformerRole::Query);                // [T*H, d] -> [T*H, m]
//   pf.map(k, T * H, 64, phi_k, PerformerRole::Key);
//   // then linear attention with K = m, decay None, normalize = true
//
// Thread-safety: PerformerFeatures is immutable after construction; map() may run concurrently.

#include <cstdint>
#include <vector>

namespace linfer::kernels {

enum class FeatureMap { Identity, EluPlusOne, Relu };

// x = f(x) for n floats.
void apply_feature_map(FeatureMap f, float* x, int64_t n);

// Row norms of the random projection: resampled from χ_d (the norm of a fresh Gaussian row, so each
// row is marginally Gaussian as in the paper's estimator), or fixed at √d.
enum class PerformerScaling { Chi, Sqrt };

// Query features subtract their own largest exponent (a per-token constant: it cancels between
// numerator and normaliser, and uses nothing from other tokens). Key features subtract one constant
// fixed at load (key_shift()): a per-key or global max over keys would either not cancel across keys
// or need future keys (unknowable when streaming), and a running max would force rescaling S and z
// whenever it grows. Since w·x' − ‖x'‖²/2 <= ‖w‖²/2 for every input, key_shift = max(0,
// max_i ‖w_i‖²/2 − 60) bounds every key feature by e^60, leaving ~1e12 of float range for the sums,
// and is 0 (no lost precision) unless some ‖w_i‖² exceeds 120.
enum class PerformerRole { Query, Key, Exact };  // Exact: no stabiliser (tests)

class PerformerFeatures {
 public:
  PerformerFeatures(int64_t d, int64_t m, uint64_t seed, PerformerScaling scaling = PerformerScaling::Chi);

  int64_t d() const { return d_; }
  int64_t m() const { return m_; }
  const std::vector<float>& projection() const { return w_; }  // W [m, d]
  float key_shift() const { return key_shift_; }

  // phi[r] = m^-1/2 exp(W x' − ‖x'‖²/2 − shift), x' = d^-1/4 x[r]; so phi(q)·phi(k) ≈ exp(qᵀk/√d)
  // times exp(−shift_q − shift_k).                        x: [rows, d] (row stride `stride`); phi: [rows, m]
  void map(const float* x, int64_t rows, int64_t stride, float* phi, PerformerRole role) const;

 private:
  int64_t d_, m_;
  std::vector<float> w_;  // [m, d]
  float key_shift_ = 0.0f;
};

}  // namespace linfer::kernels
