#pragma once
// Choosing the next token from a row of logits: greedy, or temperature / top-k / top-p sampling
// with a seeded generator (same seed, same logits -> same token on every machine: the generator is
// a fixed-algorithm mt19937_64 and the uniform draw is computed here, not by <random>'s
// implementation-defined distributions).
//
//   Sampler s({.temperature = 0.8f, .top_k = 40, .top_p = 0.95f, .seed = 7});
//   int32_t id = s.sample(logits, vocab);
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
  SamplingParams p_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> cand_;  // reused: no allocation per token
};

int32_t argmax(const float* logits, int64_t vocab);

}  // namespace linfer
