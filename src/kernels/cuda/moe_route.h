#pragma once
// A MoE layer's routing on the GPU (ffn/moe.h's rule, as the host's moe_route): per token, scores from the
// router's logits (softmax or sigmoid), the choice score + e_score_correction_bias where given, group-limited
// selection where groups > 1, the top_k by choice (exact ties to the lower expert), and their scores as
// weights (renormalised to sum 1 where asked, × routed_scaling). Scores are float32 throughout (the host
// sums the softmax in double), so a weight agrees with the host's to float32 rounding, and an expert whose
// choice ties another's within that rounding may be picked in the other's place.
//
//   moe_route(logits, routing, d_bias, ids, weights, stream);  // ids [T, top_k] as floats, weights [T, top_k]

#include <cuda_runtime.h>

#include "backend/moe_routing.h"
#include "kernels/cuda/dense.h"

namespace linfer::kernels::cuda {

// Experts a routing call takes: 32 per lane of the one warp per token.
constexpr int64_t kRouteMaxExperts = 1024;

// logits [T, E]; bias [E] or null; ids and weights [T, top_k], ids as floats (exact expert numbers).
void moe_route(const Rows& logits, const MoeRouting& r, const float* bias, const Rows& ids, const Rows& weights,
               cudaStream_t stream);

}  // namespace linfer::kernels::cuda
