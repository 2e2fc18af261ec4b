#pragma once
// Block-quantized weight formats (DType::Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K): byte layouts
// identical to GGUF's,
// so a GGUF tensor's bytes are used in place, never re-quantized. Learned from the GGUF / ggml
// documentation; written here from that description.
//
// How a weight carries a quantized type: a TensorView / Weight whose dtype() is one of these types,
// whose shape is the LOGICAL shape ([N, K] for a linear weight: N output rows, K inputs) and whose
// strides are in elements ([ld, 1], ld a multiple of dtype_block(t)). Row n starts at byte
// dtype_nbytes(t, n · ld) of data(); each row is K / dtype_block(t) consecutive blocks, element k of the
// row in block k / dtype_block(t). K must be a multiple of the block (GGUF guarantees it; the
// quantizer refuses other shapes). Blocks may sit at any byte address (safetensors packs tensors
// without padding): readers load the fp16 scales with memcpy, never through an aligned uint16_t*.
//
// A GGUF tensor with dims ne = {K, N} (fastest first) is the view [N, K] here.
//
// All fp16 fields are IEEE binary16, little-endian; every multi-byte field is little-endian.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

#include "linfer/core/dtype.h"

namespace linfer::quant {

// ---- Q8_0: 32 elements, 34 bytes (8.5 bits per weight) ------------------------------------------
// x[i] = d · qs[i], i in [0, 32).
struct BlockQ8_0 {
  uint16_t d;     // fp16 scale
  int8_t qs[32];  // element i
};
static_assert(sizeof(BlockQ8_0) == 34);

// ---- Q4_0: 32 elements, 18 bytes (4.5 bits per weight) ------------------------------------------
// x[i]      = d · ((qs[i] & 0x0F) - 8)   i in [0, 16)
// x[i + 16] = d · ((qs[i] >> 4)   - 8)
struct BlockQ4_0 {
  uint16_t d;      // fp16 scale
  uint8_t qs[16];  // low nibble: element i, high nibble: element i + 16
};
static_assert(sizeof(BlockQ4_0) == 18);

// ---- Q4_1: 32 elements, 20 bytes (5 bits per weight; read from GGUF files) ------------------------
// x[i] = d · (qs[i] & 0x0F) + m, x[i + 16] = d · (qs[i] >> 4) + m, i in [0, 16).
struct BlockQ4_1 {
  uint16_t d, m;   // fp16 scale, fp16 offset
  uint8_t qs[16];  // as Q4_0
};
static_assert(sizeof(BlockQ4_1) == 20);

// ---- Q5_0 / Q5_1: 32 elements, 22 / 24 bytes (5.5 / 6 bits per weight; read from GGUF files) ------
// A 5-bit q: Q4_0's nibble plus a fifth bit, bit i of the little-endian 32-bit qh for element i:
//   q[i] = (qs[i] & 0x0F) | bit(qh, i) << 4,  q[i + 16] = (qs[i] >> 4) | bit(qh, i + 16) << 4,  i < 16
// Q5_0: x = d · (q - 16).   Q5_1: x = d · q + m.
// (llama-quantize writes Q5_0 where a K-quant's 256-block does not divide a row.)
struct BlockQ5_0 {
  uint16_t d;      // fp16 scale
  uint8_t qh[4];   // fifth bits
  uint8_t qs[16];  // nibbles, as Q4_0
};
static_assert(sizeof(BlockQ5_0) == 22);
struct BlockQ5_1 {
  uint16_t d, m;   // fp16 scale, fp16 offset
  uint8_t qh[4];
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ5_1) == 24);

// ---- Q4_K: 256 elements, 144 bytes (4.5 bits per weight) ----------------------------------------
// Eight sub-blocks of 32, sub-block j with a 6-bit scale sc[j] and a 6-bit min m[j]:
//   x = d · sc[j] · q - dmin · m[j],  q in [0, 15]
// scales[12] packs the 16 six-bit values (see q4k_scales_mins):
//   j < 4:  sc[j] = scales[j] & 63,                            m[j] = scales[j + 4] & 63
//   j >= 4: sc[j] = (scales[j + 4] & 15) | (scales[j - 4] >> 6) << 4,
//           m[j]  = (scales[j + 4] >> 4) | (scales[j] >> 6) << 4
// qs[128]: four groups of 32 bytes; group g holds sub-block 2g in its low nibbles and sub-block 2g + 1
// in its high nibbles: element 64g + l = low nibble of qs[32g + l], 64g + 32 + l = its high nibble.
struct BlockQ4_K {
  uint16_t d;          // fp16 scale of the sub-block scales
  uint16_t dmin;       // fp16 scale of the sub-block mins
  uint8_t scales[12];  // 8 × (6-bit scale, 6-bit min), packed as above
  uint8_t qs[128];     // nibbles
};
static_assert(sizeof(BlockQ4_K) == 144);

// ---- Q5_K: 256 elements, 176 bytes (5.5 bits per weight; read from GGUF files) ------------------
// Q4_K plus a fifth bit per element: d, dmin and scales as Q4_K, then qh[32], then qs[128] as Q4_K.
// Element 32j + l (sub-block j, l < 32) has q = (its Q4_K nibble) | bit(qh[l], j) << 4, and
//   x = d · sc[j] · q - dmin · m[j],  q in [0, 31].
struct BlockQ5_K {
  uint16_t d, dmin;
  uint8_t scales[12];  // as Q4_K
  uint8_t qh[32];      // bit j of qh[l]: fifth bit of element 32j + l
  uint8_t qs[128];     // as Q4_K
};
static_assert(sizeof(BlockQ5_K) == 176);

