#pragma once
// The mixture of experts' float64 references and checks, shared by the CPU tests (tests/models/test_moe.cpp)
// and the GPU ones (tests/cuda/models/test_cuda_moe.cpp): the routing rule spelled out (ref_route), a routing
// under test against it (check_route), and Moe::forward on a backend against the float64 block (check_moe).

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <random>
#include <vector>

#include "ffn/moe.h"

namespace moe_test {

using linfer::MoeDims;
using linfer::RouterKind;

struct RefRoute {
  std::vector<int32_t> ids;     // descending selection key, ties to the lower index
  std::vector<double> weights;  // same order
  double margin = 0;            // key gap between the last chosen and the first rejected expert
};

// The routing rule, spelled out: scores from the logits, selection on score + bias (within the best
// groups), weights from the raw scores of the chosen experts.
inline RefRoute ref_route(const MoeDims& d, const float* logits, const float* bias) {
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

inline MoeDims kimi_dims(int64_t E, int64_t k) {
  MoeDims d;
  d.experts = E, d.top_k = k, d.router = RouterKind::Sigmoid, d.correction_bias = true;
  d.renormalize = true, d.routed_scaling = 2.446;
  return d;
}

inline MoeDims qwen_dims(int64_t E, int64_t k, bool norm_topk_prob) {
  MoeDims d;
  d.experts = E, d.top_k = k, d.router = RouterKind::Softmax, d.renormalize = norm_topk_prob;
  return d;
}

// Routes T tokens and compares with the reference; near-ties (keys within 1e-6 that are not exact
// ties) may legitimately order differently in float32 and are compared on weights only.
// `route` is the routing under test: the host's moe_route, or a backend's.
using RouteFn = std::function<void(const MoeDims& d, const std::vector<float>& logits, const std::vector<float>& bias,
                                   int64_t T, int32_t* ids, float* w)>;

inline void host_route(const MoeDims& d, const std::vector<float>& logits, const std::vector<float>& bias, int64_t T,
                       int32_t* ids, float* w) {
  linfer::moe_route(d, logits.data(), bias.empty() ? nullptr : bias.data(), T, ids, w);
}

inline void check_route(const MoeDims& d, const std::vector<float>& logits, const std::vector<float>& bias, int64_t T,
                        const char* what, const RouteFn& route = host_route) {
  std::vector<int32_t> ids(T * d.top_k);
  std::vector<float> w(T * d.top_k);
  route(d, logits, bias, T, ids.data(), w.data());
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

inline std::vector<float> normal(std::mt19937& rng, size_t n, float scale = 1.0f) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Values from a handful of levels: many exact ties.
inline std::vector<float> levels(std::mt19937& rng, size_t n, std::vector<float> choices) {
  std::uniform_int_distribution<size_t> pick(0, choices.size() - 1);
  std::vector<float> v(n);
  for (float& x : v) x = choices[pick(rng)];
  return v;
}

struct RefMlp {
  std::vector<float> gate, up, down;  // [I, H], [I, H], [H, I]
};

inline std::vector<double> ref_mlp(const RefMlp& m, const float* x, int64_t H, int64_t I) {
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

inline linfer::Tensor tensor(const std::vector<float>& v, linfer::Shape shape) {
  linfer::Tensor t = linfer::Tensor::zeros(std::move(shape));
  std::copy(v.begin(), v.end(), t.f32());
  return t;
}

struct MoeCase {
  MoeDims d;
  int64_t H = 24;
  bool packed = false;  // experts as one gate_up tensor
};

// Moe::forward on `be` (weights, x and y in its memory; the experts' tables where it routes) against the
// float64 reference.
inline void check_moe(const MoeCase& c, int64_t T, uint32_t seed, linfer::Backend& be = linfer::cpu_backend()) {
  std::mt19937 rng(seed);
  const MoeDims& d = c.d;
  const int64_t H = c.H, E = d.experts, I = d.intermediate, Is = d.shared_intermediate;
  std::vector<linfer::Tensor> keep;  // owns every weight the views point into
  auto hold = [&](linfer::Tensor t) {
    keep.push_back(t);
    return be.weight(t.view(), linfer::WeightUse::Products);
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
  linfer::add_expert_tables(be, w);
  const linfer::Moe moe(d, std::move(w));

  auto x = normal(rng, T * H);
  std::vector<float> y(T * H, NAN);
  {
    linfer::Tmp tmp(be);
    const linfer::Mat bx = tmp.mat(T, H), by = tmp.mat(T, H);
    be.upload(x.data(), bx);
    moe.forward(be, bx, by);
    be.download(by, y.data());
  }

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

}  // namespace moe_test
