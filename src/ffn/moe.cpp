#include "ffn/moe.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

namespace linfer {

void moe_route(const MoeRouting& d, const float* logits, const float* correction_bias, int64_t T, int32_t* ids,
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

void add_expert_tables(Backend& be, MoeWeights& w) {
  if (!be.supports(Op::MoeRoute)) return;
  std::vector<const Weight*> first, second, down;
  for (const MlpWeights& e : w.experts) {
    first.push_back(e.gate_up.empty() ? &e.gate : &e.gate_up);
    if (e.gate_up.empty()) second.push_back(&e.up);
    down.push_back(&e.down);
  }
  w.gate_up = be.expert_table(first, second);
  w.down = be.expert_table(down, {});
  w.bias = be.param(w.correction_bias);
}

void Moe::forward(Backend& be, const Mat& x, const Mat& y) const {
  const int64_t T = x.rows;
  const bool shared = !w_.shared.down.empty(), shared_gate = shared && !w_.shared_gate.empty();
  Tmp tmp(be);
  thread_local std::vector<Backend::MatmulCall> calls;
  // Everything that reads x alone, in one call: the router, the shared expert's gate and up, its gate.
  const Mat logits = tmp.mat(T, d_.experts);
  float* h_shared = shared ? tmp.mat(T, 2 * w_.shared.intermediate()).p : nullptr;
  const Mat g = shared_gate ? tmp.mat(T, 1) : Mat();
  calls.clear();
  calls.push_back({x, &w_.router, logits});
  if (shared) swiglu_up_calls(w_.shared, x, h_shared, calls);
  if (shared_gate) calls.push_back({x, &w_.shared_gate, g});
  be.matmul_many(calls);
  if (routed_on_backend()) return experts_on_backend(be, x, logits, h_shared, g, y);
  experts_on_host(be, x, logits, h_shared, g, y);
}

// The shared expert into y first; then per chunk of tokens, each token's top_k (token, expert) pairs side by
// side: h [n·k, 2·I] = each pair's gate / up, then its down product into ys [n·k, hidden], summed into y's
// rows with the routing weights.
void Moe::experts_on_backend(Backend& be, const Mat& x, const Mat& logits, float* h_shared, const Mat& g,
                             const Mat& y) const {
  const int64_t T = x.rows, k = d_.top_k, I = d_.intermediate;
  const int64_t chunk = std::min(T, std::max<int64_t>(1, routed_pairs_per_pass(d_.experts) / k));  // tokens per pass
  Tmp tmp(be);
  if (h_shared) {
    be.matmul(swiglu_activate(be, w_.shared, T, h_shared), w_.shared.down, {}, y);
    if (g.p) be.scale_rows_sigmoid(y, g);
  } else {
    be.fill(y, 0.0f);
  }
  const Mat ids_all = tmp.mat(chunk, k), wts_all = tmp.mat(chunk, k), h_all = tmp.mat(chunk * k, 2 * I),
            ys_all = tmp.mat(chunk * k, y.cols);
  for (int64_t t0 = 0; t0 < T; t0 += chunk) {
    const int64_t n = std::min(chunk, T - t0);
    const Mat ids = ids_all.rows_of(0, n), wts = wts_all.rows_of(0, n), h = h_all.rows_of(0, n * k),
              ys = ys_all.rows_of(0, n * k);
    be.moe_route(logits.rows_of(t0, n), d_, w_.bias, ids, wts);
    be.expert_matmul(x.rows_of(t0, n), k, w_.gate_up, ids, h);
    const Mat act = h.cols_of(0, I);
    be.swiglu(act, h.cols_of(I, I), act);
    be.expert_matmul(act, 1, w_.down, ids, ys);
    be.moe_combine(ys, wts, y.rows_of(t0, n));
  }
}

void Moe::experts_on_host(Backend& be, const Mat& x, const Mat& logits, float* h_shared, const Mat& g,
                          const Mat& y) const {
  const int64_t T = x.rows, E = d_.experts, k = d_.top_k, I = d_.intermediate;
  const int64_t hidden = w_.router.dim(1);
  const bool shared = h_shared != nullptr, shared_gate = g.p != nullptr;
  Tmp tmp(be);
  // Per-thread buffers (reused: decode allocates nothing once they have grown).
  thread_local std::vector<Backend::MatmulCall> calls;
  thread_local std::vector<float> host_logits, wts;
  thread_local std::vector<int32_t> ids;
  thread_local std::vector<int64_t> by_expert, begin;    // slots t·k + i grouped by expert: begin[e] ..
  thread_local std::vector<int64_t> rows;                // their tokens, expert after expert
  thread_local std::vector<float> row_w;                 // their weights

  host_logits.resize(size_t(T * E));
  be.download(logits, host_logits.data());
  ids.resize(size_t(T * k));
  wts.resize(size_t(T * k));
  moe_route(d_, host_logits.data(), w_.correction_bias.numel() ? w_.correction_bias.f32() : nullptr, T, ids.data(),
            wts.data());
  // Counting sort of the slots by expert (stable: each expert's slots in token order).
  begin.assign(size_t(E + 1), 0);
  for (int64_t i = 0; i < T * k; ++i) ++begin[size_t(ids[i]) + 1];
  for (int64_t e = 0; e < E; ++e) begin[e + 1] += begin[e];
  by_expert.resize(size_t(T * k));
  for (int64_t i = 0; i < T * k; ++i) by_expert[size_t(begin[size_t(ids[i])]++)] = i;
  for (int64_t e = E; e > 0; --e) begin[e] = begin[e - 1];
  begin[0] = 0;
  auto slots = [&](int64_t e) {
    return std::span<const int64_t>(by_expert).subspan(size_t(begin[e]), size_t(begin[e + 1] - begin[e]));
  };

  // The routed experts in groups of at most kGroupRows gathered rows (all of a decode step's experts
  // are one group; a long prefill's scratch stays bounded), each group's gate / up products in one
  // call and its down products (with the shared expert's, in the first group) in another. y is the
  // shared expert's output first, then each expert's rows added in expert order.
  constexpr int64_t kGroupRows = 1024;
  const int64_t cap = std::min(T * k, std::max(kGroupRows, T));  // one expert alone has at most T rows
  Mat xs = tmp.mat(cap, hidden), ys = tmp.mat(cap, hidden);
  float* h = tmp.mat(cap, 2 * I).p;
  bool shared_done = !shared;
  if (!shared) be.fill(y, 0.0f);
  for (int64_t first = 0; first < E;) {
    // Experts [first, last), expert e's rows at [off, off + n) of xs / ys / h (off: the rows before it).
    int64_t last = first, used = 0;
    rows.clear();
    row_w.clear();
    for (; last < E; ++last) {
      const int64_t n = int64_t(slots(last).size());
      if (used + n > cap) break;
      for (int64_t s : slots(last)) rows.push_back(s / k), row_w.push_back(wts[s]);
      used += n;
    }
    if (used > 0 && T > 1) be.gather_rows(x, rows, xs.rows_of(0, used));  // one token: experts read x
    calls.clear();
    for (int64_t e = first, off = 0; e < last; off += int64_t(slots(e).size()), ++e)
      if (!slots(e).empty())
        swiglu_up_calls(w_.experts[e], T > 1 ? xs.rows_of(off, int64_t(slots(e).size())) : x, h + off * 2 * I, calls);
    be.matmul_many(calls);
    calls.clear();
    for (int64_t e = first, off = 0; e < last; off += int64_t(slots(e).size()), ++e) {
      const int64_t n = int64_t(slots(e).size());
      if (n == 0) continue;
      calls.push_back({swiglu_activate(be, w_.experts[e], n, h + off * 2 * I), &w_.experts[e].down, ys.rows_of(off, n)});
    }
    if (!shared_done) {
      calls.push_back({swiglu_activate(be, w_.shared, T, h_shared), &w_.shared.down, y});
      shared_done = true;
    }
    be.matmul_many(calls);
    if (first == 0 && shared_gate) be.scale_rows_sigmoid(y, g);
    for (int64_t e = first, off = 0; e < last; off += int64_t(slots(e).size()), ++e) {
      const int64_t n = int64_t(slots(e).size());
      if (n > 0) be.scatter_add_rows(ys.rows_of(off, n), std::span(rows).subspan(size_t(off), size_t(n)),
                                     std::span(row_w).subspan(size_t(off), size_t(n)), y);
    }
    first = last;
  }
}

}  // namespace linfer
