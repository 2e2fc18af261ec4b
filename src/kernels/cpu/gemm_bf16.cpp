#include "kernels/cpu/gemm_bf16.h"

namespace linfer::kernels {

namespace {
// Whether the `level` path of this CPU runs the AVX-512 BF16 kernels (*_avx512bf16.cpp, built on x86-64 only).
bool has_bf16_dot([[maybe_unused]] SimdLevel level) {
#if LINFER_X86
  static const bool has = cpu_has("avx512bf16") && cpu_has("avx512bw") && cpu_has("avx512vl");
  return level == SimdLevel::Avx512 && has;
#else
  return false;
#endif
}
}  // namespace

GemmBf16Fn gemm_bf16_dot_for(SimdLevel level) {
  if (!has_bf16_dot(level)) return nullptr;
#if LINFER_X86
  return gemm_bf16_avx512bf16;
#else
  return nullptr;
#endif
}

GemmBf16Fn prefill_gemm_bf16_for(SimdLevel level) { return cpu_is_amd() ? gemm_bf16_dot_for(level) : nullptr; }

GemvBf16Fn gemv_bf16_dot_for(SimdLevel level) {
  if (!has_bf16_dot(level)) return nullptr;
#if LINFER_X86
  return gemv_bf16_avx512bf16;
#else
  return nullptr;
#endif
}

}  // namespace linfer::kernels
