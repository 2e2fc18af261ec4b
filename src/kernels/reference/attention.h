#pragma once
// Reference (specification) of kernels/cpu/attention.h: for every query, every visible key, a
// float64 softmax with the max subtracted. Keys are addressed by absolute position; full attention
// reads them from the cache, sliding-window attention from the ring (positions before this call) or
// from the new rows.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "kernels/cpu/attention.h"

namespace linfer::kernels::ref {

void attention_prefill(const float* q, const AttentionDims& d, std::span<const int64_t> offsets,
                       std::span<const KvCache> kv, float* o);
void attention_decode(const float* q, const AttentionDims& d, std::span<const KvCache> kv, float* o);
void sliding_attention_prefill(const float* q, const float* k_new, const float* v_new, const AttentionDims& d,
                               int64_t window, std::span<const int64_t> offsets, std::span<const KvRing> rings,
                               float* o);
void sliding_attention_decode(const float* q, const float* k_new, const float* v_new, const AttentionDims& d,
                              int64_t window, std::span<const KvRing> rings, float* o);

// o[Dv] = Σ_j softmax_j(scale · q·k_j) v_j over keys [lo, hi]; key(j) / value(j) give row pointers.
// Shared with the MLA reference.
template <class KeyFn, class ValueFn>
void attend_one(const float* q, int64_t D, int64_t Dv, float scale, int64_t lo, int64_t hi, KeyFn key,
                ValueFn value, float* o) {
  std::vector<double> s(size_t(std::max<int64_t>(hi - lo + 1, 0)));
  double mx = -INFINITY;
  for (int64_t j = lo; j <= hi; ++j) {
    const float* k = key(j);
    double dot = 0;
    for (int64_t i = 0; i < D; ++i) dot += double(q[i]) * k[i];
    s[j - lo] = dot * scale;
    mx = std::max(mx, s[j - lo]);
  }
  double sum = 0;
  for (double& e : s) sum += (e = std::exp(e - mx));
  for (int64_t i = 0; i < Dv; ++i) {
    double acc = 0;
    for (int64_t j = lo; j <= hi; ++j) acc += s[j - lo] * value(j)[i];
    o[i] = float(acc / sum);
  }
}

}  // namespace linfer::kernels::ref
