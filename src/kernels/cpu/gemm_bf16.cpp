#include "kernels/cpu/gemm_bf16.h"

namespace linfer::kernels {

GemmBf16Fn gemm_bf16_dot_for(SimdLevel level) {
#if LINFER_X86
  static const bool has = cpu_has("avx512bf16") && cpu_has("avx512bw") && cpu_has("avx512vl");
  return level == SimdLevel::Avx512 && has ? gemm_bf16_avx512bf16 : nullptr;
#else
  (void)level;
  return nullptr;
#endif
}

}  // namespace linfer::kernels
