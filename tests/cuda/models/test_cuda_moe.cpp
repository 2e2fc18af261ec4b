// The MoE's routing and routed experts on the GPU (Op::MoeRoute: kernels/cuda/moe_route.h, expert_gemv,
// moe_combine), against the same float64 references as the CPU's (tests/models/moe_reference.h):
//   - the routing kernel: sigmoid + correction bias, softmax with and without renormalisation,
//     group-limited selection, exact ties to the lower index, expert counts from 3 to 1000;
//   - Moe::forward on the CUDA backend (routed on the device) at decode sizes and over several of its
//     passes of routed_pairs_per_pass (token, expert) rows (the last one partial), both expert layouts, shared
//     expert plain and gated, none; passes longer than one grouped expert_gemv launch takes.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "../../models/moe_reference.h"
#include "../cuda_test_util.h"
#include "backend/backend.h"
#include "ffn/moe.h"

namespace {

using linfer::MoeDims;
using namespace moe_test;

// Routes on the device: logits up, moe_route, ids and weights down.
RouteFn device_route(linfer::Backend& be) {
  return [&be](const MoeDims& d, const std::vector<float>& logits, const std::vector<float>& bias, int64_t T,
               int32_t* ids, float* w) {
    const int64_t E = d.experts, k = d.top_k;
    linfer::Tmp tmp(be);
    const linfer::Mat l = tmp.mat(T, E), id = tmp.mat(T, k), wt = tmp.mat(T, k);
    be.upload(logits.data(), l);
    const linfer::Tensor b = bias.empty() ? linfer::Tensor() : tensor(bias, {E});
    be.moe_route(l, d, be.param(b), id, wt);
    std::vector<float> fid(T * k);
    be.download(id, fid.data());
    be.download(wt, w);
    for (int64_t i = 0; i < T * k; ++i) ids[i] = int32_t(fid[i]);
  };
}

class CudaMoe : public ::testing::Test {
 protected:
  void SetUp() override {
    LINFER_SKIP_WITHOUT_CUDA();
    be_ = linfer::make_cuda_backend();
  }
  std::shared_ptr<linfer::Backend> be_;
};

TEST_F(CudaMoe, RouteMatchesTheRule) {
  std::mt19937 rng(5);
  const auto route = device_route(*be_);
  const int64_t T = 37;
  for (auto [E, k] : {std::pair<int64_t, int64_t>{8, 2}, {64, 6}, {256, 8}, {16, 16}, {5, 1}, {1000, 13}}) {
    const auto logits = normal(rng, T * E, 2.0f);
    check_route(kimi_dims(E, k), logits, normal(rng, E, 0.1f), T, "sigmoid+bias", route);
    check_route(kimi_dims(E, k), logits, {}, T, "sigmoid, no bias", route);
    for (bool norm : {true, false})
      check_route(qwen_dims(E, k, norm), normal(rng, T * E, 3.0f), {}, T, norm ? "softmax" : "softmax raw", route);
  }
  MoeDims d = kimi_dims(72, 6);
  d.groups = 8, d.topk_groups = 3;
  check_route(d, normal(rng, T * 72, 2.0f), normal(rng, 72, 0.1f), T, "groups 8 / top 3", route);
  d.groups = 36, d.topk_groups = 1;  // top 3 with one kept group of 2: the third is a rejected expert's
  d.top_k = 3;                       // -inf choice, the lowest index first (as on the host)
  check_route(d, normal(rng, T * 72, 2.0f), normal(rng, 72, 0.1f), T, "groups 36 / top 1", route);
  for (int64_t E : {8, 40}) {  // exact ties
    const auto logits = levels(rng, 64 * E, {-1.0f, 0.0f, 0.5f, 2.0f});
    check_route(qwen_dims(E, 4, true), logits, {}, 64, "softmax ties", route);
    check_route(kimi_dims(E, 4), logits, levels(rng, E, {0.0f, 0.25f}), 64, "sigmoid ties", route);
  }
}

TEST_F(CudaMoe, ForwardRoutedOnTheDeviceInPasses) {
  MoeCase kimi{kimi_dims(12, 3)};
  kimi.d.intermediate = 40, kimi.d.shared_intermediate = 24, kimi.H = 72;
  MoeCase qwen{qwen_dims(20, 4, true)};
  qwen.d.intermediate = 17, qwen.d.shared_intermediate = 9, qwen.d.shared_gate = true, qwen.packed = true, qwen.H = 50;
  MoeCase bare{qwen_dims(9, 2, false)};
  bare.d.intermediate = 24;
  MoeCase many{qwen_dims(80, 2, false)};  // passes of 5,120 pairs: past one grouped expert_gemv launch
  many.d.intermediate = 8, many.H = 16;
  for (const MoeCase* c : {&kimi, &qwen, &bare, &many}) {
    const int64_t passes = 2 * (linfer::Moe::routed_pairs_per_pass(c->d.experts) / c->d.top_k) + 7;  // three passes
    for (int64_t T : {int64_t(1), int64_t(3), int64_t(9), int64_t(65), passes}) check_moe(*c, T, 60 + uint32_t(T), *be_);
  }
}

}  // namespace
