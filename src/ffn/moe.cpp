#include "ffn/moe.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "kernels/cpu/matmul.h"
#include "linfer/core/thread_pool.h"
#include "mixers/scratch.h"

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

namespace {

// Tokens per pass over the routed experts: bounds the gathered rows (chunk · top_k · hidden floats,
// twice) while leaving each expert enough rows for an efficient GEMM.
constexpr int64_t kChunk = 1024;

}  // namespace

void Moe::forward(const float* x, float* y, int64_t T) const {
  const int64_t E = d_.experts, k = d_.top_k;
  const int64_t hidden = w_.router.dim(1);
  Scratch s;

  float* logits = s.get(T * E);
  kernels::matmul(x, T, w_.router, nullptr, logits);
  thread_local std::vector<int32_t> ids;
  thread_local std::vector<float> wts;
  ids.resize(size_t(T * k));
  wts.resize(size_t(T * k));
  moe_route(d_, logits, w_.correction_bias.numel() ? w_.correction_bias.f32() : nullptr, T, ids.data(),
            wts.data());

  // Shared expert first (writes y), then the routed experts' weighted outputs are added.
  if (!w_.shared.down.empty()) {
    swiglu_mlp(w_.shared, x, y, T);
    if (!w_.shared_gate.empty()) {
      float* g = s.get(T);
      kernels::matmul(x, T, w_.shared_gate, nullptr, g);
      for (int64_t t = 0; t < T; ++t) {
        const float sg = 1.0f / (1.0f + std::exp(-g[t]));
        for (int64_t j = 0; j < hidden; ++j) y[t * hidden + j] *= sg;
      }
    }
  } else {
    std::fill(y, y + T * hidden, 0.0f);
  }

  const int64_t chunk = std::min(T, kChunk);
  float* xs = s.get(chunk * k * hidden);  // gathered inputs, grouped by expert
  float* ys = s.get(chunk * k * hidden);  // their outputs, same rows
  thread_local std::vector<int64_t> first, pos;  // per expert: first row; per slot t·k + i: its row
  thread_local std::vector<int32_t> active;      // experts with rows in this chunk
  for (int64_t t0 = 0; t0 < T; t0 += chunk) {
    const int64_t n_tok = std::min(chunk, T - t0), n_slots = n_tok * k;
    const int32_t* cid = ids.data() + t0 * k;
    // Counting sort of the chunk's slots by expert.
    first.assign(size_t(E + 1), 0);
    for (int64_t i = 0; i < n_slots; ++i) ++first[cid[i] + 1];
    for (int64_t e = 0; e < E; ++e) first[e + 1] += first[e];
    active.clear();
    for (int64_t e = 0; e < E; ++e)
      if (first[e + 1] > first[e]) active.push_back(int32_t(e));
    pos.resize(size_t(n_slots));
    {
      thread_local std::vector<int64_t> next;
      next.assign(first.begin(), first.end() - 1);
      for (int64_t i = 0; i < n_slots; ++i) pos[i] = next[cid[i]]++;
    }
    for (int64_t i = 0; i < n_slots; ++i)
      std::memcpy(xs + pos[i] * hidden, x + (t0 + i / k) * hidden, hidden * sizeof(float));

    // Plain pointers for the lambdas: a thread_local named inside a lambda that runs on a pool
    // worker would be the worker's own (empty) instance.
    const int64_t* row0 = first.data();
    const int64_t* row_of = pos.data();
    const int32_t* experts = active.data();
    const float* wt_of = wts.data() + t0 * k;
    auto run_expert = [&](int32_t e) {
      swiglu_mlp(w_.experts[e], xs + row0[e] * hidden, ys + row0[e] * hidden, row0[e + 1] - row0[e]);
    };
    // Prefill: many experts with a GEMM's worth of rows each; one parallel loop over experts keeps
    // each expert's GEMMs on one thread (no packing repeated across row splits, one join per
    // layer instead of three per expert). Decode: a few rows per expert; the GEMVs split rows.
    const int64_t n_active = int64_t(active.size());
    const bool by_expert = n_active >= 2 * num_threads() && n_slots >= 8 * n_active;
    if (by_expert) {
      parallel_for(0, n_active, [&](int64_t a0, int64_t a1) {
        for (int64_t a = a0; a < a1; ++a) run_expert(experts[a]);
      });
    } else {
      for (int32_t e : active) run_expert(e);
    }

    // y[t] += Σ_i weight_i · expert_i(x[t]), in rank order (independent of the thread count).
    parallel_for(0, n_tok, [&](int64_t a, int64_t b) {
      for (int64_t t = a; t < b; ++t) {
        float* dst = y + (t0 + t) * hidden;
        for (int64_t i = 0; i < k; ++i) {
          const float wt = wt_of[t * k + i];
          const float* src = ys + row_of[t * k + i] * hidden;
          for (int64_t c = 0; c < hidden; ++c) dst[c] += wt * src[c];
        }
      }
    }, 16);
  }
}

}  // namespace linfer
