#include "runtime/sampling.h"

#include <algorithm>
#include <cmath>

#include "linfer/core/error.h"

namespace linfer {

int32_t argmax(const float* logits, int64_t vocab) {
  return int32_t(std::max_element(logits, logits + vocab) - logits);
}

Sampler::Sampler(const SamplingParams& p) : p_(p), rng_(p.seed) {
  LINFER_CHECK(p.top_p > 0.0f && p.top_p <= 1.0f, "top-p must be in (0, 1], got {}", p.top_p);
  LINFER_CHECK(p.top_k >= 0, "top-k must be >= 0, got {}", p.top_k);
}

int32_t Sampler::sample(const float* logits, int64_t vocab) {
  if (p_.greedy || p_.temperature <= 0.0f) return argmax(logits, vocab);
  cand_.resize(size_t(vocab));
  for (int64_t i = 0; i < vocab; ++i) cand_[i] = {logits[i] / p_.temperature, int32_t(i)};
  auto by_logit = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
  size_t n = cand_.size();
  if (p_.top_k > 0 && size_t(p_.top_k) < n) {
    std::partial_sort(cand_.begin(), cand_.begin() + p_.top_k, cand_.end(), by_logit);
    n = size_t(p_.top_k);
  } else {
    std::sort(cand_.begin(), cand_.end(), by_logit);
  }
  // Softmax over the kept candidates (sorted, largest first), then the nucleus cut.
  const float m = cand_[0].first;
  double total = 0;
  for (size_t i = 0; i < n; ++i) total += (cand_[i].first = std::exp(cand_[i].first - m));
  if (p_.top_p < 1.0f) {
    double mass = 0;
    size_t keep = 0;
    while (keep < n) {
      mass += cand_[keep++].first / total;
      if (mass >= p_.top_p) break;
    }
    n = keep;
    total = 0;
    for (size_t i = 0; i < n; ++i) total += cand_[i].first;
  }
  // Uniform in [0, 1) from the top 53 bits: identical on every platform.
  const double u = double(rng_() >> 11) * (1.0 / 9007199254740992.0) * total;
  double acc = 0;
  for (size_t i = 0; i < n; ++i) {
    acc += cand_[i].first;
    if (u < acc) return cand_[i].second;
  }
  return cand_[n - 1].second;
}

}  // namespace linfer
