// The mixture of experts against plain float64 references on random inputs:
//   - routing (moe_route): sigmoid scores + e_score_correction_bias for selection + renormalised
//     top-k + routed scaling (Kimi Linear), softmax top-k with and without norm_topk_prob
//     (Qwen3-Next), group-limited selection; exact ties go to the lower expert index;
//   - the whole block (Moe::forward): routed experts + shared expert (plain or sigmoid-gated), both
//     expert layouts (gate / up tensors, packed gate_up), prefill-sized and decode-sized T.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "ffn/moe.h"
#include "linfer/core/thread_pool.h"

namespace {

using linfer::MoeDims;
using linfer::RouterKind;

struct RefRoute {
  std::vector<int32_t> ids;     // descending selection key, ties to the lower index
  std::vector<double> weights;  // same order
  double margin = 0;            // key gap between the last chosen and the first rejected expert
};

// The routing rule, spelled out: scores from the logits, selection on score + bias (within the best
// groups), weights from the raw scores of the chosen experts.
RefRoute ref_route(const MoeDims& d, const float* logits, const float* bias) {
  const int64_t E = d.experts;
  std::vector<double> score(E), key(E);
  if (d.router == RouterKind::Softmax) {
    double m = -INFINITY, z = 0;
    for (int64_t e = 0; e < E; ++e) m = std::max(m, double(logits[e]));
    for (int64_t e = 0; e < E; ++e) z += std::exp(double(logits[e]) - m);
    for (int64_t e = 0; e < E; ++e) score[e] = std::exp(double(logits[e]) - m) / z;
  } else {
    for (int64_t e = 0; e < E; ++e) score[e] = 1.0 / (1.0 + std::exp(-double(logits[e])));
  }
  for (int64_t e = 0; e < E; ++e) key[e] = score[e] + (bias ? bias[e] : 0.0);
  if (d.groups > 1) {
    // A group's rank: the sum of its two best keys; experts outside the best topk_groups are out.
    const int64_t per = E / d.groups;
    std::vector<std::pair<double, int64_t>> groups;
    for (int64_t g = 0; g < d.groups; ++g) {
      std::vector<double> k(key.begin() + g * per, key.begin() + (g + 1) * per);
      std::sort(k.rbegin(), k.rend());
      groups.push_back({k[0] + (per > 1 ? k[1] : 0.0), g});
    }
    std::stable_sort(groups.begin(), groups.end(), [](auto& a, auto& b) { return a.first > b.first; });
    std::vector<bool> keep(d.groups, false);
    for (int64_t i = 0; i < d.topk_groups; ++i) keep[groups[i].second] = true;
    for (int64_t e = 0; e < E; ++e)
      if (!keep[e / per]) key[e] = -INFINITY;
  }
  std::vector<int32_t> order(E);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return key[a] > key[b]; });
  RefRoute r;
  double sum = 0;
  for (int64_t i = 0; i < d.top_k; ++i) sum += score[order[i]];
  for (int64_t i = 0; i < d.top_k; ++i) {
    r.ids.push_back(order[i]);
    r.weights.push_back(score[order[i]] / (d.renormalize ? sum : 1.0) * d.routed_scaling);
  }
  r.margin = d.top_k < E ? key[order[d.top_k - 1]] - key[order[d.top_k]] : INFINITY;
  return r;
}

MoeDims kimi_dims(int64_t E, int64_t k) {
  MoeDims d;
  d.experts = E, d.top_k = k, d.router = RouterKind::Sigmoid, d.correction_bias = true;
  d.renormalize = true, d.routed_scaling = 2.446;
  return d;
}

MoeDims qwen_dims(int64_t E, int64_t k, bool norm_topk_prob) {
  MoeDims d;
  d.experts = E, d.top_k = k, d.router = RouterKind::Softmax, d.renormalize = norm_topk_prob;
  return d;
}

