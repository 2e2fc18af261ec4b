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
constexpr GgmlId kGgml[] = {{0, DType::F32},  {1, DType::F16},  {2, DType::Q4_0},
                            {8, DType::Q8_0}, {12, DType::Q4_K}, {14, DType::Q6_K}, {30, DType::BF16}};

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

void q4_0(const uint8_t* b, float* y) {
  const float d = half(b);
  const uint8_t* qs = b + 2;
  for (int i = 0; i < 16; ++i) {
    y[i] = d * float((qs[i] & 15) - 8);
    y[i + 16] = d * float((qs[i] >> 4) - 8);
  }
}

void q4_k(const uint8_t* b, float* y) {
  const float d = half(b), dmin = half(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qs = b + 16;
  for (int g = 0; g < 4; ++g) {
    uint8_t sc0, m0, sc1, m1;
    q4k_scale_min(scales, 2 * g, sc0, m0);
    q4k_scale_min(scales, 2 * g + 1, sc1, m1);
    const float d0 = d * sc0, o0 = dmin * m0, d1 = d * sc1, o1 = dmin * m1;
    for (int l = 0; l < 32; ++l) {
      y[64 * g + l] = d0 * float(qs[32 * g + l] & 15) - o0;
      y[64 * g + 32 + l] = d1 * float(qs[32 * g + l] >> 4) - o1;
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
  for (DType t : {DType::F32, DType::BF16, DType::F16, DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K})
    if (dtype_name(t) == name) return t;
  return std::nullopt;
}

void dequantize_row(DType t, const void* src, float* dst, int64_t n) {
  const int64_t bs = dtype_block(t);
  LINFER_CHECK(is_quantized(t) && n % bs == 0, "dequantize: {} elements of {} (whole blocks of {} only)", n,
               dtype_name(t), bs);
  const auto* b = static_cast<const uint8_t*>(src);
  const size_t bb = dtype_block_bytes(t);
  for (int64_t i = 0; i < n / bs; ++i, b += bb, dst += bs) {
    switch (t) {
      case DType::Q8_0: q8_0(b, dst); break;
      case DType::Q4_0: q4_0(b, dst); break;
      case DType::Q4_K: q4_k(b, dst); break;
      case DType::Q6_K: q6_k(b, dst); break;
      default: break;
    }
  }
}

}  // namespace linfer::quant
