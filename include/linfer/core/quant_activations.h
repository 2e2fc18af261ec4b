#pragma once
// What the CPU rounds activations to before multiplying them with weights of a lower precision:
//   F32   nothing: the activations stay float32; each weight is widened to float in registers. The default.
//   BF16  for the prefill GEMM (products of more than 48 rows) of BF16 and block-quantized weights and for every
//         product of BF16 weights: x rounded to bf16 (nearest even) and multiplied with AVX-512 BF16's
//         vdpbf16ps, as llama.cpp does for BF16 files (quantized weights dequantized and rounded to bf16 on the
//         way), on the avx512 path of CPUs that have it (Zen 4 and later, Sapphire Rapids); the prefill GEMM
//         on AMD cores only (on Intel ones it lost to the float32 GEMM: kernels/cpu/gemm_bf16.h); elsewhere,
//         and for block-quantized decode, F32. +55-63 % prefill tokens/s on Zen 4 (BF16 files); accuracy (demo logits
//         within 1.4e-3 relative of F32): docs/benchmarks.md, "Prefill on Zen 4: x packed once per product, and
//         --activations bf16"; batched decode: "Batched decode with x in bf16".
//   Q8    BF16's roundings, and for block-quantized weights (Q8_0, Q4_0, Q5_0, Q4_K, Q5_K, Q6_K) at decode and small
//         batches (up to 48 rows of x per product): each run of 32 activations rounded to int8 with a float
//         scale (max |x| / 127), as llama.cpp's CPU backend does, and multiplied as integers (AVX2:
//         vpmaddubsw; AVX-512 VNNI: vpdpbusd): 1.3-1.5x the weight rows per second of one core (Zen 4), so
//         faster decode of one sequence at 4 bits, mixed at batches of 4-8, at a cost in accuracy measured in
//         docs/quantization.md. Where a format or SIMD path has no int8 kernel (NEON, the scalar path, Q4_1 /
//         Q5_x / Q5_K) the product stays F32. The settings go F32, BF16, Q8 in order of rounding.
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

enum class QuantActivations { F32, Q8, BF16 };
inline constexpr QuantActivations kQuantActivations[] = {QuantActivations::F32, QuantActivations::Q8,
                                                         QuantActivations::BF16};

void set_quant_activations(QuantActivations a);
QuantActivations quant_activations();
const char* quant_activations_name(QuantActivations a);
// "f32" / "q8" / "bf16" -> the setting; nullopt for any other name.
std::optional<QuantActivations> parse_quant_activations(std::string_view name);

// What a setting asks of the kernels (each where the CPU has the kernel): x rounded to bf16 in the prefill
// GEMM and in every product of BF16 weights (BF16 and Q8), x rounded to int8 in block-quantized decode
// products (Q8).
constexpr bool rounds_to_bf16(QuantActivations a) { return a != QuantActivations::F32; }
constexpr bool rounds_decode_to_int8(QuantActivations a) { return a == QuantActivations::Q8; }

}  // namespace linfer
