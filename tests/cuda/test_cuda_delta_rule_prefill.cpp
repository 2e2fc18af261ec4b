// The chunked delta-rule prefill kernel (kernels/cuda/delta_rule_prefill.h) against the float64 reference
// (reference::delta_rule, token by token): packed sequences of awkward lengths (not multiples of the chunk,
// one empty) in random slots of a larger pool with a random initial state; outputs and final states must
// match, every other slot must be untouched. Every tensor-core mode runs on every case, each from the same
// initial pool. Decay None (DeltaNet), Scalar (GDN) and PerKey (KDA: g [T, HV, K], strong enough per channel
// that a chunk's cumulative decay underflows float32, beside channels that barely decay).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "cuda_test_util.h"
#include "prefill_modes.h"
#include "kernels/cuda/delta_rule_prefill.h"
#include "kernels/reference/delta_rule.h"
#include "linfer/core/error.h"

using namespace linfer;
using namespace linfer::kernels;
using namespace cuda_test;

namespace {

// Mild: g = -softplus(-x); Strong: g uniform in [-8, 0] (state nearly forgotten per token); Weak: g =
// -0.001 softplus(-x); Mixed (PerKey): even channels Weak, odd ones uniform in [-5, 0] (over a 64-token chunk
// about e^{-160}: float32 underflows, so e^{G_i} e^{-G_j} would be 0 · inf)
enum class Gates { Mild, Strong, Weak, Mixed };

struct Case {
  const char* name;
  int64_t H, HV, K, V;
  DeltaDecay decay;
  std::vector<int64_t> lens;  // tokens per sequence
  Gates gates;
  int64_t pad = 0;  // extra floats per q/k/v row: inputs are slices of a wider row
};


TEST(CudaDeltaRulePrefill, RejectsUnsupportedShapesWithoutTouchingTheDevice) {
  const DeltaRuleInputs in{};
  const std::vector<int64_t> offsets{0, 5};
  DeltaRuleShape s{.H = 1, .HV = 1, .K = 128, .V = 300, .decay = DeltaDecay::PerKey};
  EXPECT_FALSE(cuda::delta_rule_prefill_supported(s));
  EXPECT_THROW(cuda::delta_rule_prefill(s, in, offsets, {}, nullptr, nullptr, nullptr), Error);
  s = {.H = 3, .HV = 4, .K = 64, .V = 64, .decay = DeltaDecay::PerKey};
  EXPECT_THROW(cuda::delta_rule_prefill(s, in, offsets, {}, nullptr, nullptr, nullptr), Error);
  s = {.H = 2, .HV = 4, .K = 128, .V = 128, .decay = DeltaDecay::PerKey};
  EXPECT_TRUE(cuda::delta_rule_prefill_supported(s));
  EXPECT_THROW(cuda::delta_rule_prefill(s, in, offsets, {}, nullptr, nullptr, nullptr), Error);  // null pointers
  s = {.H = 1, .HV = 1, .K = 256, .V = 64, .decay = DeltaDecay::Scalar};
  EXPECT_THROW(cuda::delta_rule_prefill(s, in, offsets, {}, nullptr, nullptr, nullptr), Error);
  s = {.H = 1, .HV = 1, .K = 66, .V = 64, .decay = DeltaDecay::Scalar};
  EXPECT_THROW(cuda::delta_rule_prefill(s, in, offsets, {}, nullptr, nullptr, nullptr), Error);
  s = {.H = 2, .HV = 4, .K = 128, .V = 128, .decay = DeltaDecay::Scalar};
  EXPECT_TRUE(cuda::delta_rule_prefill_supported(s));
  EXPECT_THROW(cuda::delta_rule_prefill(s, in, offsets, {}, nullptr, nullptr, nullptr), Error);  // null pointers
  const std::vector<int64_t> empty{0, 0, 0};
  EXPECT_NO_THROW(cuda::delta_rule_prefill(s, in, empty, {}, nullptr, nullptr, nullptr));  // no tokens
  const cuda::DeltaRuleInputsBf16 in_bf{};  // the bf16 entry point checks the same
  EXPECT_THROW(cuda::delta_rule_prefill(s, in_bf, offsets, {}, nullptr, nullptr, nullptr), Error);
  s.K = 66;
  EXPECT_THROW(cuda::delta_rule_prefill(s, in_bf, offsets, {}, nullptr, nullptr, nullptr), Error);
}

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class CudaDeltaPrefill : public ::testing::TestWithParam<Case> {};

TEST_P(CudaDeltaPrefill, MatchesReference) {
  LINFER_SKIP_WITHOUT_CUDA();
  const Case c = GetParam();
  const int64_t H = c.H, HV = c.HV, K = c.K, V = c.V, n = int64_t(c.lens.size());
  const int64_t kd = H * K, vd = HV * V, row = 2 * kd + vd + c.pad;  // one projection row [q | k | v | pad]
  const int64_t gw = c.decay == DeltaDecay::PerKey ? HV * K : HV;   // g per token
  const int64_t n_slots = 2 * n + 3;
  std::vector<int64_t> offsets{0};
  for (int64_t len : c.lens) offsets.push_back(offsets.back() + len);
  const int64_t T = offsets.back();
  std::mt19937 rng(uint32_t(std::hash<std::string>{}(c.name)));

  const DeltaRuleShape shape{.H = H, .HV = HV, .K = K, .V = V, .decay = c.decay, .l2norm_qk = true};
  Pool S(rng, n_slots, vd * K, 0.5f);
  const std::vector<float> S_before = S.host;
  const auto slots = pick_slots(rng, n, n_slots);

  const auto qkv = normal(rng, T * row);
  auto g = normal(rng, T * gw);
  auto beta = normal(rng, T * HV);
  std::uniform_real_distribution<float> strong(-8.0f, 0.0f), strong5(-5.0f, 0.0f);
  for (size_t i = 0; i < g.size(); ++i) {
    const float softplus = float(std::log1p(std::exp(-g[i])));
    switch (c.gates) {
      case Gates::Mild: g[i] = -softplus; break;
      case Gates::Strong: g[i] = strong(rng); break;
      case Gates::Weak: g[i] = -0.001f * softplus; break;
      case Gates::Mixed: g[i] = i % K % 2 ? strong5(rng) : -0.001f * softplus; break;
    }
  }
  for (float& x : beta) x = float(1.0 / (1.0 + std::exp(-double(x))));

  // The float64 reference from the initial pool on the rows x (the inputs, or their bf16 roundings): outputs,
  // and the pool with the used slots advanced.
  auto reference = [&](const std::vector<float>& x, std::vector<double>& o_ref, std::vector<double>& S_ref) {
    const DeltaRuleInputs in_ref{.q = x.data(), .k = x.data() + kd, .v = x.data() + 2 * kd, .beta = beta.data(),
                                 .g = g.data(), .q_stride = row, .k_stride = row, .v_stride = row};
    S_ref.assign(S.host.begin(), S.host.end());
    std::vector<double*> states;
    for (int32_t s : slots) states.push_back(S_ref.data() + s * S.stride);
    o_ref.assign(T * vd, 0.0);
    reference::delta_rule(shape, in_ref, offsets, states, o_ref.data());
  };
  std::vector<double> o_ref, S_ref;
  reference(qkv, o_ref, S_ref);

  DeviceBuffer<float> d_qkv(qkv), d_g(g), d_beta(beta), d_o(T * vd);
  DeviceBuffer<int32_t> d_slots(slots);
  const DeltaRuleInputs in{.q = d_qkv.data(), .k = d_qkv.data() + kd, .v = d_qkv.data() + 2 * kd,
                           .beta = d_beta.data(), .g = c.decay == DeltaDecay::None ? nullptr : d_g.data(),
                           .q_stride = row, .k_stride = row, .v_stride = row};
  for (const auto& [math, mode, tolerance] : kPrefillModes) {
    S.upload();  // the initial pool again
    d_o.fill_bytes(0xFF);  // NaN: an unwritten output fails
    cuda::delta_rule_prefill(shape, in, offsets, S.device(), d_slots.data(), d_o.data(), nullptr, math);
    cuda::cuda_check(cudaDeviceSynchronize(), "delta_rule_prefill");
    const double err = rel_err(d_o.download(), o_ref);
    std::printf("%s %s: outputs rel err %.3g\n", c.name, mode, err);
    EXPECT_LT(err, tolerance) << mode << " outputs";
    expect_pool(S.dev.download(), S_before, S_ref, S, slots, tolerance, std::string(mode) + " states");
  }

  // q, k, v in bf16 (the bf16 passes), against the reference on the same rounded rows.
  const Bf16Copy qkv_bf = to_bf16(qkv);
  reference(qkv_bf.values, o_ref, S_ref);
  const DeviceBuffer<uint16_t> d_qkv_bf(qkv_bf.bits);
  const auto* bf = reinterpret_cast<const __nv_bfloat16*>(d_qkv_bf.data());
  const cuda::DeltaRuleInputsBf16 in_bf{.q = bf, .k = bf + kd, .v = bf + 2 * kd, .beta = d_beta.data(),
                                        .g = in.g, .q_stride = row, .k_stride = row, .v_stride = row};
  S.upload();
  d_o.fill_bytes(0xFF);
  cuda::delta_rule_prefill(shape, in_bf, offsets, S.device(), d_slots.data(), d_o.data(), nullptr);
  cuda::cuda_check(cudaDeviceSynchronize(), "delta_rule_prefill, bf16 inputs");
  const double err = rel_err(d_o.download(), o_ref);
  std::printf("%s bf16 inputs: outputs rel err %.3g\n", c.name, err);
  EXPECT_LT(err, kBf16Tolerance) << "bf16 inputs: outputs";
  expect_pool(S.dev.download(), S_before, S_ref, S, slots, kBf16Tolerance, "bf16 inputs: states");
}

const Case kCases[] = {
    // name              H  HV    K    V  decay               lengths                               gates
    {"gdn_packed",       2, 4, 128, 128, DeltaDecay::Scalar, {1, 63, 64, 65, 0, 200, 130},       Gates::Mild},
    {"gdn_strong",       2, 4, 128, 128, DeltaDecay::Scalar, {129, 7, 300},                      Gates::Strong},
    {"gdn_awkward",      3, 6, 100,  72, DeltaDecay::Scalar, {77, 1, 191},                       Gates::Mild, 5},
    {"gdn_long",         1, 2, 128, 128, DeltaDecay::Scalar, {2049},                             Gates::Mild},
    {"gdn_small_heads",  2, 2,  32,  40, DeltaDecay::Scalar, {3, 64, 100, 31},                   Gates::Mild},
    {"gdn_v256",         1, 1,  64, 256, DeltaDecay::Scalar, {90},                               Gates::Mild},
    {"deltanet",         2, 2,  64,  50, DeltaDecay::None,   {70, 129},                          Gates::Mild},
    // bf16 rows whose K and V are multiples of 8 (16-byte aligned: gdn_packed, gdn_small_heads, gdn_long, ...) take
    // the state pass that reads q, k, v by TMA (Params::raw); this one without a decay, a partial column block
    {"deltanet_raw",     2, 2,  64,  48, DeltaDecay::None,   {70, 129, 1},                       Gates::Mild},
    // bf16 rows of 208 elements: q's tile copied whole (16-byte pieces) with zeros in columns [40, 48); odd V
    {"gdn_k40_v23",      2, 2,  40,  23, DeltaDecay::Scalar, {64, 9, 130},                       Gates::Mild, 2},
    // more blocks than any GPU has SMs (40 x 4 x 4 column blocks): the bf16 state pass's two-blocks-per-SM form and
    // the output pass of its own (fewer blocks: the state pass computes the outputs)
    {"gdn_many_seqs",    2, 4, 128, 128, DeltaDecay::Scalar,
     {64, 17, 65, 1, 3, 129, 3, 64, 1, 129, 40, 1, 3, 65, 65, 3, 40, 3, 129, 65,
      1, 3, 40, 1, 65, 1, 40, 1, 129, 17, 63, 65, 17, 129, 3, 63, 129, 17, 3, 40}, Gates::Mild},
    {"kda_many_seqs",    2, 4, 128, 128, DeltaDecay::PerKey,
     {64, 17, 65, 1, 3, 129, 3, 64, 1, 129, 40, 1, 3, 65, 65, 3, 40, 3, 129, 65,
      1, 3, 40, 1, 65, 1, 40, 1, 129, 17, 63, 65, 17, 129, 3, 63, 129, 17, 3, 40}, Gates::Mild},
    {"kda_packed",       2, 4, 128, 128, DeltaDecay::PerKey, {1, 63, 64, 65, 0, 200, 130},       Gates::Mild},
    {"kda_strong",       2, 4, 128, 128, DeltaDecay::PerKey, {129, 7, 300},                      Gates::Strong},
    {"kda_mixed",        3, 6, 100,  72, DeltaDecay::PerKey, {77, 1, 191, 0},                    Gates::Mixed, 5},
    {"kda_long",         1, 2, 128, 128, DeltaDecay::PerKey, {2049},                             Gates::Mixed},
    {"kda_small_heads",  2, 2,  32,  40, DeltaDecay::PerKey, {3, 64, 100, 31},                   Gates::Strong},
    {"kda_weak_v256",    1, 1,  64, 256, DeltaDecay::PerKey, {90, 33},                           Gates::Weak},
    {"kda_k36",          1, 3,  36,  20, DeltaDecay::PerKey, {65, 128},                          Gates::Mixed},
    // KDA at awkward K in chunks that are not steep (Mild: the Gram products about each row tile's middle row, with
    // bf16 inputs from operand tiles built once): rows unaligned (K = 100), bf16 rows copied whole (K = 40 < KT = 48)
    {"kda_awkward",      3, 6, 100,  72, DeltaDecay::PerKey, {77, 1, 191, 0},                    Gates::Mild, 5},
    {"kda_k40_v23",      2, 2,  40,  23, DeltaDecay::PerKey, {64, 9, 130},                       Gates::Mild, 2},
    // the narrowest heads: a bf16 row of 8 elements is one 16-byte piece (grids one cell wide)
    {"gdn_k8_v8",        1, 2,   8,   8, DeltaDecay::Scalar, {70, 5},                            Gates::Mild},
    {"kda_k8_v8",        1, 2,   8,   8, DeltaDecay::PerKey, {70, 5},                            Gates::Mild},
};

INSTANTIATE_TEST_SUITE_P(Cuda, CudaDeltaPrefill, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
