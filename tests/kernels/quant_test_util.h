#pragma once
// Helpers shared by the quantized-weight tests (test_quant.cpp, test_rows16.cpp): random blocks of any format,
// and x rounded to int8 as the int8 kernels take it.

#include <random>
#include <vector>

#include <cmath>

#include "dense_test_util.h"
#include "kernels/cpu/quant/q8_activations.h"
#include "kernels/reference/quant.h"
#include "linfer/core/dtype.h"

namespace quant_test {

using linfer::DType;

inline void put_half(uint8_t* p, float v) {
  const uint16_t h = linfer::f32_to_f16(v);
  p[0] = uint8_t(h), p[1] = uint8_t(h >> 8);
}

// n values' worth of random blocks of type t: random integer fields, scales drawn so values stay O(1).
inline std::vector<uint8_t> random_blocks(std::mt19937& rng, DType t, int64_t n) {
  std::vector<uint8_t> b(dtype_nbytes(t, n));
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> scale(0.001f, 0.05f);
  for (auto& v : b) v = uint8_t(byte(rng));
  for (size_t off = 0; off < b.size(); off += dtype_block_bytes(t)) {
    uint8_t* blk = b.data() + off;
    switch (t) {
      case DType::Q8_0: case DType::Q4_0: case DType::Q5_0: put_half(blk, scale(rng)); break;
      case DType::Q4_1: case DType::Q5_1: put_half(blk, scale(rng)), put_half(blk + 2, -8 * scale(rng)); break;
      case DType::Q4_K: case DType::Q5_K: put_half(blk, scale(rng)), put_half(blk + 2, scale(rng)); break;
      case DType::Q6_K: put_half(blk + 208, scale(rng) / 16); break;
      default: break;
    }
  }
  return b;
}

// How far y [M, N] is from x [M, K] · wᵀ (+ bias) in float64, w the blocks wb [N, K] of type t dequantized by the
// reference: ‖y − ref‖ / ‖Σ |products|‖ (the float32 rounding scale, not |y|: a single output may cancel to near
// zero). x as the kernel saw it (float32 x, or the int8-rounded one: Rounded::values).
inline double qmatmul_err(DType t, const std::vector<uint8_t>& wb, int64_t N, int64_t K, const std::vector<double>& x,
                          int64_t M, const float* bias, const std::vector<float>& y) {
  double num = 0, den = 0;
  for (int64_t n = 0; n < N; ++n) {
    const auto wn = linfer::kernels::ref::dequantize_f64(t, wb.data() + linfer::dtype_nbytes(t, n * K), K);
    for (int64_t m = 0; m < M; ++m) {
      double ref = bias ? bias[n] : 0.0, mag = std::fabs(ref);
      for (int64_t k = 0; k < K; ++k) {
        const double p = wn[size_t(k)] * x[size_t(m * K + k)];
        ref += p, mag += std::fabs(p);
      }
      const double d = double(y[size_t(m * N + n)]) - ref;
      num += d * d, den += mag * mag;
    }
  }
  return std::sqrt(num / den);
}

inline std::vector<double> as_f64(const std::vector<float>& x) { return {x.begin(), x.end()}; }

#if LINFER_X86
struct Rounded {  // quantize_q8's arrays for x [M, K]
  std::vector<int8_t> q;
  std::vector<float> d, gs16, gs;
  std::vector<int32_t> off_q4_0;
  int64_t ld;
  Rounded(const std::vector<float>& x, int64_t M, int64_t K)
      : q(size_t(M * linfer::kernels::quant::q8_ld(K))), d(size_t(M * K / 32)), gs16(size_t(M * K / 16)),
        gs(size_t(M * K / 32)), off_q4_0(q.size() / 4), ld(linfer::kernels::quant::q8_ld(K)) {
    linfer::kernels::quant::quantize_q8(x.data(), M, K, q.data(), d.data(), off_q4_0.data(), gs16.data(), gs.data());
  }
  linfer::kernels::quant::Q8Acts acts() const { return {ld, q.data(), d.data(), off_q4_0.data(), gs16.data(), gs.data()}; }
  // Row m alone, as a call of one row sees it.
  linfer::kernels::quant::Q8Acts row(int64_t m, int64_t K) const {
    return {ld, q.data() + m * ld, d.data() + m * K / 32, off_q4_0.data() + m * ld / 4, gs16.data() + m * K / 16,
            gs.data() + m * K / 32};
  }
  // Where run j of x's row m starts in q.
  size_t at(int64_t m, int64_t j) const { return size_t(m * ld + 32 * j); }
  // The rounded x [M, K], d · q, in float64.
  std::vector<double> values(int64_t M, int64_t K) const {
    std::vector<double> v(size_t(M * K));
    for (int64_t m = 0; m < M; ++m)
      for (int64_t k = 0; k < K; ++k) v[size_t(m * K + k)] = double(d[size_t((m * K + k) / 32)]) * q[at(m, 0) + size_t(k)];
    return v;
  }
};
#endif

}  // namespace quant_test
