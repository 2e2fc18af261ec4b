#include "core/quant_formats.h"

#include <cstring>

#include "linfer/core/error.h"

namespace linfer::quant {

namespace {

// GGML's type ids (GGUF tensor infos) of the types linfer reads.
struct GgmlId {
  uint32_t id;
  DType t;
};
constexpr GgmlId kGgml[] = {{0, DType::F32},  {1, DType::F16},   {2, DType::Q4_0},  {3, DType::Q4_1},
                            {6, DType::Q5_0}, {7, DType::Q5_1},  {8, DType::Q8_0},  {12, DType::Q4_K},
                            {13, DType::Q5_K}, {14, DType::Q6_K}, {30, DType::BF16}};
constexpr DType kQuantized[] = {DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0,
                                DType::Q5_1, DType::Q4_K, DType::Q5_K, DType::Q6_K};

float half(const uint8_t* p) {  // fp16 at any byte address
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

void q8_0(const uint8_t* b, float* y) {
  const float d = half(b);
  const auto* qs = reinterpret_cast<const int8_t*>(b + 2);
  for (int i = 0; i < 32; ++i) y[i] = d * float(qs[i]);
}

// The 32-element formats with nibbles: Q4_0, Q4_1, Q5_0, Q5_1 (x = d · q + offset; q's fifth bit from qh).
void q32(const uint8_t* b, float* y, bool has_min, bool five, float zero) {
  const float d = half(b), m = has_min ? half(b + 2) - zero * d : -zero * d;
  const uint8_t* p = b + (has_min ? 4 : 2);
  uint32_t qh = 0;
  if (five) std::memcpy(&qh, p, 4), p += 4;  // little-endian hosts (every target linfer builds for)
  for (int i = 0; i < 16; ++i) {
    const int lo = (p[i] & 15) | int((qh >> i) & 1) << 4, hi = (p[i] >> 4) | int((qh >> (i + 16)) & 1) << 4;
    y[i] = d * float(lo) + m;
    y[i + 16] = d * float(hi) + m;
  }
}

// Q4_K, and Q5_K (five: the fifth bits in qh[32] before the nibbles).
void qk(const uint8_t* b, float* y, bool five) {
  const float d = half(b), dmin = half(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* qs = b + (five ? 48 : 16);
  uint8_t sc[8], m[8];
  q4k_scales_mins(scales, sc, m);
  for (int g = 0; g < 4; ++g) {
    const float d0 = d * sc[2 * g], o0 = dmin * m[2 * g], d1 = d * sc[2 * g + 1], o1 = dmin * m[2 * g + 1];
    for (int l = 0; l < 32; ++l) {
      const int h0 = five ? (qh[l] >> (2 * g)) & 1 : 0, h1 = five ? (qh[l] >> (2 * g + 1)) & 1 : 0;
      y[64 * g + l] = d0 * float((qs[32 * g + l] & 15) | h0 << 4) - o0;
      y[64 * g + 32 + l] = d1 * float((qs[32 * g + l] >> 4) | h1 << 4) - o1;
    }
  }
}

void q6_k(const uint8_t* b, float* y) {
  const float d = half(b + 208);
  for (int h = 0; h < 2; ++h) {
    const uint8_t* ql = b + 64 * h;
    const uint8_t* qh = b + 128 + 32 * h;
    const auto* sc = reinterpret_cast<const int8_t*>(b + 192 + 8 * h);
    float* yh = y + 128 * h;
    for (int l = 0; l < 32; ++l) {
      const int s = l / 16;
      const int q1 = ((ql[l] & 15) | ((qh[l] >> 0) & 3) << 4) - 32;
      const int q2 = ((ql[l + 32] & 15) | ((qh[l] >> 2) & 3) << 4) - 32;
      const int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
      const int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
      yh[l] = d * float(sc[s]) * float(q1);
      yh[l + 32] = d * float(sc[s + 2]) * float(q2);
      yh[l + 64] = d * float(sc[s + 4]) * float(q3);
      yh[l + 96] = d * float(sc[s + 6]) * float(q4);
    }
  }
}

}  // namespace

std::optional<DType> dtype_from_ggml(uint32_t ggml_type) {
  for (const auto& g : kGgml)
    if (g.id == ggml_type) return g.t;
  return std::nullopt;
}

uint32_t ggml_type_of(DType t) {
  for (const auto& g : kGgml)
    if (g.t == t) return g.id;
  fail("dtype {} has no GGUF type id", dtype_name(t));
}

std::optional<DType> dtype_from_name(std::string_view name) {
  for (DType t : {DType::F32, DType::BF16, DType::F16})
    if (dtype_name(t) == name) return t;
  for (DType t : kQuantized)
    if (dtype_name(t) == name) return t;
  return std::nullopt;
}

void dequantize_row(DType t, const void* src, float* dst, int64_t n) {
  const int64_t bs = dtype_block(t);
  LINFER_CHECK(is_quantized(t) && n % bs == 0, "dequantize: {} elements of {} (whole blocks of {} only)", n,
               dtype_name(t), bs);
  LINFER_CHECK(!is_rows16(t), "dequantize: {} rows are interleaved in groups of 16; dequantize them through "
               "kernels/cpu/quant/rows16.h", dtype_name(t));
  const auto* b = static_cast<const uint8_t*>(src);
  const size_t bb = dtype_block_bytes(t);
  for (int64_t i = 0; i < n / bs; ++i, b += bb, dst += bs) {
    switch (t) {
      case DType::Q8_0: q8_0(b, dst); break;
      case DType::Q4_0: q32(b, dst, false, false, 8); break;
      case DType::Q4_1: q32(b, dst, true, false, 0); break;
      case DType::Q5_0: q32(b, dst, false, true, 16); break;
      case DType::Q5_1: q32(b, dst, true, true, 0); break;
      case DType::Q4_K: qk(b, dst, false); break;
      case DType::Q5_K: qk(b, dst, true); break;
      case DType::Q6_K: q6_k(b, dst); break;
      default: break;
    }
  }
}

}  // namespace linfer::quant
