#include "kernels/cpu/quant/qmatmul_q8.h"

#include "kernels/cpu/quant/rows16.h"

namespace linfer::kernels::quant {

Q8RowsFn q8_kernel_for(SimdLevel level, DType t) {
#if LINFER_X86
  if (is_rows16(t)) return rows16_q8;  // made only where it runs (rows16_runs)
  const bool has = t == DType::Q8_0 || t == DType::Q4_0 || t == DType::Q5_0 || t == DType::Q4_K || t == DType::Q5_K ||
                   t == DType::Q6_K;
  if (!has || level < SimdLevel::Avx2) return nullptr;
  static const bool vnni = cpu_has("avx512vnni") && cpu_has("avx512vl") && cpu_has("avx512bw");
  return level >= SimdLevel::Avx512 && vnni ? q8_rows_avx512vnni : q8_rows_avx2;
#else
  (void)level, (void)t;
  return nullptr;
#endif
}

}  // namespace linfer::kernels::quant
