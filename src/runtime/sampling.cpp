#include "runtime/sampling.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "linfer/core/error.h"

namespace linfer {

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// Names the first token whose scaled logit is NaN or +inf (only called once such a token is known).
[[noreturn]] void refuse_non_finite(const float* logits, int64_t vocab, float temperature) {
  for (int64_t i = 0; i < vocab; ++i) {
    const float z = logits[i] / temperature;
    if (!(z < kInf))
      fail("sampling: the logit of token {} is {} (divided by temperature {}: {}); logits must be finite "
           "(-inf masks a token)", i, logits[i], temperature, z);
  }
  fail("sampling: a logit is not finite");
}

}  // namespace

// The largest logit in 16 running maxima (independent compares, which the compiler turns into vector maxima
// even at the baseline ISA), then the first token that has it: 525 -> ~65 µs for 152K logits on a Zen 3
// (bench_sampling; max_element is one chain of dependent compares). A NaN max (a NaN first logit) takes
// max_element's answer.
int32_t argmax(const float* logits, int64_t vocab) {
  constexpr int64_t kLanes = 16;
  if (vocab < 2 * kLanes) return int32_t(std::max_element(logits, logits + vocab) - logits);
  float m[kLanes];
  std::copy(logits, logits + kLanes, m);
  int64_t i = kLanes;
  for (; i + kLanes <= vocab; i += kLanes)
    for (int64_t l = 0; l < kLanes; ++l) m[l] = logits[i + l] > m[l] ? logits[i + l] : m[l];  // std::max(m, x)
  float best = *std::max_element(m, m + kLanes);
  for (; i < vocab; ++i) best = std::max(best, logits[i]);
  for (int64_t j = 0; j < vocab; ++j)
    if (logits[j] == best) return int32_t(j);
  return int32_t(std::max_element(logits, logits + vocab) - logits);
}

Sampler::Sampler(const SamplingParams& p) : p_(p), rng_(p.seed) {
  LINFER_CHECK(p.top_p > 0.0f && p.top_p <= 1.0f, "top-p must be in (0, 1], got {}", p.top_p);
  LINFER_CHECK(p.top_k >= 0, "top-k must be >= 0, got {}", p.top_k);
  LINFER_CHECK(!std::isnan(p.temperature), "temperature must be a number, got {}", p.temperature);
}

double Sampler::uniform() {
  // The top 53 bits: identical on every platform.
  return double(rng_() >> 11) * (1.0 / 9007199254740992.0);
}

int32_t Sampler::sample(const float* logits, int64_t vocab) {
  LINFER_CHECK(vocab >= 1, "sampling: the row has {} logits", vocab);
  if (p_.greedy || p_.temperature <= 0.0f) return argmax(logits, vocab);
  const bool k_cuts = p_.top_k > 0 && p_.top_k < vocab;
  if (!k_cuts && p_.top_p >= 1.0f) return sample_unsorted(logits, vocab);
  return sample_ranked(logits, vocab, k_cuts ? p_.top_k : vocab);
}

int32_t Sampler::sample_unsorted(const float* logits, int64_t vocab) {
  w_.resize(size_t(vocab));
  float m = -kInf;
  bool finite = true;  // no NaN / +inf: one flag instead of a branch per token
  for (int64_t i = 0; i < vocab; ++i) {
    const float z = logits[i] / p_.temperature;
    finite &= z < kInf;
    w_[i] = z;
    m = std::max(m, z);
  }
  if (!finite) refuse_non_finite(logits, vocab, p_.temperature);
  LINFER_CHECK(m > -kInf, "sampling: every logit is -inf (all {} tokens masked)", vocab);
  double total = 0;
  for (int64_t i = 0; i < vocab; ++i) total += (w_[i] = std::exp(w_[i] - m));
  const double u = uniform() * total;
  double acc = 0;  // a masked token adds nothing to acc, so the loop never returns it
  for (int64_t i = 0; i < vocab; ++i) {
    acc += w_[i];
    if (u < acc) return int32_t(i);
  }
  int64_t last = vocab - 1;  // rounding: the last token that can be drawn
  while (last > 0 && w_[last] == 0.0f) --last;
  return int32_t(last);
}

int32_t Sampler::sample_ranked(const float* logits, int64_t vocab, int64_t k) {
  cand_.resize(size_t(vocab));
  bool finite = true;
  for (int64_t i = 0; i < vocab; ++i) {
    const float z = logits[i] / p_.temperature;
    finite &= z < kInf;
    cand_[i] = {z, int32_t(i)};
  }
  if (!finite) refuse_non_finite(logits, vocab, p_.temperature);
  // partial_sort keeps a heap of k: on a typical row most tokens lose one comparison with its top,
  // which measured 3-4x faster than nth_element + sort for k = 40 of 151,936 (bench_sampling). Over
  // the whole row (top-p alone) it would be a heap sort, 1.6x slower than std::sort.
  auto by_rank = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
  if (k < vocab) std::partial_sort(cand_.begin(), cand_.begin() + k, cand_.end(), by_rank);
  else std::sort(cand_.begin(), cand_.end(), by_rank);
  size_t n = size_t(k);

  // Softmax over the kept candidates (largest first), then the nucleus cut.
  const float m = cand_[0].first;
  LINFER_CHECK(m > -kInf, "sampling: every logit is -inf (all {} tokens masked)", vocab);
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
  const double u = uniform() * total;
  double acc = 0;
  for (size_t i = 0; i < n; ++i) {
    acc += cand_[i].first;
    if (u < acc) return cand_[i].second;
  }
  while (n > 1 && cand_[n - 1].first == 0.0f) --n;  // rounding: the last token that can be drawn
  return cand_[n - 1].second;
}

}  // namespace linfer
