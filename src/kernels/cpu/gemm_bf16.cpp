#include "kernels/cpu/gemm_bf16.h"

namespace linfer::kernels {

namespace {
bool has_bf16_dot(SimdLevel level) {
#if LINFER_X86
  static const bool has = cpu_has("avx512bf16") && cpu_has("avx512bw") && cpu_has("avx512vl");
  return level == SimdLevel::Avx512 && has;
#else
  (void)level;
  return false;
#endif
}
}  // namespace

GemmBf16Fn gemm_bf16_dot_for(SimdLevel level) {
#if LINFER_X86
  if (has_bf16_dot(level)) return gemm_bf16_avx512bf16;
#endif
  return nullptr;
}

GemvBf16Fn gemv_bf16_dot_for(SimdLevel level) {
#if LINFER_X86
  if (has_bf16_dot(level)) return gemv_bf16_avx512bf16;
#endif
  return nullptr;
}

}  // namespace linfer::kernels
