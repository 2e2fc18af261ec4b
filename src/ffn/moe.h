#pragma once
// Mixture of experts with optional shared expert.
//   scores = softmax(x·Wᵀ) (Qwen3-Next) or sigmoid(x·Wᵀ) (Kimi Linear), float32
//   experts = top-k of scores (+ e_score_correction_bias when present: selection only; with
//             groups > 1, only the top topk_groups groups, ranked by the sum of their best two)
//   weights = the chosen scores, renormalised to sum 1 when `renormalize`, × routed_scaling
//   y = Σ weight_e · expert_e(x) + [sigmoid(x·w_sg)] · shared(x)
// Two ways through, one rule. Where the backend routes (Op::MoeRoute: the GPU), the top-k, each (token,
// expert) pair's products and the weighted sum run there, routed_pairs_per_pass pairs at a time (bounded
// scratch; no trip to the host: a decode step records as one CUDA graph, and a prefill never waits for the
// device). Otherwise (the CPU) the top-k runs on the host (moe_route) and tokens are grouped by expert, so
// that each expert runs one GEMM over its tokens.

#include <algorithm>
#include <vector>

#include "ffn/ffn.h"
#include "ffn/mlp.h"
#include "linfer/core/tensor.h"

namespace linfer {

struct MoeWeights {
  Weight router;                  // [E, hidden]
  Tensor correction_bias;         // f32 [E] or empty, on the host (routing on the host)
  Param bias;                     // the same on the backend (routing there)
  std::vector<MlpWeights> experts;
  MlpWeights shared;              // down empty: no shared expert
  Weight shared_gate;             // [1, hidden] or empty
  ExpertTable gate_up, down;      // the experts' tables where the backend routes (Op::MoeRoute), else empty
};

// Where `be` routes (Op::MoeRoute): w's experts as tables in be's memory, and the correction bias there.
void add_expert_tables(Backend& be, MoeWeights& w);

class Moe final : public Ffn {
 public:
  Moe(const MoeDims& dims, MoeWeights w) : d_(dims), w_(std::move(w)) {}
  // (token, expert) rows per pass where the backend routes (what bounds that path's scratch): kRoutedPairsPerExpert
  // per expert, so that each expert's rows fill the tensor-core products' 64-row tiles on average (H100,
  // Kimi-Linear-48B's 256 experts: 0.19 µs per row of the gate / up product at 64 rows per expert against 0.48 at
  // 16, bench/cuda/moe.cpp), and between kRoutedChunkPairs and kRoutedMaxPairs.
  static constexpr int64_t kRoutedChunkPairs = 4096, kRoutedPairsPerExpert = 64, kRoutedMaxPairs = 65536;
  static int64_t routed_pairs_per_pass(int64_t experts) {
    return std::clamp(kRoutedPairsPerExpert * experts, kRoutedChunkPairs, kRoutedMaxPairs);
  }
  void forward(Backend& be, const Mat& x, const Mat& y) const override;
  bool step_replayable(int64_t) const override { return routed_on_backend(); }

 private:
  bool routed_on_backend() const { return !w_.gate_up.empty(); }
  // The routed experts' part of forward, after the router's logits (and the shared expert's up products) ran.
  void experts_on_host(Backend& be, const Mat& x, const Mat& logits, float* h_shared, const Mat& g, const Mat& y) const;
  void experts_on_backend(Backend& be, const Mat& x, const Mat& logits, float* h_shared, const Mat& g,
                          const Mat& y) const;

  MoeDims d_;
  MoeWeights w_;
};

// Routing alone (testable): for each token, top_k expert ids, best first (by score + bias; exact
// ties go to the lower index), and their weights.
void moe_route(const MoeRouting& d, const float* logits,  // [T, E]
               const float* correction_bias,            // [E] or null
               int64_t T, int32_t* ids,                 // [T, top_k]
               float* weights);                         // [T, top_k]

}  // namespace linfer
