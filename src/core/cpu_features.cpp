#include "linfer/core/cpu_features.h"

#include <cstdlib>
#include <cstring>

namespace linfer {

static SimdLevel detect() {
  SimdLevel level = SimdLevel::Scalar;
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) level = SimdLevel::Avx2;
  if (level == SimdLevel::Avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
    level = SimdLevel::Avx512;
  if (const char* cap = std::getenv("LINFER_SIMD")) {
    SimdLevel want = level;
    if (!std::strcmp(cap, "scalar")) want = SimdLevel::Scalar;
    else if (!std::strcmp(cap, "avx2")) want = SimdLevel::Avx2;
    else if (!std::strcmp(cap, "avx512")) want = SimdLevel::Avx512;
    if (want < level) level = want;
  }
  return level;
}

SimdLevel simd_level() {
  static const SimdLevel level = detect();
  return level;
}

const char* simd_level_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::Scalar: return "scalar";
    case SimdLevel::Avx2: return "avx2";
    case SimdLevel::Avx512: return "avx512";
  }
  return "?";
}

}  // namespace linfer
