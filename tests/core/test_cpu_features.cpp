// core/cpu_features: the path the kernels run by default (simd_level()) is one linfer has kernels
// for, one this CPU runs, and the best such path — checked against /proc/cpuinfo, not against the
// detection code itself. AVX-512 BF16 / FP16 have no path of their own: they are reported unused.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <string>

#include "../cpuinfo.h"
#include "linfer/core/cpu_features.h"

using namespace linfer;

TEST(CpuFeatures, DefaultPathIsTheBestThisCpuRuns) {
  const auto flags = cpuinfo_flags();
  if (flags.empty()) GTEST_SKIP() << "no /proc/cpuinfo of this architecture to compare with";
  std::string expected = best_simd_path(flags);
  if (const char* cap = std::getenv("LINFER_SIMD"); cap && std::string(cap) == "scalar") expected = "scalar";
  EXPECT_EQ(simd_level_name(simd_level()), expected);
  EXPECT_TRUE(cpu_supports(simd_level()));
}

TEST(CpuFeatures, EveryPathHasItsOwnName) {
  std::set<std::string> names;
  for (SimdLevel l : kSimdLevels) names.insert(simd_level_name(l));
  EXPECT_EQ(names.size(), std::size(kSimdLevels));
  EXPECT_FALSE(names.count("?"));
  EXPECT_TRUE(cpu_supports(SimdLevel::Scalar));
}

TEST(CpuFeatures, PathsOfAnotherArchitectureAreNotSupported) {
#if defined(__x86_64__)
  EXPECT_FALSE(cpu_supports(SimdLevel::Neon));
#else
  EXPECT_FALSE(cpu_supports(SimdLevel::Avx2));
  EXPECT_FALSE(cpu_supports(SimdLevel::Avx512));
#endif
}

TEST(CpuFeatures, UnusedExtensionsAreTheCpusBeyondThePath) {
  const auto flags = cpuinfo_flags();
  if (flags.empty()) GTEST_SKIP() << "no /proc/cpuinfo of this architecture to compare with";
  const SimdLevel level = simd_level();
  const auto unused = cpu_extensions_unused(level);
  auto listed = [&](const char* e) { return std::find(unused.begin(), unused.end(), e) != unused.end(); };
  for (const std::string& e : unused) {
    EXPECT_TRUE(flags.count(e)) << e << " reported but not in /proc/cpuinfo";
  }
  for (const char* e : {"avx512f", "avx512bw", "avx512vl", "avx512dq"}) {
    if (flags.count(e)) {
      EXPECT_EQ(listed(e), level != SimdLevel::Avx512) << e;
    }
  }
  if (flags.count("avx512fp16")) {
    EXPECT_TRUE(listed("avx512fp16")) << "avx512fp16 not reported";
  }
  for (const char* e : {"avx512vnni", "avx512bf16"}) {  // the avx512 path's int8 kernels and bf16 GEMM
    if (flags.count(e)) {
      EXPECT_EQ(listed(e), level != SimdLevel::Avx512) << e;
    }
  }
  if (level == SimdLevel::Avx2 || level == SimdLevel::Avx512) {
    for (const char* e : {"avx2", "fma", "f16c", "bmi2"}) {
      EXPECT_FALSE(listed(e)) << e << " is used by the path";
    }
  }
  if (level == SimdLevel::Neon) {
    EXPECT_FALSE(listed("asimd"));
  }
}

TEST(CpuFeatures, HasAnExtensionAsCpuinfoNamesIt) {
  const auto flags = cpuinfo_flags();
  if (flags.empty()) GTEST_SKIP() << "no /proc/cpuinfo of this architecture to compare with";
#if LINFER_X86
  for (const char* e : {"avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512vnni"})
    EXPECT_EQ(cpu_has(e), flags.count(e) > 0) << e;
#elif defined(__aarch64__)
  EXPECT_EQ(cpu_has("asimd"), flags.count("asimd") > 0);
#endif
  EXPECT_FALSE(cpu_has("no-such-extension"));
}
