#include <immintrin.h>

#include "kernels/cpu/activation_avx2.h"
#include "kernels/cpu/conv1d_simd.h"

namespace linfer::kernels::avx2 {
namespace {

// The last m < 8 channels through the vector formula on zero-padded lanes (so that results do not depend on
// where a channel falls): out[i] = act(bias[i] + Σ_j weight(j, i) · tap(j, i)), every tap read before out is written.
template <class Weight, class Tap>
void tail(int64_t m, const float* bias, int64_t W, bool silu, Weight&& weight, Tap&& tap, float* out) {
  alignas(32) float b[8] = {}, wv[8] = {}, xv[8] = {};
  if (bias)
    for (int64_t i = 0; i < m; ++i) b[i] = bias[i];
  __m256 acc = _mm256_load_ps(b);
  for (int64_t j = 0; j < W; ++j) {
    for (int64_t i = 0; i < m; ++i) wv[i] = weight(j, i), xv[i] = tap(j, i);
    acc = _mm256_fmadd_ps(_mm256_load_ps(wv), _mm256_load_ps(xv), acc);
  }
  _mm256_store_ps(b, silu ? silu256(acc) : acc);
  for (int64_t i = 0; i < m; ++i) out[i] = b[i];
}

}  // namespace

void conv1d_row(const float* const* taps, const float* wT, int64_t C, int64_t W, const float* bias, bool silu,
                int64_t c0, int64_t c1, float* out) {
  int64_t c = c0;
  for (; c + 8 <= c1; c += 8) {
    __m256 acc = bias ? _mm256_loadu_ps(bias + c) : _mm256_setzero_ps();
    for (int64_t j = 0; j < W; ++j) acc = _mm256_fmadd_ps(_mm256_loadu_ps(wT + j * C + c), _mm256_loadu_ps(taps[j] + c), acc);
    _mm256_storeu_ps(out + c, silu ? silu256(acc) : acc);
  }
  if (c < c1)
    tail(c1 - c, bias ? bias + c : nullptr, W, silu, [&](int64_t j, int64_t i) { return wT[j * C + c + i]; },
         [&](int64_t j, int64_t i) { return taps[j][c + i]; }, out + c);
}

void conv1d_step(const float* x, const float* w, int64_t W, const float* bias, bool silu, float* state, int64_t c0,
                 int64_t c1, float* out) {
  const int64_t H = W - 1;
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i w_at = _mm256_mullo_epi32(lane, _mm256_set1_epi32(int(W)));  // channel i's row of w, of the state
  const __m256i s_at = _mm256_mullo_epi32(lane, _mm256_set1_epi32(int(H)));
  alignas(32) float xs[8];
  auto shift = [&](float* s, int64_t n) {  // n channels' windows at s move on by xs
    for (int64_t i = 0; i < n; ++i, s += H) {
      for (int64_t j = 0; j + 1 < H; ++j) s[j] = s[j + 1];
      if (H > 0) s[H - 1] = xs[i];
    }
  };
  int64_t c = c0;
  for (; c + 8 <= c1; c += 8) {
    const float* wc = w + c * W;
    float* s = state + c * H;
    __m256 acc = bias ? _mm256_loadu_ps(bias + c) : _mm256_setzero_ps();
    for (int64_t j = 0; j < H; ++j)
      acc = _mm256_fmadd_ps(_mm256_i32gather_ps(wc + j, w_at, 4), _mm256_i32gather_ps(s + j, s_at, 4), acc);
    const __m256 xv = _mm256_loadu_ps(x + c);
    acc = _mm256_fmadd_ps(_mm256_i32gather_ps(wc + H, w_at, 4), xv, acc);
    if (H == 3) {  // the usual width: the 24 floats move on by one float, x into every third (s and x read first)
      const __m256 n0 = _mm256_loadu_ps(s + 1), n1 = _mm256_loadu_ps(s + 9);
      const __m256 n2 = _mm256_maskload_ps(s + 17, _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, -1, 0));
      auto x_at = [&](__m256i from) { return _mm256_permutevar8x32_ps(xv, from); };
      _mm256_storeu_ps(s, _mm256_blend_ps(n0, x_at(_mm256_setr_epi32(0, 0, 0, 0, 0, 1, 0, 0)), 0x24));
      _mm256_storeu_ps(s + 8, _mm256_blend_ps(n1, x_at(_mm256_setr_epi32(2, 0, 0, 3, 0, 0, 4, 0)), 0x49));
      _mm256_storeu_ps(s + 16, _mm256_blend_ps(n2, x_at(_mm256_setr_epi32(0, 5, 0, 0, 6, 0, 0, 7)), 0x92));
    } else {
      _mm256_store_ps(xs, xv);
      shift(s, 8);
    }
    _mm256_storeu_ps(out + c, silu ? silu256(acc) : acc);
  }
  if (c < c1) {
    const int64_t m = c1 - c;
    for (int64_t i = 0; i < m; ++i) xs[i] = x[c + i];  // before out, which may be x, is written
    tail(m, bias ? bias + c : nullptr, W, silu, [&](int64_t j, int64_t i) { return w[(c + i) * W + j]; },
         [&](int64_t j, int64_t i) { return j < H ? state[(c + i) * H + j] : xs[i]; }, out + c);
    shift(state + c * H, m);
  }
}

}  // namespace linfer::kernels::avx2
