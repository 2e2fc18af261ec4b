#pragma once
// float32 -> block-quantized rows (Q8_0, Q4_0, Q4_K; core/quant_formats.h has the layouts). What
// `linfer quantize` writes. Round to nearest with a per-block scale search (quantize.cpp says which);
// docs/quantization.md has the measured errors.
//
//   std::vector<uint8_t> out(dtype_nbytes(DType::Q4_K, K));
//   kernels::quantize_row(DType::Q4_K, row, out.data(), K);   // K % 256 == 0
//
// Thread-safety: pure functions.

#include <cstdint>

#include "linfer/core/dtype.h"

namespace linfer::kernels {

// Whether linfer can write type t (Q6_K is read from GGUF files only).
bool can_quantize(DType t);

// Quantizes n values (n a multiple of dtype_block(t)) into dtype_nbytes(t, n) bytes at dst. Throws
// linfer::Error for another n or a type linfer does not write; non-finite inputs are an error too
// (a NaN would poison its whole block's scale).
void quantize_row(DType t, const float* src, void* dst, int64_t n);

}  // namespace linfer::kernels
