#include "linfer/core/cpu_features.h"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string_view>

#include "linfer/core/error.h"

namespace linfer {

struct Extension {
  const char* name;
  bool present;
};

// The vector extensions worth reporting, detected once. __builtin_cpu_supports takes only string
// literals, hence the macro.
static std::span<const Extension> extensions() {
#define LINFER_EXT(name) Extension{name, __builtin_cpu_supports(name) != 0}
  static const auto all = [] {
    __builtin_cpu_init();
    return std::array{LINFER_EXT("avx2"),       LINFER_EXT("fma"),        LINFER_EXT("f16c"),
                      LINFER_EXT("avx512f"),    LINFER_EXT("avx512bw"),   LINFER_EXT("avx512vl"),
                      LINFER_EXT("avx512dq"),   LINFER_EXT("avx512bf16"), LINFER_EXT("avx512vnni"),
                      LINFER_EXT("avx512fp16")};
  }();
#undef LINFER_EXT
  return all;
}

static bool has(std::string_view name) {
  for (const Extension& e : extensions())
    if (name == e.name) return e.present;
  return false;
}

// What each path's kernels are compiled for (CMakeLists.txt: *_avx2.cpp gets -mavx2 -mfma -mf16c).
static std::span<const char* const> extensions_of(SimdLevel level) {
  static constexpr const char* kAvx2[] = {"avx2", "fma", "f16c"};
  switch (level) {
    case SimdLevel::Scalar: return {};
    case SimdLevel::Avx2: return kAvx2;
  }
  return {};
}

bool cpu_supports(SimdLevel level) {
  const auto needed = extensions_of(level);
  return std::all_of(needed.begin(), needed.end(), has);
}

const char* simd_level_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::Scalar: return "scalar";
    case SimdLevel::Avx2: return "avx2";
  }
  return "?";
}

static SimdLevel detect() {
  SimdLevel level = SimdLevel::Scalar;
  for (SimdLevel l : kSimdLevels)
    if (cpu_supports(l)) level = l;
  const char* cap = std::getenv("LINFER_SIMD");
  if (!cap || !*cap) return level;
  for (SimdLevel l : kSimdLevels)
    if (!std::strcmp(cap, simd_level_name(l))) return std::min(l, level);
  fail("LINFER_SIMD={}: not a SIMD path of linfer; use scalar or avx2 (or unset it to take the best this CPU runs)",
       cap);
}

SimdLevel simd_level() {
  static const SimdLevel level = detect();
  return level;
}

std::vector<std::string> cpu_extensions_unused(SimdLevel level) {
  std::vector<std::string> unused;
  for (const Extension& e : extensions()) {
    bool used = false;
    for (SimdLevel l : kSimdLevels)
      if (l <= level)
        for (const char* name : extensions_of(l)) used |= std::string_view(name) == e.name;
    if (e.present && !used) unused.push_back(e.name);
  }
  return unused;
}

}  // namespace linfer
