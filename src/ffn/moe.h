#pragma once
// Mixture of experts with optional shared expert.
//   scores = softmax(x·Wᵀ) (Qwen3-Next) or sigmoid(x·Wᵀ) (Kimi Linear), float32
//   experts = top-k of scores (+ e_score_correction_bias when present: selection only; with
//             groups > 1, only the top topk_groups groups, ranked by the sum of their best two)
//   weights = the chosen scores, renormalised to sum 1 when `renormalize`, × routed_scaling
//   y = Σ weight_e · expert_e(x) + [sigmoid(x·w_sg)] · shared(x)
// Tokens are grouped by expert so each expert runs one GEMM over its tokens. The router's logits come
// to the host for the top-k (moe_route); the rest runs on the backend.

#include <vector>

#include "ffn/ffn.h"
#include "ffn/mlp.h"
#include "linfer/core/tensor.h"

namespace linfer {

struct MoeWeights {
  Weight router;                  // [E, hidden]
  Tensor correction_bias;         // f32 [E] or empty, on the host: routing runs there
  std::vector<MlpWeights> experts;
  MlpWeights shared;              // down empty: no shared expert
  Weight shared_gate;             // [1, hidden] or empty
};

class Moe final : public Ffn {
 public:
  Moe(const MoeDims& dims, MoeWeights w) : d_(dims), w_(std::move(w)) {}
  void forward(Backend& be, const Mat& x, const Mat& y) const override;

 private:
  MoeDims d_;
  MoeWeights w_;
};

// Routing alone (testable): for each token, top_k expert ids, best first (by score + bias; exact
// ties go to the lower index), and their weights.
void moe_route(const MoeDims& d, const float* logits,  // [T, E]
               const float* correction_bias,            // [E] or null
               int64_t T, int32_t* ids,                 // [T, top_k]
               float* weights);                         // [T, top_k]

}  // namespace linfer
