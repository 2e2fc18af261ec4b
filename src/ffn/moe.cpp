#include "ffn/moe.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

namespace linfer {

void moe_route(const MoeDims& d, const float* logits, const float* correction_bias, int64_t T, int32_t* ids,
               float* weights) {
  const int64_t E = d.experts, k = d.top_k, G = d.groups, per_group = E / G;
  // Per-thread buffers: routing runs once per MoE layer per forward, so decode would otherwise
  // allocate several small vectors per layer per token.
  thread_local std::vector<float> score, choice, group_score;
  thread_local std::vector<int32_t> order, group_order;
  thread_local std::vector<char> keep;
  score.resize(size_t(E)), choice.resize(size_t(E)), order.resize(size_t(E));
  group_score.resize(size_t(G)), group_order.resize(size_t(G)), keep.resize(size_t(G));
  for (int64_t t = 0; t < T; ++t) {
    const float* l = logits + t * E;
    if (d.router == RouterKind::Softmax) {
      const float m = *std::max_element(l, l + E);
      double sum = 0;
      for (int64_t e = 0; e < E; ++e) sum += score[e] = std::exp(l[e] - m);
      for (int64_t e = 0; e < E; ++e) score[e] = float(score[e] / sum);
    } else {
      for (int64_t e = 0; e < E; ++e) score[e] = 1.0f / (1.0f + std::exp(-l[e]));
    }
    for (int64_t e = 0; e < E; ++e) choice[e] = score[e] + (correction_bias ? correction_bias[e] : 0.0f);
    if (G > 1) {
      // Keep the topk_groups groups whose two best choices sum highest; mask the rest out.
      for (int64_t g = 0; g < G; ++g) {
        float a = -INFINITY, b = -INFINITY;
        for (int64_t e = g * per_group; e < (g + 1) * per_group; ++e) {
          if (choice[e] > a) b = a, a = choice[e];
          else if (choice[e] > b) b = choice[e];
        }
        group_score[g] = a + (per_group > 1 ? b : 0.0f);
      }
      std::iota(group_order.begin(), group_order.end(), 0);
      std::partial_sort(group_order.begin(), group_order.begin() + d.topk_groups, group_order.end(),
                        [&](int32_t a, int32_t b) { return group_score[a] > group_score[b]; });
      std::fill(keep.begin(), keep.end(), 0);
      for (int64_t i = 0; i < d.topk_groups; ++i) keep[group_order[i]] = 1;
      for (int64_t e = 0; e < E; ++e)
        if (!keep[e / per_group]) choice[e] = -INFINITY;
    }
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int32_t a, int32_t b) {
      return choice[a] > choice[b] || (choice[a] == choice[b] && a < b);
    });
    float sum = 0;
    for (int64_t i = 0; i < k; ++i) sum += score[order[i]];
    // Kimi adds 1e-20 to the denominator; it cannot matter for a sum of positive scores in float32.
    const float norm = d.renormalize ? 1.0f / sum : 1.0f;
    for (int64_t i = 0; i < k; ++i) {
      ids[t * k + i] = order[i];
      weights[t * k + i] = score[order[i]] * norm * float(d.routed_scaling);
    }
  }
}

void Moe::forward(Backend& be, const Mat& x, const Mat& y) const {
  const int64_t T = x.rows, E = d_.experts, k = d_.top_k;
  const int64_t hidden = w_.router.dim(1);
  Tmp tmp(be);

  Mat logits = tmp.mat(T, E);
  be.matmul(x, w_.router, {}, logits);
  thread_local std::vector<float> host_logits;
  host_logits.resize(size_t(T * E));
  be.download(logits, host_logits.data());
  thread_local std::vector<int32_t> ids;
  thread_local std::vector<float> wts;
  ids.resize(size_t(T * k));
  wts.resize(size_t(T * k));
  moe_route(d_, host_logits.data(), w_.correction_bias.numel() ? w_.correction_bias.f32() : nullptr, T, ids.data(),
            wts.data());

  // Shared expert first (writes y), then each routed expert over its gathered tokens.
  if (!w_.shared.down.empty()) {
    swiglu_mlp(be, w_.shared, x, y);
    if (!w_.shared_gate.empty()) {
      Mat g = tmp.mat(T, 1);
      be.matmul(x, w_.shared_gate, {}, g);
      be.scale_rows_sigmoid(y, g);
    }
  } else {
    be.fill(y, 0.0f);
  }

  thread_local std::vector<std::vector<int64_t>> slots;  // per expert: slots t·k + i routed to it
  thread_local std::vector<int64_t> rows;                // their tokens
  thread_local std::vector<float> row_w;                 // their weights
  slots.resize(size_t(E));
  for (auto& r : slots) r.clear();
  for (int64_t i = 0; i < T * k; ++i) slots[ids[i]].push_back(i);
  Mat xs_all = tmp.mat(T, hidden);
  Mat ys_all = tmp.mat(T, hidden);
  for (int64_t e = 0; e < E; ++e) {
    const auto& r = slots[e];
    if (r.empty()) continue;
    const int64_t n = int64_t(r.size());
    rows.resize(size_t(n));
    row_w.resize(size_t(n));
    for (int64_t j = 0; j < n; ++j) rows[j] = r[j] / k, row_w[j] = wts[r[j]];
    Mat in = x;  // one token (decode): the expert reads x itself, no gather
    if (T > 1) {
      in = xs_all.rows_of(0, n);
      be.gather_rows(x, rows, in);
    }
    const Mat ys = ys_all.rows_of(0, n);
    swiglu_mlp(be, w_.experts[e], in, ys);
    be.scatter_add_rows(ys, rows, row_w, y);
  }
}

}  // namespace linfer
