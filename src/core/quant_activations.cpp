#include "linfer/core/quant_activations.h"

#include <atomic>

namespace linfer {

namespace {
std::atomic<QuantActivations> g_mode{QuantActivations::F32};
}  // namespace

void set_quant_activations(QuantActivations a) { g_mode.store(a, std::memory_order_relaxed); }
QuantActivations quant_activations() { return g_mode.load(std::memory_order_relaxed); }

const char* quant_activations_name(QuantActivations a) { return a == QuantActivations::Q8 ? "q8" : "f32"; }

std::optional<QuantActivations> parse_quant_activations(std::string_view name) {
  if (name == "f32") return QuantActivations::F32;
  if (name == "q8") return QuantActivations::Q8;
  return std::nullopt;
}

}  // namespace linfer
