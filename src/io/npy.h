#pragma once
// NumPy .npy files: the golden fixtures' format and `linfer logits --out`. Writes float32 C-order;
// reads float32 / float64 / int32 / int64, little-endian, C order (format versions 1-3), validating
// the header against the file size. Errors name the file.
//
//   write_npy("logits.npy", logits.data(), {T, vocab});
//   Tensor ref = read_npy("tests/golden/x/logits.npy");     // dtype as stored
//   Tensor ref32 = Tensor::to_f32(ref);                      // float64 -> float32 if needed

#include <cstddef>
#include <span>
#include <string>

#include "linfer/core/tensor.h"

namespace linfer {

void write_npy(const std::string& path, const float* data, const Shape& shape);
// The bytes of a float32 .npy file (what write_npy writes).
std::string npy_bytes(const float* data, const Shape& shape);

Tensor read_npy(const std::string& path);
// Parses a whole .npy file held in memory; `label` names it in errors.
Tensor parse_npy(std::span<const std::byte> bytes, const std::string& label);

}  // namespace linfer
