#pragma once
// The arithmetics of the tensor-core products in kernels/cuda/mma.cuh, as a plain header for host code that
// chooses one (delta_rule_prefill.h's PrefillMath): one TF32 product (10-bit mantissas), 3xTF32 (high + low TF32
// parts, three products: float32-grade sums, 3x the tensor work), or one bf16 product (8-bit mantissas, k steps
// of 16). Accumulation is float32 in all three.

namespace linfer::kernels::cuda {

enum class MmaMath { Tf32, Tf32x3, Bf16 };

}  // namespace linfer::kernels::cuda
