// The delta-rule kernels built with AVX2 + FMA (chosen at run time by simd_level()).
#include "kernels/cpu/delta_rule_kernels.h"

namespace linfer::kernels::delta_detail {

const Kernels& avx2_kernels(DeltaDecay decay) { return kernel_tables<8>()[int(decay)]; }

}  // namespace linfer::kernels::delta_detail
