#pragma once
// Element types of weights and states, and scalar conversions. Activations and all state / gate
// arithmetic are float32; bf16 and f16 are storage formats. Q8_0 .. Q5_K are block-quantized weight
// formats (byte layouts identical to GGUF's, src/core/quant_formats.h): a tensor of such a type has
// its logical shape ([N, K] for a weight) and strides in elements, like any other, and its bytes are
// blocks of dtype_block(t) consecutive elements of a row, dtype_block_bytes(t) bytes each. Q8_0x16,
// Q4_0x16, Q4_Kx16 and Q6_Kx16 are the exceptions: those formats' blocks with 16 rows interleaved
// (kernels/cpu/quant/rows16.h), made in memory by the CPU backend for its kernels, never read from or
// written to a file; their rows are not ld elements apart.

#include <cstdint>
#include <cstring>
#include <string_view>

namespace linfer {

enum class DType : uint8_t {
  F32 = 0, BF16 = 1, F16 = 2, F64 = 3, I32 = 4, I64 = 5,
  Q8_0 = 16, Q4_0 = 17, Q4_K = 18, Q6_K = 19, Q4_1 = 20, Q5_0 = 21, Q5_1 = 22, Q5_K = 23,  // block-quantized
  Q4_0x16 = 24, Q4_Kx16 = 25, Q8_0x16 = 26, Q6_Kx16 = 27,  // with 16 rows interleaved: in memory only
};

constexpr bool is_quantized(DType t) { return uint8_t(t) >= uint8_t(DType::Q8_0); }
// The types with 16 rows interleaved (kernels/cpu/quant/rows16.h).
constexpr bool is_rows16(DType t) {
  return t == DType::Q4_0x16 || t == DType::Q4_Kx16 || t == DType::Q8_0x16 || t == DType::Q6_Kx16;
}

// Bytes per element; 0 for the block-quantized types (use dtype_nbytes).
constexpr size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::BF16: return 2;
    case DType::F16: return 2;
    case DType::F64: return 8;
    case DType::I32: return 4;
    case DType::I64: return 8;
    default: return 0;
  }
}

// Elements per block: 1 for element types, 32 (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) or 256 (Q4_K, Q5_K, Q6_K).
constexpr int64_t dtype_block(DType t) {
  switch (t) {
    case DType::Q8_0: case DType::Q4_0: case DType::Q4_1: case DType::Q5_0: case DType::Q5_1: case DType::Q4_0x16:
    case DType::Q8_0x16: return 32;
    case DType::Q4_K: case DType::Q5_K: case DType::Q6_K: case DType::Q4_Kx16: case DType::Q6_Kx16: return 256;
    default: return 1;
  }
}

// Bytes per block (dtype_size for element types).
constexpr size_t dtype_block_bytes(DType t) {
  switch (t) {
    case DType::Q8_0: case DType::Q8_0x16: return 34;
    case DType::Q4_0: case DType::Q4_0x16: return 18;
    case DType::Q4_1: return 20;
    case DType::Q5_0: return 22;
    case DType::Q5_1: return 24;
    case DType::Q4_K: case DType::Q4_Kx16: return 144;
    case DType::Q5_K: return 176;
    case DType::Q6_K: case DType::Q6_Kx16: return 210;
    default: return dtype_size(t);
  }
}

// Bytes of n consecutive elements (n a multiple of dtype_block(t)); for the interleaved types the bytes of n
// elements' stored blocks (kernels/cpu/quant/rows16.h has a whole matrix's).
constexpr size_t dtype_nbytes(DType t, int64_t n) { return size_t(n / dtype_block(t)) * dtype_block_bytes(t); }

constexpr std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "f32";
    case DType::BF16: return "bf16";
    case DType::F16: return "f16";
    case DType::F64: return "f64";
    case DType::I32: return "i32";
    case DType::I64: return "i64";
    case DType::Q8_0: return "q8_0";
    case DType::Q4_0: return "q4_0";
    case DType::Q4_K: return "q4_k";
    case DType::Q6_K: return "q6_k";
    case DType::Q4_1: return "q4_1";
    case DType::Q5_0: return "q5_0";
    case DType::Q5_1: return "q5_1";
    case DType::Q5_K: return "q5_k";
    case DType::Q4_0x16: return "q4_0x16";
    case DType::Q4_Kx16: return "q4_kx16";
    case DType::Q8_0x16: return "q8_0x16";
    case DType::Q6_Kx16: return "q6_kx16";
  }
  return "?";
}

inline float bf16_to_f32(uint16_t h) {
  uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Round to nearest even; NaN stays NaN (quiet).
inline uint16_t f32_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x0040u);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return uint16_t(bits >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

// Converts n elements of `src` (type t) to float32; for a block type, n is a multiple of its block
// and `src` its first block (dequantization).
void to_f32(DType t, const void* src, float* dst, size_t n);
// Converts n float32 elements to type t.
void from_f32(DType t, const float* src, void* dst, size_t n);

}  // namespace linfer
