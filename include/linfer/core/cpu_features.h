#pragma once
// The SIMD code paths linfer has kernels for, and which one runs. A kernel with an *_avx2.cpp
// variant dispatches on a SimdLevel (`level >= SimdLevel::Avx2`); simd_level() is the path every
// kernel takes by default. There is a level only where there are kernels: an AVX-512 CPU runs the
// AVX2 path until AVX-512 kernels exist (then add the level, its kernels and its row in kSimdLevels
// together).
//
//   fmt::print("simd: {}\n", simd_level_name(simd_level()));   // what actually runs
//
// LINFER_SIMD=scalar|avx2 in the environment lowers the path (for benchmarks and for runs of the
// whole engine on one path); any other value is an error. Thread-safe.

#include <string>
#include <vector>

namespace linfer {

enum class SimdLevel { Scalar = 0, Avx2 = 1 };  // Avx2 = AVX2 + FMA (+ F16C)

inline constexpr SimdLevel kSimdLevels[] = {SimdLevel::Scalar, SimdLevel::Avx2};  // every path, in order

// The path the kernels run: the best one this CPU can run, lowered by LINFER_SIMD. Detected once;
// throws linfer::Error when LINFER_SIMD names no path.
SimdLevel simd_level();
// Whether this CPU can run `level` (LINFER_SIMD aside).
bool cpu_supports(SimdLevel level);
const char* simd_level_name(SimdLevel level);

// The vector extensions this CPU has that the kernels of `level` do not use (e.g. avx512f,
// avx512bf16 on an AVX-512 CPU running the avx2 path), for `linfer version`.
std::vector<std::string> cpu_extensions_unused(SimdLevel level);

}  // namespace linfer