// Routes T tokens and compares with the reference; near-ties (keys within 1e-6 that are not exact
// ties) may legitimately order differently in float32 and are compared on weights only.
void check_route(const MoeDims& d, const std::vector<float>& logits, const std::vector<float>& bias,
                 int64_t T, const char* what) {
  std::vector<int32_t> ids(T * d.top_k);
  std::vector<float> w(T * d.top_k);
  linfer::moe_route(d, logits.data(), bias.empty() ? nullptr : bias.data(), T, ids.data(), w.data());
  int compared = 0;
  for (int64_t t = 0; t < T; ++t) {
    const RefRoute r = ref_route(d, logits.data() + t * d.experts, bias.empty() ? nullptr : bias.data());
    if (r.margin != 0 && r.margin < 1e-6) continue;
    ++compared;
    for (int64_t i = 0; i < d.top_k; ++i) {
      ASSERT_EQ(ids[t * d.top_k + i], r.ids[i]) << what << " token " << t << " rank " << i;
      EXPECT_NEAR(w[t * d.top_k + i], r.weights[i], 2e-6 * std::max(1.0, std::fabs(r.weights[i])))
          << what << " token " << t << " rank " << i;
    }
  }
  EXPECT_GT(compared, T / 2) << what << ": too many near-ties to check";
}

std::vector<float> normal(std::mt19937& rng, size_t n, float scale = 1.0f) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Values from a handful of levels: many exact ties.
std::vector<float> levels(std::mt19937& rng, size_t n, std::vector<float> choices) {
  std::uniform_int_distribution<size_t> pick(0, choices.size() - 1);
  std::vector<float> v(n);
  for (float& x : v) x = choices[pick(rng)];
  return v;
}

TEST(MoeRoute, SigmoidWithCorrectionBiasRenormalisedAndScaled) {
  std::mt19937 rng(1);
  for (auto [E, k] : {std::pair<int64_t, int64_t>{8, 2}, {32, 4}, {64, 6}, {256, 8}, {16, 16}, {5, 1}}) {
    const int64_t T = 37;
    const auto logits = normal(rng, T * E, 2.0f);
    const auto bias = normal(rng, E, 0.1f);  // large enough to change the choice, not the weights
    check_route(kimi_dims(E, k), logits, bias, T, "sigmoid+bias");
    check_route(kimi_dims(E, k), logits, {}, T, "sigmoid, no bias");
  }
}

TEST(MoeRoute, BiasChangesSelectionButNotWeights) {
  // Expert 0 has the lowest score but a bias that makes it first: it is chosen, weighted by its score.
  MoeDims d = kimi_dims(4, 2);
  d.routed_scaling = 1.0;
  const std::vector<float> logits = {-3.0f, 1.0f, 0.5f, 2.0f}, bias = {10.0f, 0.0f, 0.0f, 0.0f};
  std::vector<int32_t> ids(2);
  std::vector<float> w(2);
  linfer::moe_route(d, logits.data(), bias.data(), 1, ids.data(), w.data());
  const double s0 = 1 / (1 + std::exp(3.0)), s3 = 1 / (1 + std::exp(-2.0));
  EXPECT_EQ(ids, (std::vector<int32_t>{0, 3}));
  EXPECT_NEAR(w[0], s0 / (s0 + s3), 1e-6);
  EXPECT_NEAR(w[1], s3 / (s0 + s3), 1e-6);
}

TEST(MoeRoute, SoftmaxTopKWithAndWithoutNormTopkProb) {
  std::mt19937 rng(2);
  for (bool norm : {true, false})
    for (auto [E, k] : {std::pair<int64_t, int64_t>{8, 2}, {32, 4}, {128, 8}, {512, 10}, {3, 3}}) {
      const int64_t T = 29;
      check_route(qwen_dims(E, k, norm), normal(rng, T * E, 3.0f), {}, T, norm ? "softmax norm" : "softmax raw");
    }
}

