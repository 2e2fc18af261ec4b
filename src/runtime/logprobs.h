#pragma once
// Log-probabilities of a token and of the most likely alternatives, from one row of logits: the
// model's own distribution (log-softmax of the raw logits, before temperature, top-k / top-p or any
// mask), as vLLM reports them by default.
//
//   TokenLogprobs lp = token_logprobs(row, vocab, chosen_id, 5);   // lp.top: 5 best, best first

#include <cstdint>
#include <utility>
#include <vector>

namespace linfer {

struct TokenLogprobs {
  int32_t id = -1;
  float logprob = 0.0f;
  std::vector<std::pair<int32_t, float>> top;  // (id, logprob), most likely first, lower id first on ties
};

// top_n >= 0 alternatives (capped at vocab). Computed in double; a row with a NaN or no finite value
// gives NaN logprobs rather than an exception (the sampler refuses such rows on its own).
TokenLogprobs token_logprobs(const float* logits, int64_t vocab, int32_t id, int top_n);

}  // namespace linfer
