// The interleaved layouts of rows16.h: the repack and the way back to the stored blocks, plain C++.
#include "kernels/cpu/quant/rows16.h"

#include <cstring>

#include "core/quant_formats.h"
#include "linfer/core/error.h"
#include "linfer/core/thread_pool.h"

namespace linfer::kernels::quant {

namespace {

constexpr int64_t kQ4KBlock = 2368;  // bytes of a Q4_Kx16 block (16 rows of 256 elements)

// Calls f(offset in the group, offset in the stored block, bytes, flip) for each piece of row i's block b (of nb)
// that moves as bytes between its stored form and the group; flip: each byte's top bit flips on the way (Q8_0's
// values, int8 q <-> q + 128).
template <class F>
void pieces(DType t, int64_t nb, int64_t b, int64_t i, F&& f) {
  if (t == DType::Q4_0 || t == DType::Q8_0) {
    const int64_t vectors = t == DType::Q4_0 ? 4 : 8, V = 64 * vectors;
    f(V * nb + 32 * b + 2 * i, 0, 2, false);  // d
    for (int64_t c = 0; c < vectors; ++c) f(V * b + 64 * c + 4 * i, 2 + 4 * c, 4, t == DType::Q8_0);
    return;
  }
  if (t == DType::Q6_K) {  // stored: ql at 0, qh at 128, sc at 192, d at 208
    for (int v = 0; v < 48; ++v) f(3072 * b + 64 * v + 4 * i, 4 * v, 4, false);
    const int64_t sc = 3072 * nb + 288 * b;
    for (int s = 0; s < 16; ++s) f(sc + 16 * s + i, 192 + s, 1, false);
    f(sc + 256 + 2 * i, 208, 2, false);
    return;
  }
  const int64_t at = kQ4KBlock * b;
  f(at + 2304 + 2 * i, 0, 2, false);  // d
  f(at + 2336 + 2 * i, 2, 2, false);  // dmin
  for (int v = 0; v < 32; ++v) f(at + 64 * v + 4 * i, 16 + 4 * v, 4, false);
}

// Q4_K's 12 scale bytes (core/quant_formats.h) <-> the group's unpacked sc and m of row i, block b.
void put_q4_k_scales(const uint8_t* stored, uint8_t* group, int64_t b, int64_t i) {
  uint8_t sc[8], m[8];
  linfer::quant::q4k_scales_mins(stored + 4, sc, m);
  uint8_t* blk = group + kQ4KBlock * b;
  for (int s = 0; s < 8; ++s) blk[2048 + 16 * s + i] = sc[s], blk[2176 + 16 * s + i] = m[s];
}
void get_q4_k_scales(const uint8_t* group, int64_t b, int64_t i, uint8_t* stored) {
  const uint8_t* blk = group + kQ4KBlock * b;
  uint8_t sc[8], m[8];
  for (int s = 0; s < 8; ++s) sc[s] = blk[2048 + 16 * s + i], m[s] = blk[2176 + 16 * s + i];
  uint8_t* q = stored + 4;  // every bit of the 12 bytes set here: the packing is one to one
  for (int j = 0; j < 4; ++j) {
    q[j] = uint8_t((sc[j] & 63) | (sc[j + 4] >> 4) << 6);
    q[j + 4] = uint8_t((m[j] & 63) | (m[j + 4] >> 4) << 6);
    q[j + 8] = uint8_t((sc[j + 4] & 15) | (m[j + 4] & 15) << 4);
  }
}

// Copies len bytes, each byte's top bit flipped where flip.
void move(uint8_t* dst, const uint8_t* src, size_t len, bool flip) {
  std::memcpy(dst, src, len);
  if (flip)
    for (size_t j = 0; j < len; ++j) dst[j] ^= 0x80;
}

}  // namespace

std::optional<DType> rows16_type(DType stored) {
  if (stored == DType::Q8_0) return DType::Q8_0x16;
  if (stored == DType::Q4_0) return DType::Q4_0x16;
  if (stored == DType::Q4_K) return DType::Q4_Kx16;
  if (stored == DType::Q6_K) return DType::Q6_Kx16;
  return std::nullopt;
}

DType rows16_stored(DType t16) {
  LINFER_CHECK(is_rows16(t16), "rows16: {} is not an interleaved type", dtype_name(t16));
  switch (t16) {
    case DType::Q8_0x16: return DType::Q8_0;
    case DType::Q4_0x16: return DType::Q4_0;
    case DType::Q6_Kx16: return DType::Q6_K;
    default: return DType::Q4_K;
  }
}

int64_t rows16_group_bytes(DType t16, int64_t K) {
  if (t16 == DType::Q4_Kx16) return (K / 256) * kQ4KBlock;
  // 16 rows' values and scales per block
  const int64_t per_block = t16 == DType::Q4_0x16 ? 288 : t16 == DType::Q8_0x16 ? 544 : 3360;
  return (K / dtype_block(t16) * per_block + 63) / 64 * 64;
}

bool rows16_runs(SimdLevel level) {
#if LINFER_X86
  static const bool has = cpu_has("avx512vnni") && cpu_has("avx512bw") && cpu_has("avx512vl");
  return has && level == SimdLevel::Avx512;
#else
  (void)level;
  return false;
#endif
}

void repack_rows16(DType t16, const void* src, int64_t N, int64_t K, int64_t row_bytes, uint8_t* dst) {
  const DType t = rows16_stored(t16);
  const int64_t bs = dtype_block(t), nb = K / bs, G = rows16_group_bytes(t16, K);
  const size_t bb = dtype_block_bytes(t);
  LINFER_CHECK(K % bs == 0 && row_bytes >= int64_t(dtype_nbytes(t, K)),
               "repack_rows16: {} rows of {} elements, {} bytes apart", dtype_name(t), K, row_bytes);
  const auto* s = static_cast<const uint8_t*>(src);
  parallel_for(0, rows16_groups(N), [&](int64_t g0, int64_t g1) {
    for (int64_t g = g0; g < g1; ++g) {
      uint8_t* out = dst + g * G;
      std::memset(out, 0, size_t(G));  // padding rows (and pad bytes): every scale 0, so every value 0
      for (int64_t i = 0; i < kRows16 && kRows16 * g + i < N; ++i) {
        const int64_t n = kRows16 * g + i;
        for (int64_t b = 0; b < nb; ++b) {
          const uint8_t* blk = s + n * row_bytes + int64_t(bb) * b;
          pieces(t, nb, b, i,
                 [&](int64_t go, int64_t so, size_t len, bool flip) { move(out + go, blk + so, len, flip); });
          if (t == DType::Q4_K) put_q4_k_scales(blk, out, b, i);
        }
      }
    }
  }, 4);
}

void rows16_row(const WeightMatrix& w, int64_t n, int64_t b0, int64_t nb, uint8_t* dst) {
  const DType t = rows16_stored(w.dtype);
  const int64_t blocks = w.K / dtype_block(t), i = n % kRows16;
  const auto* group = static_cast<const uint8_t*>(w.data) + n / kRows16 * rows16_group_bytes(w.dtype, w.K);
  for (int64_t b = b0; b < b0 + nb; ++b, dst += dtype_block_bytes(t)) {
    pieces(t, blocks, b, i,
           [&](int64_t go, int64_t so, size_t len, bool flip) { move(dst + so, group + go, len, flip); });
    if (t == DType::Q4_K) get_q4_k_scales(group, b, i, dst);
  }
}

QuantRow quant_row(const WeightMatrix& w, int64_t n, int64_t k0, int64_t n_k, uint8_t* tmp) {
  if (!is_rows16(w.dtype))
    return {static_cast<const uint8_t*>(w.data) + dtype_nbytes(w.dtype, n * w.ld + k0), w.dtype};
  const DType t = rows16_stored(w.dtype);
  rows16_row(w, n, k0 / dtype_block(t), n_k / dtype_block(t), tmp);
  return {tmp, t};
}

}  // namespace linfer::kernels::quant
