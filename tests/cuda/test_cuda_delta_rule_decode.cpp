// The fused delta-rule decode kernel (kernels/cuda/delta_rule_decode.h) against the float64 references,
// composed the way the kernel composes them: ref conv1d_step (q, k, v windows) -> gate maths in double ->
// reference::delta_rule -> ref rms_norm_gated. Two steps per case with sequences in random slots of a larger
// pool: outputs, the sequences' states and windows must match; every other slot must be untouched.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "cuda_test_util.h"
#include "kernels/cuda/delta_rule_decode.h"
#include "kernels/reference/activation.h"
#include "kernels/reference/conv1d.h"
#include "kernels/reference/delta_rule.h"
#include "kernels/reference/norm.h"
#include "linfer/core/error.h"

using namespace linfer;
using namespace linfer::kernels;
using namespace cuda_test;

namespace {

enum class Norm { None, Silu, Sigmoid };   // output: plain, GDN's gated RMSNorm, KDA's
enum class Gates { Raw, Given, Strong };   // raw (A_log, dt_bias, beta logits) ; log decay given ; g ≈ -20

struct Case {
  const char* name;
  int64_t H, HV, K, V;
  DeltaDecay decay;
  int64_t B, W;  // W = 0: q, k, v arrive convolved
  Gates gates;
  Norm norm;
  bool l2norm = true;
  int64_t misalign = 0;  // floats in front of the state pool: slots not 16-byte aligned
  int split = 0;         // blocks per (sequence, q/k head); 0: the kernel's choice (small B: several)
};

constexpr double kTol = 1e-4;  // float32 kernel vs float64 reference

TEST(CudaDeltaRuleDecode, RejectsUnsupportedShapesWithoutTouchingTheDevice) {
  cuda::DeltaDecodeArgs a;
  a.shape = {.H = 1, .HV = 1, .K = 300, .V = 64, .decay = DeltaDecay::Scalar};
  EXPECT_THROW(cuda::delta_rule_decode(a, {}, nullptr, 1, nullptr, nullptr), Error);
  a.shape = {.H = 2, .HV = 3, .K = 64, .V = 64, .decay = DeltaDecay::Scalar};
  EXPECT_THROW(cuda::delta_rule_decode(a, {}, nullptr, 1, nullptr, nullptr), Error);
  a.shape = {.H = 2, .HV = 4, .K = 64, .V = 64, .decay = DeltaDecay::Scalar};
  EXPECT_NO_THROW(cuda::delta_rule_decode(a, {}, nullptr, 0, nullptr, nullptr));  // B = 0: nothing to do
  EXPECT_THROW(cuda::delta_rule_decode(a, {}, nullptr, 1, nullptr, nullptr), Error);  // null pointers
  a.conv_width = 5;  // wider than the kernel's register window
  EXPECT_THROW(cuda::delta_rule_decode(a, {}, nullptr, 1, nullptr, nullptr), Error);
  a.conv_width = 0;
  a.split = 3;
  EXPECT_THROW(cuda::delta_rule_decode(a, {}, nullptr, 1, nullptr, nullptr), Error);
}

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }  // gtest's name for a failing case

class CudaDeltaDecode : public ::testing::TestWithParam<Case> {};

