#include "runtime/logprobs.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace linfer {

TokenLogprobs token_logprobs(const float* logits, int64_t vocab, int32_t id, int top_n) {
  double mx = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < vocab; ++i) mx = std::max(mx, double(logits[i]));
  double sum = 0.0;
  for (int64_t i = 0; i < vocab; ++i) sum += std::exp(double(logits[i]) - mx);
  const double lse = mx + std::log(sum);
  auto lp = [&](int64_t i) { return float(double(logits[i]) - lse); };

  TokenLogprobs out;
  out.id = id;
  out.logprob = lp(id);
  const int64_t k = std::min<int64_t>(std::max(top_n, 0), vocab);
  if (k == 0) return out;
  std::vector<int32_t> ids(static_cast<size_t>(vocab));
  for (int64_t i = 0; i < vocab; ++i) ids[size_t(i)] = int32_t(i);
  auto better = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), better);
  for (int64_t i = 0; i < k; ++i) out.top.emplace_back(ids[size_t(i)], lp(ids[size_t(i)]));
  return out;
}

}  // namespace linfer
