// Where the embedded demo model is looked for, so that `linfer generate` works from the build
// tree, from an installed prefix and from a binary copied elsewhere.

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/model_args.h"
#include "linfer/core/error.h"

namespace fs = std::filesystem;

namespace linfer::cli {

static bool is_model_dir(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / "config.json", ec);
}

std::string demo_model_dir() {
  if (const char* env = std::getenv("LINFER_DEMO_MODEL"); env && *env) {
    LINFER_CHECK(is_model_dir(env), "LINFER_DEMO_MODEL={}: no config.json there (point it at a model folder)", env);
    return env;
  }
  // Relative to the executable: `cmake --install` puts the demo in <prefix>/share/linfer/demo beside
  // <prefix>/bin/linfer; a binary shipped next to a models/ folder finds models/demo. Last, the source
  // tree this binary was built from.
  std::vector<fs::path> candidates;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    candidates.push_back(exe.parent_path().parent_path() / "share" / "linfer" / "demo");
    candidates.push_back(exe.parent_path() / "models" / "demo");
  }
  candidates.push_back(fs::path(LINFER_SOURCE_DIR) / "models" / "demo");
  std::vector<std::string> looked;
  for (const fs::path& dir : candidates) {
    if (is_model_dir(dir)) return dir.lexically_normal().string();
    looked.push_back(dir.lexically_normal().string());
  }
  fail("no demo model found (looked in {}); pass --model DIR (a Hugging Face model folder), set "
       "LINFER_DEMO_MODEL=DIR, or install with `cmake --install BUILD_DIR --prefix PREFIX`, which puts the demo "
       "in PREFIX/share/linfer/demo",
       fmt::join(looked, ", "));
}

}  // namespace linfer::cli
