#include <fmt/format.h>

#include "cli/commands.h"
#include "linfer/core/cpu_features.h"
#include "linfer/core/thread_pool.h"

namespace linfer::cli {

void add_version(CLI::App& app) {
  auto* cmd = app.add_subcommand("version", "print the version, SIMD level and thread count");
  cmd->callback([] {
    fmt::print("linfer 0.1.0 (simd: {}, threads: {})\n", simd_level_name(simd_level()), num_threads());
  });
}

}  // namespace linfer::cli
