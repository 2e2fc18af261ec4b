#pragma once
// What the CPU multiplies block-quantized weights (Q8_0, Q4_0, Q4_K, Q6_K ...) with at decode and small
// batches (up to 48 rows of x per product; prefill's larger products always take float32 panels):
//   F32  the activations as they are (float32); each weight is widened to float in registers. The default.
//   Q8   each run of 32 activations rounded to int8 with a float scale (max |x| / 127), as llama.cpp's CPU
//        backend does, and multiplied as integers (AVX2: vpmaddubsw; AVX-512 VNNI: vpdpbusd): 1.3-1.5x the
//        weight rows per second of one core (Zen 4), so faster decode of one sequence at 4 bits, but slower
//        batched decode (the float kernel shares each block's unpacking over 4 rows of x), at a cost in
//        accuracy measured in docs/quantization.md. Where a format or SIMD path has no int8 kernel (NEON,
//        the scalar path, Q4_1 / Q5_x / Q5_K) the product stays F32.
// The setting is process-wide (the CLI's --activations), like the thread count; states stay float32 either
// way, and a state saved under one setting loads under the other (the model fingerprint covers the weights,
// not this).
//
//   set_quant_activations(QuantActivations::Q8);
//
// Thread-safety: set it before running models; reading it is lock-free.

#include <optional>
#include <string_view>

namespace linfer {

enum class QuantActivations { F32, Q8 };

void set_quant_activations(QuantActivations a);
QuantActivations quant_activations();
const char* quant_activations_name(QuantActivations a);
// "f32" / "q8" -> the setting; nullopt for any other name.
std::optional<QuantActivations> parse_quant_activations(std::string_view name);

}  // namespace linfer