TEST_P(CudaDeltaDecode, MatchesComposedReference) {
  LINFER_SKIP_WITHOUT_CUDA();
  const Case c = GetParam();
  const int64_t H = c.H, HV = c.HV, K = c.K, V = c.V, B = c.B, W = c.W;
  const int64_t kd = H * K, vd = HV * V, C = 2 * kd + vd;  // one projection row [q | k | v], as GDN's
  const int64_t gs = vd + 3;                                 // the norm gate is a slice of a wider row
  const bool per_key = c.decay == DeltaDecay::PerKey;
  const int64_t n_slots = 2 * B + 3;
  std::mt19937 rng(uint32_t(std::hash<std::string>{}(c.name)));

  const DeltaRuleShape shape{.H = H, .HV = HV, .K = K, .V = V, .decay = c.decay, .l2norm_qk = c.l2norm};
  Pool S(rng, n_slots, vd * K, 0.5f, c.misalign);
  Pool conv(rng, n_slots, std::max<int64_t>(1, C * (W - 1)), 1.0f);
  S.upload();
  conv.upload();
  const std::vector<float> S_before = S.host, conv_before = conv.host;
  std::vector<double> S_ref(S.host.begin(), S.host.end());  // the reference's pool, float64

  const auto conv_w = normal(rng, std::max<int64_t>(1, C * W), 0.5f);
  const auto A_log = normal(rng, HV, 0.5f);
  const auto dt_bias = normal(rng, per_key ? HV * K : HV, 0.5f);
  const auto norm_w = normal(rng, V, 0.1f, 1.0f);
  DeviceBuffer<float> d_conv_w(conv_w), d_A_log(A_log), d_dt_bias(dt_bias), d_norm_w(norm_w);

  std::vector<int32_t> used;
  for (int step = 0; step < 2; ++step) {
    const auto slots = pick_slots(rng, B, n_slots);
    used.insert(used.end(), slots.begin(), slots.end());
    auto qkv = normal(rng, B * C);
    if (!c.l2norm)  // the caller normalises q and k (DeltaNet without the in-kernel norm)
      for (int64_t r = 0; r < B * 2 * H; ++r) {
        float* x = qkv.data() + (r / (2 * H)) * C + (r % (2 * H)) * K;
        double ss = 0;
        for (int64_t i = 0; i < K; ++i) ss += double(x[i]) * x[i];
        for (int64_t i = 0; i < K; ++i) x[i] = float(x[i] / std::sqrt(ss));
      }
    auto g = normal(rng, per_key ? B * HV * K : B * HV);
    auto beta = normal(rng, B * HV);
    if (c.gates != Gates::Raw) {
      for (float& x : g) x = c.gates == Gates::Strong ? std::min(0.0f, x - 20.0f) : -float(std::log1p(std::exp(-x)));
      for (float& x : beta) x = float(ref::sigmoid(x));
    }
    const auto gate = normal(rng, B * gs);

    // Reference: conv windows of the chosen slots, gates in float64, the delta rule, the norm.
    std::vector<float> x = qkv;
    if (W > 0) {
      std::vector<float*> windows;
      for (int32_t s : slots) windows.push_back(conv.slot(s));
      ref::conv1d_step(qkv.data(), C, conv_w.data(), nullptr, C, W, windows, true, x.data());
    }
    std::vector<float> g_ref = g, beta_ref = beta;
    if (c.gates == Gates::Raw) {
      for (size_t i = 0; i < g.size(); ++i) {
        const int64_t hv = per_key ? (i / K) % HV : i % HV;
        const double bias = per_key ? dt_bias[hv * K + i % K] : dt_bias[hv];
        g_ref[i] = float(-std::exp(double(A_log[hv])) * ref::softplus(double(g[i]) + bias));
      }
      for (float& b : beta_ref) b = float(ref::sigmoid(b));
    }
    std::vector<int64_t> offsets(B + 1);
    for (int64_t b = 0; b <= B; ++b) offsets[b] = b;
    std::vector<double*> states;
    for (int32_t s : slots) states.push_back(S_ref.data() + S.misalign + s * S.stride);
    const DeltaRuleInputs in_ref{.q = x.data(), .k = x.data() + kd, .v = x.data() + 2 * kd, .beta = beta_ref.data(),
                                 .g = g_ref.data(), .q_stride = C, .k_stride = C, .v_stride = C};
    std::vector<double> o_ref(B * vd);
    reference::delta_rule(shape, in_ref, offsets, states, o_ref.data());
    std::vector<double> want(o_ref);
    if (c.norm != Norm::None) {
      std::vector<float> o_f(o_ref.begin(), o_ref.end()), gate_rows(B * vd), y(B * vd);
      for (int64_t b = 0; b < B; ++b)
        std::copy(gate.begin() + b * gs, gate.begin() + b * gs + vd, gate_rows.begin() + b * vd);
      ref::rms_norm_gated(o_f.data(), gate_rows.data(), norm_w.data(), y.data(), B * HV, V, 1e-5f,
                          c.norm == Norm::Silu ? GateAct::Silu : GateAct::Sigmoid);
      want.assign(y.begin(), y.end());
    }

    // The kernel, on the device copies.
    DeviceBuffer<float> d_qkv(qkv), d_g(g), d_beta(beta), d_gate(gate), d_o(B * vd);
    DeviceBuffer<int32_t> d_slots(slots);
    d_o.fill_bytes(0xFF);  // NaN: an unwritten output fails
    cuda::DeltaDecodeArgs a;
    a.shape = shape;
    a.in = {.q = d_qkv.data(), .k = d_qkv.data() + kd, .v = d_qkv.data() + 2 * kd, .beta = d_beta.data(),
            .g = c.decay == DeltaDecay::None ? nullptr : d_g.data(), .q_stride = C, .k_stride = C, .v_stride = C};
    if (W > 0) {
      a.conv_width = W;
      a.conv_q = {d_conv_w.data(), conv.device()};
      a.conv_k = {d_conv_w.data() + kd * W, conv.device(kd * (W - 1))};
      a.conv_v = {d_conv_w.data() + 2 * kd * W, conv.device(2 * kd * (W - 1))};
    }
    if (c.gates == Gates::Raw) {
      a.A_log = d_A_log.data();
      a.dt_bias = d_dt_bias.data();
      a.beta_logits = true;
    }
    if (c.norm != Norm::None) {
      a.norm_w = d_norm_w.data();
      a.norm_gate = d_gate.data();
      a.norm_gate_stride = gs;
      a.norm_act = c.norm == Norm::Silu ? GateAct::Silu : GateAct::Sigmoid;
      a.norm_eps = 1e-5f;
    }
    a.split = c.split;
    cuda::delta_rule_decode(a, S.device(), d_slots.data(), B, d_o.data(), nullptr);
    cuda::cuda_check(cudaDeviceSynchronize(), "delta_rule_decode");
    EXPECT_LT(rel_err(d_o.download(), want), kTol) << "outputs of step " << step;
  }
  expect_pool(S.dev.download(), S_before, S_ref, S, used, kTol, "states");
  if (W > 1) expect_pool(conv.dev.download(), conv_before, std::vector<double>(conv.host.begin(), conv.host.end()),
                         conv, used, 1e-6, "conv windows");
}

