#include "kernels/cpu/quant/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/quant_formats.h"
#include "linfer/core/error.h"

namespace linfer::kernels {

namespace {

// An fp16 scale and the float value it stores (the quantizer rounds with the stored value, so the
// rounding step is the one the reader will multiply by).
uint16_t store_half(float v, float& stored) {
  const uint16_t h = f32_to_f16(v);
  stored = f16_to_f32(h);
  return h;
}

int round_clamp(float v, int lo, int hi) { return std::clamp(int(std::nearbyint(v)), lo, hi); }

// Q8_0: d = max|x| / 127 (symmetric); every element within d/2 of its value.
void q8_0(const float* x, uint8_t* b) {
  float amax = 0;
  for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[i]));
  float d;
  const uint16_t h = store_half(amax / 127.0f, d);
  std::memcpy(b, &h, 2);
  const float id = d > 0 ? 1.0f / d : 0.0f;
  for (int i = 0; i < 32; ++i) b[2 + i] = uint8_t(int8_t(round_clamp(x[i] * id, -127, 127)));
}

// Sum of squared errors of x quantized as d · (q - zero), q in [0, qmax].
float sse_symmetric(const float* x, int n, float d, int zero, int qmax) {
  const float id = d != 0 ? 1.0f / d : 0.0f;
  float e = 0;
  for (int i = 0; i < n; ++i) {
    const float r = d * float(round_clamp(x[i] * id + float(zero), 0, qmax) - zero) - x[i];
    e += r * r;
  }
  return e;
}

// Q4_0: q in [-8, 7]. The value of largest magnitude, mx, maps to -8 at d0 = mx / -8 (the whole block
// in range); the search tries d0 · (0.80 .. 1.10) and keeps the smallest squared error, scored with the
// fp16-rounded scale. d0's errors are at most |d0| (half a step, one step for values near -mx, which
// round to +8 and clamp to 7), so the block's RMS error stays within |d0| = max|x| / 8.
void q4_0(const float* x, uint8_t* b) {
  float mx = 0;
  for (int i = 0; i < 32; ++i)
    if (std::fabs(x[i]) > std::fabs(mx)) mx = x[i];
  float best_d = 0, best_e = INFINITY;
  uint16_t best_h = 0;
  for (int s = 0; s <= 12; ++s) {
    float d;
    const uint16_t h = store_half(mx / -8.0f * (0.80f + 0.025f * float(s)), d);
    const float e = sse_symmetric(x, 32, d, 8, 15);
    if (e < best_e) best_e = e, best_d = d, best_h = h;
  }
  std::memcpy(b, &best_h, 2);
  const float id = best_d != 0 ? 1.0f / best_d : 0.0f;
  for (int i = 0; i < 16; ++i) {
    const int lo = round_clamp(x[i] * id + 8.0f, 0, 15), hi = round_clamp(x[i + 16] * id + 8.0f, 0, 15);
    b[2 + i] = uint8_t(lo | hi << 4);
  }
}

// Q4_K. Per sub-block of 32: x ≈ s · q - m with q in [0, 15], m = -min(0, min x) (the format stores
// mins as non-negative offsets), s searched over (max x + m) / 15 · (0.80 .. 1.00) for the smallest
// squared error. Then the eight scales and eight mins are quantized to 6 bits against the super-block's
// largest (d = max s / 63, dmin = max m / 63, both fp16), and q is re-rounded with the scales as stored.
void q4_k(const float* x, uint8_t* b) {
  float sc[8], mn[8];
  for (int j = 0; j < 8; ++j) {
    const float* xs = x + 32 * j;
    float lo = 0, hi = 0;
    for (int i = 0; i < 32; ++i) lo = std::min(lo, xs[i]), hi = std::max(hi, xs[i]);
    const float m = -lo, range = hi - lo;
    float best_s = range / 15.0f, best_e = INFINITY;
    for (int k = 0; k <= 8 && range > 0; ++k) {
      const float s = range / 15.0f * (0.80f + 0.025f * float(k));
      float e = 0;
      for (int i = 0; i < 32; ++i) {
        const float r = s * float(round_clamp((xs[i] + m) / s, 0, 15)) - m - xs[i];
        e += r * r;
      }
      if (e < best_e) best_e = e, best_s = s;
    }
    sc[j] = best_s, mn[j] = m;
  }
  const float max_sc = *std::max_element(sc, sc + 8), max_mn = *std::max_element(mn, mn + 8);
  float d, dmin;
  const uint16_t hd = store_half(max_sc / 63.0f, d), hm = store_half(max_mn / 63.0f, dmin);
  std::memcpy(b, &hd, 2);
  std::memcpy(b + 2, &hm, 2);
  uint8_t qs[8], qm[8];
  for (int j = 0; j < 8; ++j) {
    qs[j] = uint8_t(d > 0 ? round_clamp(sc[j] / d, 0, 63) : 0);
    qm[j] = uint8_t(dmin > 0 ? round_clamp(mn[j] / dmin, 0, 63) : 0);
  }
  uint8_t* scales = b + 4;
  for (int j = 0; j < 4; ++j) {
    scales[j] = uint8_t((qs[j] & 63) | (qs[j + 4] >> 4) << 6);
    scales[j + 4] = uint8_t((qm[j] & 63) | (qm[j + 4] >> 4) << 6);
    scales[j + 8] = uint8_t((qs[j + 4] & 15) | (qm[j + 4] & 15) << 4);
  }
  uint8_t* q = b + 16;
  for (int g = 0; g < 4; ++g) {
    int nib[2][32];
    for (int half = 0; half < 2; ++half) {
      const int j = 2 * g + half;
      const float s = d * float(qs[j]), m = dmin * float(qm[j]);
      for (int l = 0; l < 32; ++l)
        nib[half][l] = s > 0 ? round_clamp((x[32 * j + l] + m) / s, 0, 15) : 0;
    }
    for (int l = 0; l < 32; ++l) q[32 * g + l] = uint8_t(nib[0][l] | nib[1][l] << 4);
  }
}

}  // namespace

bool can_quantize(DType t) { return t == DType::Q8_0 || t == DType::Q4_0 || t == DType::Q4_K; }

void quantize_row(DType t, const float* src, void* dst, int64_t n) {
  LINFER_CHECK(can_quantize(t), "quantize: linfer writes q8_0, q4_0 and q4_k, not {}", dtype_name(t));
  const int64_t bs = dtype_block(t);
  LINFER_CHECK(n % bs == 0, "quantize: a row of {} values is not whole {} blocks of {}", n, dtype_name(t), bs);
  for (int64_t i = 0; i < n; ++i)
    LINFER_CHECK(std::isfinite(src[i]), "quantize: value {} of the row is {}", i, src[i]);
  auto* b = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n / bs; ++i, src += bs, b += dtype_block_bytes(t)) {
    switch (t) {
      case DType::Q8_0: q8_0(src, b); break;
      case DType::Q4_0: q4_0(src, b); break;
      case DType::Q4_K: q4_k(src, b); break;
      default: break;
    }
  }
}

}  // namespace linfer::kernels
