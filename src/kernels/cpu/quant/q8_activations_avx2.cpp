// Activations rounded to int8 per run of 32, with AVX2 (compiled with -mavx2 -mfma -mf16c; the int8 kernels
// that read them exist on x86-64 only).
#include <immintrin.h>

#include <limits>

#include "kernels/cpu/quant/q8_activations.h"

namespace linfer::kernels::quant {

void quantize_q8(const float* x, int64_t M, int64_t K, int8_t* q, float* d, int32_t* off_q4_0, float* gs16,
                 float* gs) {
  const int64_t runs = M * (K / 32), ld = q8_ld(K);
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7), ones8 = _mm256_set1_epi8(1);
  for (int64_t r = 0; r < runs; ++r) {
    const float* xr = x + 32 * r;
    const int64_t e = r / (K / 32) * ld + 32 * (r % (K / 32));  // where the run's q start
    __m256 v[4], amax = _mm256_setzero_ps(), nan = _mm256_setzero_ps();
    for (int i = 0; i < 4; ++i) {
      v[i] = _mm256_loadu_ps(xr + 8 * i);
      amax = _mm256_max_ps(amax, _mm256_and_ps(v[i], abs_mask));
      nan = _mm256_or_ps(nan, _mm256_cmp_ps(v[i], v[i], _CMP_UNORD_Q));
    }
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    const float top = _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
    const bool finite = !_mm256_movemask_ps(nan) && top <= std::numeric_limits<float>::max();
    const float dr = finite ? top / 127.0f : std::numeric_limits<float>::quiet_NaN();
    const __m256 inv = _mm256_set1_ps(finite && top > 0.0f ? 127.0f / top : 0.0f);
    __m256i n[4];  // round to nearest, ties to even; |x| · 127 / max |x| <= 127
    for (int i = 0; i < 4; ++i) n[i] = finite ? _mm256_cvtps_epi32(_mm256_mul_ps(v[i], inv)) : _mm256_setzero_si256();
    const __m256i b = _mm256_permutevar8x32_epi32(
        _mm256_packs_epi16(_mm256_packs_epi32(n[0], n[1]), _mm256_packs_epi32(n[2], n[3])), order);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + e), b);
    __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, b), _mm256_set1_epi16(1));  // per 4
    s = _mm256_add_epi32(s, _mm256_shuffle_epi32(s, 0x4E));
    s = _mm256_add_epi32(s, _mm256_shuffle_epi32(s, 0xB1));  // each half's 16, in all its lanes
    const int32_t h0 = _mm256_extract_epi32(s, 0), h1 = _mm256_extract_epi32(s, 4);
    gs16[2 * r] = dr * float(h0), gs16[2 * r + 1] = dr * float(h1);
    gs[r] = dr * float(h0 + h1);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(off_q4_0 + e / 4), _mm256_set1_epi32(-(h0 + h1)));
    d[r] = dr;
  }
}

}  // namespace linfer::kernels::quant
