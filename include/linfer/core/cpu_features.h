#pragma once
// Which SIMD paths this CPU runs. Kernels with *_avx2.cpp / *_avx512.cpp variants pick one at run
// time through simd_level(); LINFER_SIMD=scalar|avx2|avx512 in the environment caps the choice
// (for tests of every path and for benchmarks).

namespace linfer {

enum class SimdLevel { Scalar = 0, Avx2 = 1, Avx512 = 2 };

SimdLevel simd_level();           // detected once, capped by LINFER_SIMD
const char* simd_level_name(SimdLevel level);

}  // namespace linfer
