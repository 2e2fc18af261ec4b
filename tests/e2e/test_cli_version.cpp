// `linfer version` reports the SIMD path the kernels run — compared with /proc/cpuinfo, so an
// AVX-512 CPU must read "avx512" and list AVX-512 FP16 as unused where it has it, and an avx2 path on an
// AVX-512 BF16 CPU the extensions it leaves — and LINFER_SIMD accepts only paths that exist in this build.

#include <gtest/gtest.h>

#include <cctype>
#include <string>

#include "../cli_run.h"
#include "../cpuinfo.h"

namespace {

// The word after "simd: " in the output ("" when there is none).
std::string reported_path(const std::string& out) {
  const size_t at = out.find("simd: ");
  if (at == std::string::npos) return "";
  const size_t begin = at + 6;
  size_t end = begin;
  while (end < out.size() && std::isalnum(static_cast<unsigned char>(out[end]))) ++end;
  return out.substr(begin, end - begin);
}

TEST(CliVersion, ReportsThePathThatRuns) {
  const auto flags = cpuinfo_flags();
  if (flags.empty()) GTEST_SKIP() << "no /proc/cpuinfo to compare with";
  const CliRun r = run_shell(std::string("env -u LINFER_SIMD ") + LINFER_BIN + " version 2>&1");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(reported_path(r.out), best_simd_path(flags)) << r.out;
  if (flags.count("avx512fp16")) {
    EXPECT_NE(r.out.find("avx512fp16"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("no linfer kernels use them"), std::string::npos) << r.out;
  }
  if (flags.count("avx512bf16")) {  // the avx512 path's bf16 GEMM uses it; the avx2 path leaves it
    EXPECT_EQ(r.out.find("avx512bf16"), std::string::npos) << r.out;
    const CliRun avx2 = run_shell(std::string("LINFER_SIMD=avx2 ") + LINFER_BIN + " version 2>&1");
    EXPECT_NE(avx2.out.find("avx512bf16"), std::string::npos) << avx2.out;
  }
}

TEST(CliVersion, LinferSimdLowersThePath) {
  const CliRun r = run_shell(std::string("LINFER_SIMD=scalar ") + LINFER_BIN + " version 2>&1");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(reported_path(r.out), "scalar") << r.out;
  EXPECT_NE(r.out.find("LINFER_SIMD=scalar"), std::string::npos) << r.out;
}

TEST(CliVersion, LinferSimdRefusesPathsWithoutKernels) {
  for (const char* bad : {"neon", "AVX2"}) {  // neon: a path, but not of an x86-64 build
    const CliRun r = run_shell(std::string("LINFER_SIMD='") + bad + "' " + LINFER_BIN + " version 2>&1");
    EXPECT_EQ(WEXITSTATUS(r.status), 1) << bad << ": " << r.out;
    EXPECT_NE(r.out.find("linfer: error: LINFER_SIMD="), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("use one of scalar, avx2, avx512"), std::string::npos) << r.out;
  }
}

}  // namespace