TEST(MoeRoute, ExactTiesGoToTheLowerIndex) {
  std::mt19937 rng(3);
  const int64_t T = 64;
  for (int64_t E : {8, 32}) {
    // Four logit levels over E experts: most tokens have ties across the top-k boundary.
    const auto logits = levels(rng, T * E, {-1.0f, 0.0f, 0.5f, 2.0f});
    check_route(qwen_dims(E, 4, true), logits, {}, T, "softmax ties");
    check_route(qwen_dims(E, 4, false), logits, {}, T, "softmax ties, raw");
    check_route(kimi_dims(E, 4), logits, levels(rng, E, {0.0f, 0.25f}), T, "sigmoid ties");
    check_route(kimi_dims(E, 4), logits, {}, T, "sigmoid ties, no bias");
  }
  // All equal: the first k experts, equal weights.
  const std::vector<float> flat(8, 0.3f);
  std::vector<int32_t> ids(3);
  std::vector<float> w(3);
  linfer::moe_route(qwen_dims(8, 3, true), flat.data(), nullptr, 1, ids.data(), w.data());
  EXPECT_EQ(ids, (std::vector<int32_t>{0, 1, 2}));
  for (float x : w) EXPECT_NEAR(x, 1.0 / 3, 1e-6);
}

TEST(MoeRoute, GroupLimitedSelection) {
  std::mt19937 rng(4);
  MoeDims d = kimi_dims(32, 4);
  d.groups = 8, d.topk_groups = 2;
  const int64_t T = 41;
  check_route(d, normal(rng, T * 32, 2.0f), normal(rng, 32, 0.1f), T, "groups 8 / top 2");
  d.groups = 4, d.topk_groups = 1;
  check_route(d, normal(rng, T * 32, 2.0f), normal(rng, 32, 0.1f), T, "groups 4 / top 1");
}

// ---- the whole block ---------------------------------------------------------------------------

struct RefMlp {
  std::vector<float> gate, up, down;  // [I, H], [I, H], [H, I]
};

std::vector<double> ref_mlp(const RefMlp& m, const float* x, int64_t H, int64_t I) {
  std::vector<double> h(I), y(H, 0.0);
  for (int64_t i = 0; i < I; ++i) {
    double g = 0, u = 0;
    for (int64_t j = 0; j < H; ++j) g += double(m.gate[i * H + j]) * x[j], u += double(m.up[i * H + j]) * x[j];
    h[i] = g / (1 + std::exp(-g)) * u;
  }
  for (int64_t j = 0; j < H; ++j)
    for (int64_t i = 0; i < I; ++i) y[j] += double(m.down[j * I + i]) * h[i];
  return y;
}

linfer::Tensor tensor(const std::vector<float>& v, linfer::Shape shape) {
  linfer::Tensor t = linfer::Tensor::zeros(std::move(shape));
  std::copy(v.begin(), v.end(), t.f32());
  return t;
}

struct MoeCase {
  MoeDims d;
  int64_t H = 24;
  bool packed = false;  // experts as one gate_up tensor
};

