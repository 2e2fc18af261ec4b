#include "linfer/core/cpu_features.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string_view>

#include "linfer/core/error.h"

#if defined(__aarch64__)
#include <sys/auxv.h>
#elif LINFER_X86
#include <cpuid.h>
#endif

namespace linfer {

struct Extension {
  const char* name;  // as /proc/cpuinfo spells it (GCC's spelling on x86: avx512bf16)
  bool present;
};

// The vector extensions worth reporting, detected once.
static std::span<const Extension> extensions() {
#if LINFER_X86
  // __builtin_cpu_supports takes only string literals, hence the macro. Clang 14 knows neither "f16c"
  // nor "avx512fp16" there, so those two are read from CPUID (leaf 1 ECX bit 29; leaf 7 EDX bit 23);
  // both need no OS state beyond what AVX / AVX-512 already need.
#define LINFER_EXT(name) Extension{name, __builtin_cpu_supports(name) != 0}
  static const auto all = [] {
    __builtin_cpu_init();
    unsigned a = 0, b = 0, c = 0, d = 0;
    const bool f16c = __get_cpuid(1, &a, &b, &c, &d) && (c >> 29 & 1) && __builtin_cpu_supports("avx");
    const bool fp16 = __get_cpuid_count(7, 0, &a, &b, &c, &d) && (d >> 23 & 1) && __builtin_cpu_supports("avx512f");
    return std::array{LINFER_EXT("avx2"),       LINFER_EXT("fma"),        Extension{"f16c", f16c}, LINFER_EXT("bmi2"),
                      LINFER_EXT("avx512f"),    LINFER_EXT("avx512bw"),   LINFER_EXT("avx512vl"),
                      LINFER_EXT("avx512dq"),   LINFER_EXT("avx512bf16"), LINFER_EXT("avx512vnni"),
                      Extension{"avx512fp16", fp16}};
  }();
#undef LINFER_EXT
#elif defined(__aarch64__)
  // The kernel's hardware-capability bits (what /proc/cpuinfo's Features line prints).
  static const auto all = [] {
    const unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
    return std::array{Extension{"asimd", (hw & HWCAP_ASIMD) != 0}, Extension{"asimddp", (hw & HWCAP_ASIMDDP) != 0},
                      Extension{"sve", (hw & HWCAP_SVE) != 0}, Extension{"sve2", (hw2 & HWCAP2_SVE2) != 0},
                      Extension{"bf16", (hw2 & HWCAP2_BF16) != 0}};
  }();
#else
  static const std::array<Extension, 0> all{};
#endif
  return all;
}

static bool has(std::string_view name) {
  for (const Extension& e : extensions())
    if (name == e.name) return e.present;
  return false;
}

bool cpu_is_amd() {
#if LINFER_X86
  static const bool amd = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return false;
    char v[13] = {};
    std::memcpy(v, &b, 4), std::memcpy(v + 4, &d, 4), std::memcpy(v + 8, &c, 4);
    return std::string_view(v) == "AuthenticAMD" || std::string_view(v) == "HygonGenuine";
  }();
  return amd;
#else
  return false;
#endif
}

static bool in_build(SimdLevel level) {
  return std::find(std::begin(kSimdLevels), std::end(kSimdLevels), level) != std::end(kSimdLevels);
}

// What each path's kernels are compiled for: *_avx2.cpp gets -mavx2 -mfma -mf16c (CMakeLists.txt);
// matmul_hwy.cpp is compiled for Highway's AVX2 target (which lets the compiler use BMI2 too) and
// its AVX3 target (AVX-512 F/BW/DQ/VL on top of that). On aarch64 Advanced SIMD is part of the base
// architecture: every file, the scalar path's included, may be compiled to it.
static std::span<const char* const> extensions_of(SimdLevel level) {
  static constexpr const char* kAvx2[] = {"avx2", "fma", "f16c", "bmi2"};
  static constexpr const char* kAvx512[] = {"avx2",    "fma",      "f16c",     "bmi2",
                                            "avx512f", "avx512bw", "avx512dq", "avx512vl"};
  static constexpr const char* kAsimd[] = {"asimd"};
  switch (level) {
    case SimdLevel::Scalar:
#if defined(__aarch64__)
      return kAsimd;
#else
      return {};
#endif
    case SimdLevel::Avx2: return kAvx2;
    case SimdLevel::Avx512: return kAvx512;
    case SimdLevel::Neon: return kAsimd;
  }
  return {};
}

bool cpu_has(std::string_view extension) { return has(extension); }

bool cpu_supports(SimdLevel level) {
  const auto needed = extensions_of(level);
  return in_build(level) && std::all_of(needed.begin(), needed.end(), has);
}

const char* simd_level_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::Scalar: return "scalar";
    case SimdLevel::Avx2: return "avx2";
    case SimdLevel::Avx512: return "avx512";
    case SimdLevel::Neon: return "neon";
  }
  return "?";
}

static SimdLevel detect() {
  SimdLevel level = SimdLevel::Scalar;
  for (SimdLevel l : kSimdLevels)
    if (cpu_supports(l)) level = l;
  const char* cap = std::getenv("LINFER_SIMD");
  if (!cap || !*cap) return level;
  std::vector<std::string_view> names;
  for (SimdLevel l : kSimdLevels) {
    if (!std::strcmp(cap, simd_level_name(l))) return std::min(l, level);
    names.push_back(simd_level_name(l));
  }
  fail("LINFER_SIMD={}: not a SIMD path of this linfer build; use one of {} (or unset it to take the best this "
       "CPU runs)",
       cap, fmt::join(names, ", "));
}

SimdLevel simd_level() {
  static const SimdLevel level = detect();
  return level;
}

// Extensions a path's kernels use where the CPU has them, beyond what the path needs: the avx512 path's
// int8-activation kernels (kernels/cpu/quant/qmatmul_q8.h) take vpdpbusd from AVX-512 VNNI, its bf16 prefill
// GEMM (kernels/cpu/gemm_bf16.h) vdpbf16ps from AVX-512 BF16.
static std::span<const char* const> optional_extensions_of(SimdLevel level) {
  static constexpr const char* kAvx512[] = {"avx512vnni", "avx512bf16"};
  if (level == SimdLevel::Avx512) return kAvx512;
  return {};
}

std::vector<std::string> cpu_extensions_unused(SimdLevel level) {
  std::vector<std::string> unused;
  for (const Extension& e : extensions()) {
    bool used = false;
    for (SimdLevel l : kSimdLevels)
      if (l <= level) {
        for (const char* name : extensions_of(l)) used |= std::string_view(name) == e.name;
        for (const char* name : optional_extensions_of(l)) used |= std::string_view(name) == e.name;
      }
    if (e.present && !used) unused.push_back(e.name);
  }
  return unused;
}

}  // namespace linfer
