// The Q4_0x16 layout (q4_0x16.h): the repack and the way back to Q4_0 blocks, plain C++.
#include "kernels/cpu/quant/q4_0x16.h"

#include <cstring>

#include "linfer/core/error.h"
#include "linfer/core/thread_pool.h"

namespace linfer::kernels::quant {

bool q4_0x16_runs(SimdLevel level) {
#if LINFER_X86
  static const bool has = cpu_has("avx512vnni") && cpu_has("avx512bw") && cpu_has("avx512vl");
  return has && level == SimdLevel::Avx512;
#else
  (void)level;
  return false;
#endif
}

void repack_q4_0x16(const void* src, int64_t N, int64_t K, int64_t row_bytes, uint8_t* dst) {
  LINFER_CHECK(K % 32 == 0 && row_bytes >= K / 32 * 18, "repack_q4_0x16: rows of {} elements, {} bytes apart", K,
               row_bytes);
  const int64_t nb = K / 32, G = q4_0x16_group_bytes(K);
  const auto* s = static_cast<const uint8_t*>(src);
  parallel_for(0, q4_0x16_groups(N), [&](int64_t g0, int64_t g1) {
    for (int64_t g = g0; g < g1; ++g) {
      uint8_t* out = dst + g * G;
      std::memset(out + nb * 288, 0, size_t(G - nb * 288));
      for (int64_t i = 0; i < kQ4x16Rows; ++i) {
        const int64_t n = kQ4x16Rows * g + i;
        for (int64_t b = 0; b < nb; ++b) {
          uint8_t* nib = out + 256 * b + 4 * i;
          uint8_t* sc = out + 256 * nb + 32 * b + 2 * i;
          if (n >= N) {  // a padding row: d = +0, every nibble 8 (the value 0 either way)
            for (int c = 0; c < 4; ++c) std::memset(nib + 64 * c, 0x88, 4);
            std::memset(sc, 0, 2);
            continue;
          }
          const uint8_t* blk = s + n * row_bytes + 18 * b;  // d (fp16), qs[16]
          for (int c = 0; c < 4; ++c) std::memcpy(nib + 64 * c, blk + 2 + 4 * c, 4);
          std::memcpy(sc, blk, 2);
        }
      }
    }
  }, 4);
}

void q4_0x16_row(const WeightMatrix& w, int64_t n, int64_t b0, int64_t nb, uint8_t* dst) {
  const int64_t blocks = w.K / 32, i = n % kQ4x16Rows;
  const auto* group = static_cast<const uint8_t*>(w.data) + n / kQ4x16Rows * q4_0x16_group_bytes(w.K);
  for (int64_t b = b0; b < b0 + nb; ++b, dst += 18) {
    std::memcpy(dst, group + 256 * blocks + 32 * b + 2 * i, 2);
    for (int c = 0; c < 4; ++c) std::memcpy(dst + 2 + 4 * c, group + 256 * b + 64 * c + 4 * i, 4);
  }
}

QuantRow quant_row(const WeightMatrix& w, int64_t n, int64_t k0, int64_t n_k, uint8_t* tmp) {
  if (w.dtype != DType::Q4_0x16)
    return {static_cast<const uint8_t*>(w.data) + dtype_nbytes(w.dtype, n * w.ld + k0), w.dtype};
  q4_0x16_row(w, n, k0 / 32, n_k / 32, tmp);
  return {tmp, DType::Q4_0};
}

}  // namespace linfer::kernels::quant
