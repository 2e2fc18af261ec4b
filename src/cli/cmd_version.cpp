#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "linfer/core/cpu_features.h"
#include "linfer/core/thread_pool.h"

namespace linfer::cli {

// The SIMD path the kernels run (core/cpu_features.h), not the best the CPU has: LINFER_SIMD can
// lower the path, and no path uses AVX-512 FP16 (the avx512 path uses VNNI and BF16 where present, in
// its int8-activation kernels and bf16 prefill GEMM). What the CPU has beyond the path is listed as unused.
static std::string simd_report() {
  const SimdLevel level = simd_level();
  const char* cap = std::getenv("LINFER_SIMD");
  if (cap && !*cap) cap = nullptr;  // empty = unset
  const auto unused = cpu_extensions_unused(level);
  std::vector<std::string> notes;
  if (cap) notes.push_back(fmt::format("LINFER_SIMD={}", cap));
  if (!unused.empty())
    notes.push_back(fmt::format("cpu also has {}{}", fmt::join(unused, ", "), cap ? "" : ": no linfer kernels use them"));
  if (notes.empty()) return simd_level_name(level);
  return fmt::format("{} ({})", simd_level_name(level), fmt::join(notes, "; "));
}

void add_version(CLI::App& app) {
  auto* cmd = app.add_subcommand("version", "print the version, the SIMD path the kernels run and the thread count");
  cmd->callback([] { fmt::print("linfer 0.1.0\nsimd: {}\nthreads: {}\n", simd_report(), num_threads()); });
}

}  // namespace linfer::cli
