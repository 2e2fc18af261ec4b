#pragma once
// Choosing the next token from a row of logits: greedy, or temperature / top-k / top-p sampling
// with a seeded generator (same seed, same logits -> same token on every machine: the generator is
// a fixed-algorithm mt19937_64 and the uniform draw is computed here, not by <random>'s
// implementation-defined distributions).
//
//   Sampler s({.temperature = 0.8f, .top_k = 40, .top_p = 0.95f, .seed = 7});
//   int32_t id = s.sample(logits, vocab);
//
// The algorithm, exactly (tests/runtime/test_sampling.cpp checks each step):
//   1. greedy, or temperature <= 0: the index of the largest logit, the lowest index among equal
//      logits; no random number is drawn.
//   2. z_i = logits[i] / temperature, in float. z_i = -inf masks token i (it is never drawn); a NaN
//      or +inf z_i, or a row whose z are all -inf, is refused with linfer::Error.
//   3. Candidates. "Rank order" is z descending, the lower index first among equal z.
//      - top-k cuts (0 < top_k < vocab): the top_k first tokens in rank order, kept in rank order
//        (a partial sort: only those k are ordered);
//      - else, top_p < 1: every token, in rank order (a full sort: the nucleus needs the order);
//      - else nothing cuts: every token in vocabulary order, nothing sorted (one pass for the max,
//        one for the weights, one for the draw).
//   4. Weights w_i = exp(z_i - max z) in float; W = their sum in double, in candidate order.
//   5. top_p < 1: keep the shortest prefix of the candidates whose mass (running sum of w_i / W)
//      reaches top_p (the token that crosses top_p is kept); W becomes the sum over the kept prefix.
//   6. One draw per token: u = (g() >> 11) * 2^-53 * W, where g is the sampler's mt19937_64 seeded
//      with `seed`. The token is the first candidate whose running sum of w (double, candidate
//      order) exceeds u; if rounding leaves u at or past the last sum, the last candidate with a
//      positive weight.
// Step 3's vocabulary order (no cut) and rank order draw from the same distribution but map a given
// u to different tokens, so a seed's sequence with no cut differs from versions that sorted there.
//
// Thread-safety: a Sampler holds its generator; use one per sequence.

#include <cstdint>
#include <random>
#include <vector>

namespace linfer {

struct SamplingParams {
  float temperature = 1.0f;  // <= 0: greedy
  int top_k = 0;             // 0: no limit
  float top_p = 1.0f;        // nucleus mass, (0, 1]
  uint64_t seed = 0;
  bool greedy = false;
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& p);
  int32_t sample(const float* logits, int64_t vocab);

 private:
  int32_t sample_unsorted(const float* logits, int64_t vocab);     // step 3, nothing cuts
  int32_t sample_ranked(const float* logits, int64_t vocab, int64_t k);  // step 3, top-k / top-p
  double uniform();                                                // [0, 1), step 6

  SamplingParams p_;
  std::mt19937_64 rng_;
  std::vector<float> w_;                         // [vocab] weights, vocabulary order; reused
  std::vector<std::pair<float, int32_t>> cand_;  // [vocab] (z or w, token), rank order; reused
};

int32_t argmax(const float* logits, int64_t vocab);

}  // namespace linfer
