// The int8-activation kernels with AVX-512 VNNI's vpdpbusd on 256-bit vectors (compiled with -mavx512vnni
// -mavx512vl; run only where the CPU has both).
#include "kernels/cpu/quant/qmatmul_q8.h"

#include <immintrin.h>

namespace linfer::kernels::quant {
namespace {
struct Dot {
  static __m256i dot(__m256i u, __m256i s) { return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s); }
};
}  // namespace
}  // namespace linfer::kernels::quant

#include "kernels/cpu/quant/qmatmul_q8_kernels.h"

namespace linfer::kernels::quant {

void q8_rows_avx512vnni(const Q8Acts& x, int64_t M, const WeightMatrix& w, const float* bias, float* y, int64_t n0,
                        int64_t n1) {
  rows_q8<Dot>(x, M, w, bias, y, n0, n1);
}

}  // namespace linfer::kernels::quant
