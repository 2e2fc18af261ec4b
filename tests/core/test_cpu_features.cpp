// core/cpu_features: the path the kernels run by default (simd_level()) is one linfer has kernels
// for, one this CPU runs, and the best such path — checked against /proc/cpuinfo, not against the
// detection code itself. An AVX-512 CPU must get "avx2": there are no AVX-512 kernels.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <string>

#include "../cpuinfo.h"
#include "linfer/core/cpu_features.h"

using namespace linfer;

TEST(CpuFeatures, DefaultPathIsTheBestThisCpuRuns) {
  const auto flags = cpuinfo_flags();
  if (flags.empty()) GTEST_SKIP() << "no /proc/cpuinfo to compare with";
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

TEST(CpuFeatures, UnusedExtensionsAreTheCpusBeyondThePath) {
  const auto flags = cpuinfo_flags();
  if (flags.empty()) GTEST_SKIP() << "no /proc/cpuinfo to compare with";
  const auto unused = cpu_extensions_unused(simd_level());
  for (const std::string& e : unused) EXPECT_TRUE(flags.count(e)) << e << " reported but not in /proc/cpuinfo";
  for (const char* e : {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512bf16"})
    if (flags.count(e)) EXPECT_NE(std::find(unused.begin(), unused.end(), e), unused.end()) << e << " not reported";
  if (simd_level() == SimdLevel::Avx2)
    for (const char* e : {"avx2", "fma", "f16c"})
      EXPECT_EQ(std::find(unused.begin(), unused.end(), e), unused.end()) << e << " is used by the avx2 path";
}