const Case kCases[] = {
    // name               H  HV   K    V  decay                B   W  gates          norm
    {"gdn_layer",         2, 4, 128, 128, DeltaDecay::Scalar,  5, 4, Gates::Raw,    Norm::Silu},
    {"gdn_awkward",       3, 6, 100,  72, DeltaDecay::Scalar,  7, 4, Gates::Raw,    Norm::Silu},
    {"gdn_one_seq",       4, 4, 128, 128, DeltaDecay::Scalar,  1, 4, Gates::Raw,    Norm::Silu},
    {"gdn_many_rows",     1, 4,  64, 200, DeltaDecay::Scalar,  2, 4, Gates::Raw,    Norm::Silu},
    {"gdn_given_gates",   2, 2, 128,  96, DeltaDecay::Scalar, 11, 0, Gates::Given,  Norm::None},
    {"gdn_misaligned",    2, 4, 128, 128, DeltaDecay::Scalar,  3, 4, Gates::Raw,    Norm::Silu, true, 1},
    {"kda_layer",         3, 3, 128, 128, DeltaDecay::PerKey,  4, 4, Gates::Raw,    Norm::Sigmoid},
    {"kda_awkward",       2, 2,  60,  50, DeltaDecay::PerKey,  9, 3, Gates::Raw,    Norm::Sigmoid},
    {"kda_strong_decay",  2, 2, 128, 128, DeltaDecay::PerKey,  3, 0, Gates::Strong, Norm::None},
    {"kda_k256",          1, 2, 256,  40, DeltaDecay::PerKey,  2, 2, Gates::Given,  Norm::Sigmoid},
    {"kda_k33",           2, 2,  33,  17, DeltaDecay::PerKey,  6, 4, Gates::Raw,    Norm::Sigmoid},
    {"deltanet",          2, 2,  32,  64, DeltaDecay::None,    6, 0, Gates::Given,  Norm::None, false},
    // one block per head, then heads split over clusters of 2 and 8 blocks (rows of a head across blocks)
    {"gdn_split1",        3, 6, 128,  96, DeltaDecay::Scalar,  4, 4, Gates::Raw,    Norm::Silu, true, 0, 1},
    {"kda_split2",        2, 2, 128, 128, DeltaDecay::PerKey,  3, 4, Gates::Raw,    Norm::Sigmoid, true, 0, 2},
    {"gdn_split8_group3", 1, 3,  64,  50, DeltaDecay::Scalar,  2, 4, Gates::Raw,    Norm::Silu, true, 0, 8},
    {"gdn_many_seqs",     2, 4,  64,  64, DeltaDecay::Scalar, 300, 4, Gates::Raw,   Norm::Silu},
    // no q/k windows and no norm: a head's blocks run without a cluster (two value heads over 8 blocks; 4 blocks,
    // unaligned slots)
    {"gdn_independent_split8", 2, 4, 128, 64, DeltaDecay::Scalar, 2, 0, Gates::Raw, Norm::None, true, 0, 8},
    {"kda_independent_split4", 2, 2, 128, 72, DeltaDecay::PerKey, 3, 0, Gates::Raw, Norm::None, true, 1, 4},
    // more blocks than SMs, each streaming its rows in two tiles (the second partial), slots in random order; the
    // second with unaligned slots (element-wise state accesses); 140 blocks fill a 114- or 132-SM device in one
    // wave, where the aligned cases take the evict-first state accesses (detail::StateCache::Stream)
    {"gdn_tiles_many_blocks", 2, 4, 128, 96, DeltaDecay::Scalar, 70, 4, Gates::Raw,  Norm::Silu},
    {"kda_tiles_unaligned",   2, 2, 128, 200, DeltaDecay::PerKey, 70, 4, Gates::Raw, Norm::Sigmoid, true, 1},
    {"kda_one_wave",          2, 2, 128, 72, DeltaDecay::PerKey, 70, 4, Gates::Raw,  Norm::Sigmoid},
};

INSTANTIATE_TEST_SUITE_P(Cuda, CudaDeltaDecode, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