void check_moe(const MoeCase& c, int64_t T, uint32_t seed) {
  std::mt19937 rng(seed);
  const MoeDims& d = c.d;
  const int64_t H = c.H, E = d.experts, I = d.intermediate, Is = d.shared_intermediate;
  std::vector<linfer::Tensor> keep;  // owns every weight the views point into
  auto hold = [&](linfer::Tensor t) {
    keep.push_back(t);
    return linfer::cpu_backend().weight(t.view());
  };
  const float ws = 1.0f / std::sqrt(float(H));
  const auto router = normal(rng, E * H, ws);
  const auto bias = normal(rng, E, 0.05f);
  linfer::MoeWeights w;
  w.router = hold(tensor(router, {E, H}));
  if (d.correction_bias) w.correction_bias = tensor(bias, {E});
  std::vector<RefMlp> ref(E);
  std::vector<float> all_gate_up;
  for (int64_t e = 0; e < E; ++e) {
    ref[e] = {normal(rng, I * H, ws), normal(rng, I * H, ws), normal(rng, H * I, ws)};
    linfer::MlpWeights m;
    if (c.packed) {
      std::vector<float> gu(ref[e].gate);
      gu.insert(gu.end(), ref[e].up.begin(), ref[e].up.end());
      m.gate_up = hold(tensor(gu, {2 * I, H}));
    } else {
      m.gate = hold(tensor(ref[e].gate, {I, H}));
      m.up = hold(tensor(ref[e].up, {I, H}));
    }
    m.down = hold(tensor(ref[e].down, {H, I}));
    w.experts.push_back(m);
  }
  RefMlp shared;
  std::vector<float> shared_gate;
  if (Is > 0) {
    shared = {normal(rng, Is * H, ws), normal(rng, Is * H, ws), normal(rng, H * Is, ws)};
    w.shared.gate = hold(tensor(shared.gate, {Is, H}));
    w.shared.up = hold(tensor(shared.up, {Is, H}));
    w.shared.down = hold(tensor(shared.down, {H, Is}));
    if (d.shared_gate) {
      shared_gate = normal(rng, H, ws);
      w.shared_gate = hold(tensor(shared_gate, {1, H}));
    }
  }
  const linfer::Moe moe(d, std::move(w));

  auto x = normal(rng, T * H);
  std::vector<float> y(T * H, NAN);
  moe.forward(linfer::cpu_backend(), linfer::Mat(x.data(), T, H), linfer::Mat(y.data(), T, H));

  double num = 0, den = 0;
  for (int64_t t = 0; t < T; ++t) {
    const float* xt = x.data() + t * H;
    std::vector<float> logits(E);
    for (int64_t e = 0; e < E; ++e) {
      double s = 0;
      for (int64_t j = 0; j < H; ++j) s += double(router[e * H + j]) * xt[j];
      logits[e] = float(s);
    }
    const RefRoute r = ref_route(d, logits.data(), d.correction_bias ? bias.data() : nullptr);
    std::vector<double> want(H, 0.0);
    for (int64_t i = 0; i < d.top_k; ++i) {
      const auto ye = ref_mlp(ref[r.ids[i]], xt, H, I);
      for (int64_t j = 0; j < H; ++j) want[j] += r.weights[i] * ye[j];
    }
    if (Is > 0) {
      double g = 1;
      if (d.shared_gate) {
        double s = 0;
        for (int64_t j = 0; j < H; ++j) s += double(shared_gate[j]) * xt[j];
        g = 1 / (1 + std::exp(-s));
      }
      const auto ys = ref_mlp(shared, xt, H, Is);
      for (int64_t j = 0; j < H; ++j) want[j] += g * ys[j];
    }
    for (int64_t j = 0; j < H; ++j) {
      const double diff = y[t * H + j] - want[j];
      num += diff * diff, den += want[j] * want[j];
    }
  }
  EXPECT_LT(std::sqrt(num / den), 2e-5) << "T=" << T << " E=" << E << " k=" << d.top_k << (c.packed ? " packed" : "");
}

TEST(MoeForward, KimiStyleMatchesReference) {
  MoeCase c{kimi_dims(8, 2)};
  c.d.intermediate = 16, c.d.shared_intermediate = 32;
  for (int64_t T : {1, 2, 3, 7, 65}) check_moe(c, T, 10 + uint32_t(T));
}

TEST(MoeForward, QwenStyleGatedSharedExpertPackedExperts) {
  MoeCase c{qwen_dims(16, 4, true)};
  c.d.intermediate = 8, c.d.shared_intermediate = 24, c.d.shared_gate = true, c.packed = true;
  for (int64_t T : {1, 4, 5, 40}) check_moe(c, T, 20 + uint32_t(T));
  c.d.renormalize = false, c.packed = false;
  for (int64_t T : {1, 33}) check_moe(c, T, 30 + uint32_t(T));
}

TEST(MoeForward, NoSharedExpertAndTwoThreads) {
  MoeCase c{qwen_dims(32, 4, false)};
  c.d.intermediate = 12;
  linfer::set_num_threads(2);
  for (int64_t T : {1, 2, 17}) check_moe(c, T, 40 + uint32_t(T));
  linfer::set_num_threads(0);
}

TEST(MoeForward, ManyTokensPerExpertOnTwoThreadsMatchesReference) {
  // Prefill-sized batches (about 75 and 375 rows per expert) on two threads: each expert's GEMM splits
  // its rows across the pool.
  MoeCase c{kimi_dims(16, 4)};
  c.d.intermediate = 32, c.d.shared_intermediate = 32, c.H = 48;
  linfer::set_num_threads(2);
  for (int64_t T : {300, 1500}) check_moe(c, T, 50 + uint32_t(T));
  linfer::set_num_threads(0);
}

}  // namespace
