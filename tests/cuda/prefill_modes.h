#pragma once
// The chunked prefill's tensor-core arithmetics (kernels/cuda/delta_rule_prefill.h, PrefillMath) as the tests
// run them, each with its bound on ‖Δ‖/‖ref‖ against the float64 reference: issue 11's 5e-3 for products on
// bf16-grade operands (one TF32 product rounds both operands to 10-bit mantissas, bf16 to 8), and the float32
// bound, 2e-3, for 3xTF32, which sums as float32 does.

#include "kernels/cuda/delta_rule_prefill.h"

namespace cuda_test {

struct PrefillMode {
  linfer::kernels::cuda::PrefillMath math;
  const char* name;
  double tolerance;
};

inline constexpr double kFloat32Tolerance = 2e-3, kBf16Tolerance = 5e-3;

inline constexpr PrefillMode kPrefillModes[] = {
    {linfer::kernels::cuda::PrefillMath::Tf32, "tf32", kBf16Tolerance},
    {linfer::kernels::cuda::PrefillMath::Tf32x3, "3xtf32", kFloat32Tolerance},
    {linfer::kernels::cuda::PrefillMath::Bf16, "bf16", kBf16Tolerance},
};

}  // namespace cuda_test
