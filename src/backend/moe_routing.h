#pragma once
// A MoE layer's routing rule (ffn/moe.h has the maths): what the host's moe_route and a backend's
// Backend::moe_route both follow.

#include <cstdint>

namespace linfer {

enum class RouterKind : uint8_t { Softmax, Sigmoid };

struct MoeRouting {
  int64_t experts = 0, top_k = 0;
  RouterKind router = RouterKind::Softmax;
  bool renormalize = true;
  double routed_scaling = 1.0;
  int64_t groups = 1, topk_groups = 1;  // group-limited routing (DeepSeek style); 1, 1 = plain top-k
};

}  // namespace linfer
