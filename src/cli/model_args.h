#pragma once
// Argument helpers shared by the model commands (logits, generate, inspect, eval).

#include <cstdlib>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "linfer/core/error.h"
#include "linfer/device.h"
#include "runtime/prefill_chunks.h"

namespace linfer::cli {

// "5,17,42" -> {5, 17, 42}; throws naming the bad item.
inline std::vector<int32_t> parse_ids(const std::string& text) {
  std::vector<int32_t> ids;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find(',', pos);
    if (end == std::string::npos) end = text.size();
    const std::string item = text.substr(pos, end - pos);
    char* stop = nullptr;
    const long v = std::strtol(item.c_str(), &stop, 10);
    LINFER_CHECK(!item.empty() && stop && *stop == '\0' && v >= 0 && v <= INT32_MAX,
                 "--prompt-ids: '{}' is not a token id (expected comma-separated non-negative integers)", item);
    ids.push_back(int32_t(v));
    pos = end + 1;
  }
  return ids;
}

// --device cpu|cuda on a model command; parse_device() reads the value.
inline void add_device_option(CLI::App* cmd, std::string& device) {
  cmd->add_option("--device", device, "where the model runs: cpu, or cuda (a build with -DLINFER_CUDA=ON and an "
                  "NVIDIA GPU)")->default_val("cpu");
}

// --ubatch N on a command that prefills a prompt (runtime/prefill_chunks.h). `ubatch` starts at -1 (not
// given); ubatch_for() turns that into the device's default.
inline void add_ubatch_option(CLI::App* cmd, int64_t& ubatch) {
  cmd->add_option("--ubatch", ubatch, "prefill in chunks of at most N tokens, each continuing the state, so memory "
                  "follows N instead of the prompt's length (0: the whole prompt in one pass; default: 512 on the "
                  "CPU, one pass on CUDA)")->check(CLI::NonNegativeNumber);
}
inline int64_t ubatch_for(int64_t given, Device device) { return given >= 0 ? given : default_ubatch(device); }

// The embedded demo model's folder, for commands run without --model: $LINFER_DEMO_MODEL, else
// <exe>/../share/linfer/demo (installed), <exe dir>/models/demo, models/demo in the source tree.
// Throws naming the places it looked and how to point at a model.
std::string demo_model_dir();

}  // namespace linfer::cli
