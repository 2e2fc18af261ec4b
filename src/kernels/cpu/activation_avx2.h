#pragma once
// Internal, for *_avx2.cpp files only (needs -mavx2 -mfma): vector exp / sigmoid / silu / softplus used by the
// activation, norm, conv1d and attention kernels.

#include <immintrin.h>

#include <initializer_list>

namespace linfer::kernels::avx2 {

// e^x, relative error ~1e-7 over the float range. x is clamped to [-87.3, 88.3] so 2^n stays a
// normal float (below, e^x < 1.2e-38 is returned as ~1e-38: irrelevant where it is used).
inline __m256 exp256(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // r = x − n·ln2 in two steps (ln2 split hi + lo keeps r exact to ~1 ulp); |r| <= ln2 / 2
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187045e-06f), r);
  // Taylor series to r^7: truncation error (ln2/2)^8 / 8! ≈ 5e-9
  __m256 p = _mm256_set1_ps(1.0f / 5040);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

inline __m256 sigmoid256(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  return _mm256_div_ps(one, _mm256_add_ps(one, exp256(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

inline __m256 silu256(__m256 x) { return _mm256_mul_ps(x, sigmoid256(x)); }

// torch's softplus (beta 1, threshold 20: x > 20 returns x; NaN stays NaN): max(x, 0) + log1p(u), u = e^-|x| in
// (0, 1], with log1p(u) = 2 atanh(s) = 2 (s + s³/3 + s⁵/5 + ...), s = u / (2 + u) <= 1/3, to s¹⁵ (the next term
// is below 2e-9 of the sum); relative error ~1e-7, no cancellation for small u.
inline __m256 softplus256(__m256 x) {
  const __m256 u = exp256(_mm256_or_ps(x, _mm256_set1_ps(-0.0f)));  // e^-|x|
  const __m256 s = _mm256_div_ps(u, _mm256_add_ps(u, _mm256_set1_ps(2.0f))), t = _mm256_mul_ps(s, s);
  __m256 p = _mm256_set1_ps(1.0f / 15);
  for (const float c : {1.0f / 13, 1.0f / 11, 1.0f / 9, 1.0f / 7, 1.0f / 5, 1.0f / 3, 1.0f})
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(c));
  const __m256 r = _mm256_fmadd_ps(_mm256_add_ps(s, s), p, _mm256_max_ps(x, _mm256_setzero_ps()));
  const __m256 pass =
      _mm256_or_ps(_mm256_cmp_ps(x, _mm256_set1_ps(20.0f), _CMP_GT_OQ), _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
  return _mm256_blendv_ps(r, x, pass);
}

inline float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

}  // namespace linfer::kernels::avx2
