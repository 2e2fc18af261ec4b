// The int8-activation kernels with AVX2's byte products (compiled with -mavx2 -mfma -mf16c).
#include "kernels/cpu/quant/qmatmul_q8.h"

#include <immintrin.h>

namespace linfer::kernels::quant {
namespace {
struct Dot {
  static __m256i dot(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
  }
};
}  // namespace
}  // namespace linfer::kernels::quant

#include "kernels/cpu/quant/qmatmul_q8_kernels.h"

namespace linfer::kernels::quant {

void q8_rows_avx2(const Q8Acts& x, int64_t M, const WeightMatrix& w, const float* bias, float* y, int64_t n0,
                  int64_t n1) {
  rows_q8<Dot>(x, M, w, bias, y, n0, n1);
}

}  // namespace linfer::kernels::quant
