#pragma once
// model_type -> architecture factory. Adding an architecture: one factory file + one line in
// registry.cpp.

#include <string>
#include <vector>

#include "io/config.h"
#include "models/model_config.h"

namespace linfer {

using ArchitectureFactory = ModelConfig (*)(const Config& config);

// Architecture factories (one per file in src/models/).
ModelConfig kimi_linear_config(const Config& config);
ModelConfig qwen3_next_config(const Config& config);
ModelConfig mamba2_config(const Config& config);

// Builds the ModelConfig for config.json's model_type; throws naming the type and the file when
// linfer does not support it.
ModelConfig build_model_config(const Config& config);
std::vector<std::string> supported_architectures();

}  // namespace linfer
