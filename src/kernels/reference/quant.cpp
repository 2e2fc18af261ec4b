#include "kernels/reference/quant.h"

#include "linfer/core/error.h"

namespace linfer::kernels::ref {

namespace {

double f16(const uint8_t* p) { return double(f16_to_f32(uint16_t(p[0] | p[1] << 8))); }  // little-endian

// Bits [lo, lo + n) of the little-endian bit string at p.
int bits(const uint8_t* p, int lo, int n) {
  int v = 0;
  for (int i = 0; i < n; ++i) v |= ((p[(lo + i) / 8] >> ((lo + i) % 8)) & 1) << i;
  return v;
}

void q8_0(const uint8_t* b, double* y) {
  for (int i = 0; i < 32; ++i) y[i] = f16(b) * double(int8_t(b[2 + i]));
}

// Element i's nibble of the 16 bytes at qs: i < 16 the low nibble of byte i, else the high nibble of byte i - 16.
int nibble(const uint8_t* qs, int i) { return bits(qs, (i % 16) * 8 + (i / 16) * 4, 4); }

void q4_0(const uint8_t* b, double* y) {
  for (int i = 0; i < 32; ++i) y[i] = f16(b) * double(nibble(b + 2, i) - 8);
}

void q4_1(const uint8_t* b, double* y) {
  for (int i = 0; i < 32; ++i) y[i] = f16(b) * double(nibble(b + 4, i)) + f16(b + 2);
}

void q5_0(const uint8_t* b, double* y) {  // fifth bit of element i: bit i of the 32 bits at b + 2
  for (int i = 0; i < 32; ++i) y[i] = f16(b) * double(nibble(b + 6, i) + 16 * bits(b + 2, i, 1) - 16);
}

void q5_1(const uint8_t* b, double* y) {
  for (int i = 0; i < 32; ++i) y[i] = f16(b) * double(nibble(b + 8, i) + 16 * bits(b + 4, i, 1)) + f16(b + 2);
}

// Q4_K's 12 scale bytes as a table: sub-block j's 6-bit scale and min, read bit by bit. The low 6 bits
// of bytes 0-3 are scales 0-3, of bytes 4-7 mins 0-3; scales 4-7 take the low nibble of bytes 8-11
// plus the top 2 bits of bytes 0-3, mins 4-7 the high nibble of bytes 8-11 plus the top 2 bits of 4-7.
void q4k_scale_min_ref(const uint8_t* s, int j, int& sc, int& m) {
  if (j < 4) {
    sc = bits(s, 8 * j, 6);
    m = bits(s, 8 * (j + 4), 6);
  } else {
    sc = bits(s, 8 * (j + 4), 4) + 16 * bits(s, 8 * (j - 4) + 6, 2);
    m = bits(s, 8 * (j + 4) + 4, 4) + 16 * bits(s, 8 * j + 6, 2);
  }
}

// Q4_K, and Q5_K (five: 32 bytes of fifth bits before the nibbles; bit j of byte l for element 32j + l).
void qk(const uint8_t* b, double* y, bool five) {
  const double d = f16(b), dmin = f16(b + 2);
  const uint8_t* qs = b + (five ? 48 : 16);
  for (int e = 0; e < 256; ++e) {
    const int j = e / 32, l = e % 32;               // sub-block, element within it
    const int byte = 32 * (j / 2) + l;              // groups of 32 bytes hold two sub-blocks
    const int q = bits(qs, 8 * byte + 4 * (j % 2), 4) + (five ? 16 * bits(b + 16, 8 * l + j, 1) : 0);
    int sc, m;
    q4k_scale_min_ref(b + 4, j, sc, m);
    y[e] = d * sc * q - dmin * m;
  }
}

void q6_k(const uint8_t* b, double* y) {
  const double d = f16(b + 208);
  for (int e = 0; e < 256; ++e) {
    const int h = e / 128, r = e % 128;             // half, element within the half
    const int quarter = r / 32, l = r % 32;         // which of the four 32-element runs
    const int ql_byte = 64 * h + l + 32 * (quarter % 2);
    const int low = bits(b, 8 * ql_byte + 4 * (quarter / 2), 4);
    const int high = bits(b + 128, 8 * (32 * h + l) + 2 * quarter, 2);
    const int sub = 8 * h + l / 16 + 2 * quarter;   // 16 scales, one per 16 elements of a run
    y[e] = d * double(int8_t(b[192 + sub])) * double(low + 16 * high - 32);
  }
}

}  // namespace

std::vector<double> dequantize_f64(DType t, const void* src, int64_t n) {
  const int64_t bs = dtype_block(t);
  LINFER_CHECK(is_quantized(t) && n % bs == 0, "dequantize_f64: {} elements of {}", n, dtype_name(t));
  std::vector<double> y(static_cast<size_t>(n));
  const auto* b = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n / bs; ++i, b += dtype_block_bytes(t)) {
    double* yi = y.data() + i * bs;
    switch (t) {
      case DType::Q8_0: q8_0(b, yi); break;
      case DType::Q4_0: q4_0(b, yi); break;
      case DType::Q4_1: q4_1(b, yi); break;
      case DType::Q5_0: q5_0(b, yi); break;
      case DType::Q5_1: q5_1(b, yi); break;
      case DType::Q4_K: qk(b, yi, false); break;
      case DType::Q5_K: qk(b, yi, true); break;
      case DType::Q6_K: q6_k(b, yi); break;
      default: break;
    }
  }
  return y;
}

void matmul_quant_f64(const float* x, int64_t M, const TensorView& w, const float* bias, double* y) {
  LINFER_CHECK(w.ndim() == 2 && is_quantized(w.dtype()), "matmul_quant_f64: a quantized [N, K] weight");
  const int64_t N = w.dim(0), K = w.dim(1);
  for (int64_t n = 0; n < N; ++n) {
    const auto* row = static_cast<const uint8_t*>(w.data()) + dtype_nbytes(w.dtype(), n * w.strides()[0]);
    const std::vector<double> wr = dequantize_f64(w.dtype(), row, K);
    for (int64_t m = 0; m < M; ++m) {
      double acc = bias ? bias[n] : 0.0;
      for (int64_t k = 0; k < K; ++k) acc += double(x[m * K + k]) * wr[size_t(k)];
      y[m * N + n] = acc;
    }
  }
}

}  // namespace linfer::kernels::ref
