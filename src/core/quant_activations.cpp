#include "linfer/core/quant_activations.h"

#include <atomic>

namespace linfer {

namespace {
std::atomic<QuantActivations> g_mode{QuantActivations::F32};
}  // namespace

void set_quant_activations(QuantActivations a) { g_mode.store(a, std::memory_order_relaxed); }
QuantActivations quant_activations() { return g_mode.load(std::memory_order_relaxed); }

const char* quant_activations_name(QuantActivations a) {
  switch (a) {
    case QuantActivations::Q8: return "q8";
    case QuantActivations::BF16: return "bf16";
    case QuantActivations::F32: break;
  }
  return "f32";
}

std::optional<QuantActivations> parse_quant_activations(std::string_view name) {
  for (QuantActivations a : kQuantActivations)
    if (name == quant_activations_name(a)) return a;
  return std::nullopt;
}

}  // namespace linfer