// ---- Q6_K: 256 elements, 210 bytes (6.5625 bits per weight; read from GGUF files) ---------------
// Sixteen sub-blocks of 16 with int8 scales: x = d · scales[s] · (q - 32), q a 6-bit value whose low 4
// bits are in ql and high 2 bits in qh. Two halves h of 128 elements (ql + 64h, qh + 32h, scales + 8h);
// within a half, for l in [0, 32) and s = l / 16:
//   element l      : ql[l] & 15      | ((qh[l] >> 0) & 3) << 4,  scale scales[s]
//   element l + 32 : ql[l + 32] & 15 | ((qh[l] >> 2) & 3) << 4,  scale scales[s + 2]
//   element l + 64 : ql[l] >> 4      | ((qh[l] >> 4) & 3) << 4,  scale scales[s + 4]
//   element l + 96 : ql[l + 32] >> 4 | ((qh[l] >> 6) & 3) << 4,  scale scales[s + 6]
struct BlockQ6_K {
  uint8_t ql[128];    // low 4 bits
  uint8_t qh[64];     // high 2 bits
  int8_t scales[16];  // sub-block scales
  uint16_t d;         // fp16 super-block scale
};
static_assert(sizeof(BlockQ6_K) == 210);

static_assert(dtype_block_bytes(DType::Q8_0) == sizeof(BlockQ8_0) && dtype_block(DType::Q8_0) == 32);
static_assert(dtype_block_bytes(DType::Q4_0) == sizeof(BlockQ4_0) && dtype_block(DType::Q4_0) == 32);
static_assert(dtype_block_bytes(DType::Q4_K) == sizeof(BlockQ4_K) && dtype_block(DType::Q4_K) == 256);
static_assert(dtype_block_bytes(DType::Q6_K) == sizeof(BlockQ6_K) && dtype_block(DType::Q6_K) == 256);
static_assert(dtype_block_bytes(DType::Q4_1) == sizeof(BlockQ4_1) && dtype_block(DType::Q4_1) == 32);
static_assert(dtype_block_bytes(DType::Q5_0) == sizeof(BlockQ5_0) && dtype_block(DType::Q5_0) == 32);
static_assert(dtype_block_bytes(DType::Q5_1) == sizeof(BlockQ5_1) && dtype_block(DType::Q5_1) == 32);
static_assert(dtype_block_bytes(DType::Q5_K) == sizeof(BlockQ5_K) && dtype_block(DType::Q5_K) == 256);

// The eight (scale, min) pairs of a Q4_K or Q5_K block, each in [0, 63], unpacked all at once with
// 32-bit word operations (a few instructions for the sixteen values, where one at a time took ~10
// each): sc[j] = scales[j] & 63 and m[j] = scales[j + 4] & 63 for j < 4; for j >= 4 the low four bits
// come from scales[j + 4] (scale: low nibble, min: high nibble) and bits 4-5 from the top two bits of
// scales[j - 4] (scale) or scales[j] (min).
inline void q4k_scales_mins(const uint8_t* scales, uint8_t (&sc)[8], uint8_t (&m)[8]) {
  uint32_t u[3];  // little-endian words: bytes 0-3, 4-7, 8-11
  std::memcpy(u, scales, 12);
  const uint32_t lo6 = 0x3F3F3F3Fu, lo4 = 0x0F0F0F0Fu, b45 = 0x30303030u;
  const uint32_t words[4] = {u[0] & lo6, (u[2] & lo4) | ((u[0] >> 2) & b45),          // sc[0..4), sc[4..8)
                             u[1] & lo6, ((u[2] >> 4) & lo4) | ((u[1] >> 2) & b45)};  // m[0..4), m[4..8)
  std::memcpy(sc, words, 8);
  std::memcpy(m, words + 2, 8);
}

// GGML's type ids (the GGUF tensor-info "type" field) of the types linfer reads; nullopt for others.
std::optional<DType> dtype_from_ggml(uint32_t ggml_type);
uint32_t ggml_type_of(DType t);  // throws for a type GGUF has no id for

// "q8_0" / "q4_0" / "q4_k" / "q6_k" ... (dtype_name of any quantized type; also "f32", "bf16", "f16")
// -> DType; nullopt otherwise.
std::optional<DType> dtype_from_name(std::string_view name);

// Bits per weight of a type (8.5 for Q8_0, 4.5 for Q4_0 and Q4_K, 6.5625 for Q6_K, 16 for bf16 ...).
inline double bits_per_weight(DType t) { return 8.0 * double(dtype_block_bytes(t)) / double(dtype_block(t)); }

// Dequantizes n elements (n a multiple of dtype_block(t); src is the first block) to float32, in the
// order of the layouts above. The plain scalar path (to_f32 calls it); kernels/cpu/quant has the
// fast ones, kernels/reference/quant.h the float64 specification.
void dequantize_row(DType t, const void* src, float* dst, int64_t n);

}  // namespace linfer::quant
