#pragma once
// The SIMD code paths linfer has kernels for, and which one runs. A kernel with an *_avx2.cpp
// variant dispatches on a SimdLevel (`level >= SimdLevel::Avx2`); simd_level() is the path every
// kernel takes by default. There is a level only where there are kernels (add the level, its kernels
// and its row in kSimdLevels together):
//   scalar  plain C++ (on aarch64 the compiler may still use Advanced SIMD, part of the base ISA);
//   avx2    AVX2 + FMA + F16C: every kernel's *_avx2.cpp variant, and Highway's AVX2 target of the
//           matmul (matmul_hwy.cpp GEMV, gemm_hwy.cpp GEMM, quant/qmatmul_hwy.cpp quantized GEMV);
//   avx512  AVX-512 F/BW/DQ/VL: the matmul GEMV, GEMM and quantized GEMV (matmul_hwy.cpp, gemm_hwy.cpp,
//           quant/qmatmul_hwy.cpp); every other kernel runs its avx2 variant;
//   neon    aarch64 Advanced SIMD: the matmul, dense and quantized (matmul_hwy.cpp, gemm_hwy.cpp,
//           quant/qmatmul_hwy.cpp); every other kernel its scalar code.
//
//   fmt::print("simd: {}\n", simd_level_name(simd_level()));   // what actually runs
//
// Which paths exist depends on the architecture the binary was built for: x86-64 has scalar, avx2
// and avx512; aarch64 scalar and neon. *_avx2.cpp files are not compiled for aarch64, so a call into
// avx2:: must sit under `#if LINFER_X86`. avx512 and neon exist only where Highway was found at
// configure time (LINFER_HWY; every build but the GPU machine's kernels-only ones).
//
// LINFER_SIMD=<a path's name> in the environment lowers the path (for benchmarks and for runs of the
// whole engine on one path); any other value is an error. Thread-safe.

#include <string>
#include <string_view>
#include <vector>

#if defined(__x86_64__)
#define LINFER_X86 1
#else
#define LINFER_X86 0
#endif

namespace linfer {

// Ordered within an architecture: x86-64 paths compare as Scalar < Avx2 < Avx512.
enum class SimdLevel { Scalar = 0, Avx2 = 1, Avx512 = 2, Neon = 3 };

// Every path of this build, in order (each one needs at least what the one before it needs).
#if LINFER_X86 && LINFER_HWY
inline constexpr SimdLevel kSimdLevels[] = {SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512};
#elif LINFER_X86
inline constexpr SimdLevel kSimdLevels[] = {SimdLevel::Scalar, SimdLevel::Avx2};
#elif defined(__aarch64__) && LINFER_HWY
inline constexpr SimdLevel kSimdLevels[] = {SimdLevel::Scalar, SimdLevel::Neon};
#else
inline constexpr SimdLevel kSimdLevels[] = {SimdLevel::Scalar};
#endif

// The path the kernels run: the best one this CPU can run, lowered by LINFER_SIMD. Detected once;
// throws linfer::Error when LINFER_SIMD names no path.
SimdLevel simd_level();
// Whether this CPU can run `level` (LINFER_SIMD aside); false for a path this build does not have.
bool cpu_supports(SimdLevel level);
const char* simd_level_name(SimdLevel level);
// Whether this CPU has a vector extension, by the name /proc/cpuinfo gives it (x86: avx2, fma, f16c, bmi2,
// avx512f, avx512bw, avx512vl, avx512dq, avx512bf16, avx512vnni, avx512fp16; aarch64: asimd, asimddp, sve,
// sve2, bf16); false for any other name. For kernels that need more than their SimdLevel promises.
bool cpu_has(std::string_view extension);
// Whether this CPU is an AMD (or Hygon) x86-64 core, by CPUID's vendor string: for kernels whose speed
// against another depends on how the core issues an instruction (gemm_bf16.h's prefill GEMM); false elsewhere.
bool cpu_is_amd();

// The vector extensions this CPU has that the kernels of `level` do not use (e.g. avx512f,
// avx512bf16 on an AVX-512 CPU running the avx2 path), for `linfer version`. The avx512 path counts
// avx512vnni and avx512bf16 as used (its int8-activation kernels and bf16 prefill GEMM, `--activations q8`
// and `bf16`).
std::vector<std::string> cpu_extensions_unused(SimdLevel level);

}  // namespace linfer
