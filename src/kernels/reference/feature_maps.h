#pragma once
// Float64 specification of the feature maps in kernels/cpu/feature_maps.h.

#include <cstdint>

#include "kernels/cpu/feature_maps.h"

namespace linfer::kernels::ref {

double feature_map(FeatureMap f, double x);

// Unstabilised positive random features of one input: phi[i] = m^-1/2 exp(w_i·x' − ‖x'‖²/2),
// x' = d^-1/4 x.                                               w: [m, d]; x: [d]; phi: [m]
void performer_features(const float* w, int64_t d, int64_t m, const float* x, double* phi);

}  // namespace linfer::kernels::ref
