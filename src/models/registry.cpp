#include "models/registry.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "linfer/core/error.h"

namespace linfer {

namespace {

struct Entry {
  const char* model_type;
  ArchitectureFactory factory;
};

constexpr Entry kArchitectures[] = {
    {"kimi_linear", kimi_linear_config},
    {"qwen3_next", qwen3_next_config},
    {"mamba2", mamba2_config},
};

}  // namespace

const char* mixer_name(MixerKind k) {
  switch (k) {
    case MixerKind::Kda: return "kda";
    case MixerKind::Gdn: return "gdn";
    case MixerKind::Mamba2: return "mamba2";
    case MixerKind::Attention: return "attention";
    case MixerKind::Mla: return "mla";
  }
  return "?";
}

const char* ffn_name(FfnKind k) {
  switch (k) {
    case FfnKind::None: return "none";
    case FfnKind::Dense: return "dense";
    case FfnKind::Moe: return "moe";
  }
  return "?";
}

std::vector<std::string> supported_architectures() {
  std::vector<std::string> out;
  for (const auto& e : kArchitectures) out.emplace_back(e.model_type);
  return out;
}

ModelConfig build_model_config(const Config& config) {
  const auto type = config.get<std::string>("model_type");
  for (const auto& e : kArchitectures) {
    if (type == e.model_type) {
      ModelConfig mc = e.factory(config);
      mc.architecture = type;
      return mc;
    }
  }
  fail("{}: unsupported model_type '{}' (linfer supports: {})", config.file(), type,
       fmt::join(supported_architectures(), ", "));
}

}  // namespace linfer
