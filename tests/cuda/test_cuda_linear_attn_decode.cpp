// The linear-attention and Mamba2 decode kernels (kernels/cuda/linear_attn_decode.h) against the float64
// references ref::linear_attn and ref::mamba2_ssd, one token per sequence, two steps, sequences in random
// slots of a larger pool (every other slot must stay untouched).
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "cuda_test_util.h"
#include "kernels/cuda/linear_attn_decode.h"
#include "kernels/reference/linear_attn.h"
#include "kernels/reference/mamba2_ssd.h"
#include "linfer/core/error.h"

using namespace linfer;
using namespace linfer::kernels;
using namespace cuda_test;

namespace {

constexpr double kTol = 1e-4;  // float32 kernel vs float64 reference

std::vector<int64_t> one_token_each(int64_t B) {
  std::vector<int64_t> offsets(B + 1);
  for (int64_t b = 0; b <= B; ++b) offsets[b] = b;
  return offsets;
}

std::vector<double*> slot_ptrs(std::vector<double>& pool, const Pool& p, const std::vector<int32_t>& slots) {
  std::vector<double*> out;
  for (int32_t s : slots) out.push_back(pool.data() + p.misalign + s * p.stride);
  return out;
}

struct LaCase {
  const char* name;
  int64_t H, HV, K, V;
  LinearAttnDecay decay;
  bool normalize, beta, skip;
  int64_t B;
  int64_t misalign = 0;
};

void PrintTo(const LaCase& c, std::ostream* os) { *os << c.name; }  // gtest's name for a failing case

class CudaLinearAttnDecode : public ::testing::TestWithParam<LaCase> {};

TEST_P(CudaLinearAttnDecode, MatchesReference) {
  LINFER_SKIP_WITHOUT_CUDA();
  const LaCase c = GetParam();
  const int64_t H = c.H, HV = c.HV, K = c.K, V = c.V, B = c.B, n_slots = 2 * B + 3;
  std::mt19937 rng(uint32_t(std::hash<std::string>{}(c.name)));
  Pool S(rng, n_slots, HV * V * K, 0.5f, c.misalign);
  Pool Z(rng, n_slots, HV * K, 1.0f);
  for (float& z : Z.host) z = std::abs(z);  // a normaliser sums positive feature maps
  S.upload();
  Z.upload();
  const auto S_before = S.host, Z_before = Z.host;
  std::vector<double> S_ref(S.host.begin(), S.host.end()), Z_ref(Z.host.begin(), Z.host.end());
  const auto skip = normal(rng, HV);

  std::vector<int32_t> used;
  for (int step = 0; step < 2; ++step) {
    const auto slots = pick_slots(rng, B, n_slots);
    used.insert(used.end(), slots.begin(), slots.end());
    auto q = normal(rng, B * H * K), k = normal(rng, B * H * K);
    if (c.normalize)
      for (auto* x : {&q, &k})
        for (float& e : *x) e = std::abs(e) + 0.1f;
    const auto v = normal(rng, B * HV * V);
    const int64_t ng = c.decay == LinearAttnDecay::Vector ? B * HV * K
                       : c.decay == LinearAttnDecay::PerHead ? HV : B * HV;
    auto g = normal(rng, ng);
    for (float& x : g) x = -float(std::log1p(std::exp(-x)));  // logsigmoid
    auto beta = normal(rng, B * HV, 0.3f, 1.0f);

    LinearAttnArgs a{.H = H, .HV = HV, .K = K, .V = V, .q = q.data(), .k = k.data(), .v = v.data(),
                     .decay = c.decay, .g = c.decay == LinearAttnDecay::None ? nullptr : g.data(),
                     .beta = c.beta ? beta.data() : nullptr, .skip = c.skip ? skip.data() : nullptr,
                     .scale = 0.37f, .normalize = c.normalize};
    std::vector<double> o_ref(B * HV * V);
    auto z_ptrs = c.normalize ? slot_ptrs(Z_ref, Z, slots) : std::vector<double*>{};
    ref::linear_attn(a, one_token_each(B), slot_ptrs(S_ref, S, slots), z_ptrs, o_ref.data());

    DeviceBuffer<float> d_q(q), d_k(k), d_v(v), d_g(g), d_beta(beta), d_skip(skip), d_o(B * HV * V);
    DeviceBuffer<int32_t> d_slots(slots);
    d_o.fill_bytes(0xFF);
    a.q = d_q.data(), a.k = d_k.data(), a.v = d_v.data();
    a.g = a.g ? d_g.data() : nullptr, a.beta = a.beta ? d_beta.data() : nullptr;
    a.skip = a.skip ? d_skip.data() : nullptr;
    cuda::linear_attn_decode(a, S.device(), Z.device(), d_slots.data(), B, d_o.data(), nullptr);
    cuda::cuda_check(cudaDeviceSynchronize(), "linear_attn_decode");
    EXPECT_LT(rel_err(d_o.download(), o_ref), kTol) << "outputs of step " << step;
  }
  expect_pool(S.dev.download(), S_before, S_ref, S, used, kTol, "states");
  if (c.normalize) expect_pool(Z.dev.download(), Z_before, Z_ref, Z, used, kTol, "normaliser states");
}

const LaCase kLaCases[] = {
    // name           H  HV   K    V  decay                      norm   beta   skip   B
    {"katharopoulos", 2, 4,  64,  48, LinearAttnDecay::None,    true,  false, false, 5},
    {"retnet",        3, 3, 100,  70, LinearAttnDecay::PerHead, false, false, false, 4},
    {"simple_gla",    2, 2, 128, 128, LinearAttnDecay::Scalar,  false, true,  true,  8},
    {"gla_k256",      1, 2, 256,  33, LinearAttnDecay::Vector,  false, false, false, 3},
    {"gla_misaligned", 2, 2, 128, 64, LinearAttnDecay::Vector,  true,  true,  true,  6, 1},
    {"simple_gla_many", 2, 2, 64, 64, LinearAttnDecay::Scalar,  false, true,  true,  200},  // one block per head
    {"simple_gla_tiles", 2, 2, 128, 200, LinearAttnDecay::Scalar, false, true, true, 70},  // two tiles per block
};

INSTANTIATE_TEST_SUITE_P(Cuda, CudaLinearAttnDecode, ::testing::ValuesIn(kLaCases),
                         [](const auto& info) { return std::string(info.param.name); });

struct M2Case {
  const char* name;
  int64_t H, P, N, G, B;
  float dt_min, dt_max;
  bool D;
};

void PrintTo(const M2Case& c, std::ostream* os) { *os << c.name; }

class CudaMamba2Decode : public ::testing::TestWithParam<M2Case> {};

TEST_P(CudaMamba2Decode, MatchesReference) {
  LINFER_SKIP_WITHOUT_CUDA();
  const M2Case c = GetParam();
  const int64_t H = c.H, P = c.P, N = c.N, G = c.G, B = c.B, n_slots = 2 * B + 3;
  const int64_t row = H * P + 2 * G * N + 3;  // x | B | C slices of one conv output row, as Mamba2's xBC
  std::mt19937 rng(uint32_t(std::hash<std::string>{}(c.name)));
  Pool S(rng, n_slots, H * P * N, 0.5f);
  S.upload();
  const auto S_before = S.host;
  std::vector<double> S_ref(S.host.begin(), S.host.end());
  const auto A_log = normal(rng, H, 0.5f), dt_bias = normal(rng, H, 0.5f), D = normal(rng, H);
  DeviceBuffer<float> d_A_log(A_log), d_dt_bias(dt_bias), d_D(D);
  const kernels::Mamba2Dims dims{.H = H, .P = P, .N = N, .G = G};

  std::vector<int32_t> used;
  for (int step = 0; step < 2; ++step) {
    const auto slots = pick_slots(rng, B, n_slots);
    used.insert(used.end(), slots.begin(), slots.end());
    const auto xbc = normal(rng, B * row), dt = normal(rng, B * H, 1.0f, -1.0f);
    Mamba2Params params{.A_log = A_log.data(), .dt_bias = dt_bias.data(), .D = c.D ? D.data() : nullptr,
                        .dt_min = c.dt_min, .dt_max = c.dt_max};
    Mamba2Inputs in{.x = xbc.data(), .dt = dt.data(), .B = xbc.data() + H * P, .C = xbc.data() + H * P + G * N,
                    .x_stride = row, .dt_stride = 0, .B_stride = row, .C_stride = row};
    std::vector<double> y_ref(B * H * P);
    ref::mamba2_ssd(dims, params, in, one_token_each(B), slot_ptrs(S_ref, S, slots), y_ref.data());

    DeviceBuffer<float> d_xbc(xbc), d_dt(dt), d_y(B * H * P);
    DeviceBuffer<int32_t> d_slots(slots);
    d_y.fill_bytes(0xFF);
    params.A_log = d_A_log.data(), params.dt_bias = d_dt_bias.data(), params.D = c.D ? d_D.data() : nullptr;
    in.x = d_xbc.data(), in.dt = d_dt.data(), in.B = d_xbc.data() + H * P, in.C = d_xbc.data() + H * P + G * N;
    cuda::mamba2_decode(dims, params, in, S.device(), d_slots.data(), B, d_y.data(), nullptr);
    cuda::cuda_check(cudaDeviceSynchronize(), "mamba2_decode");
    EXPECT_LT(rel_err(d_y.download(), y_ref), kTol) << "outputs of step " << step;
  }
  expect_pool(S.dev.download(), S_before, S_ref, S, used, kTol, "states");
}

const M2Case kM2Cases[] = {
    {"mamba2_groups", 6, 40, 70, 2, 5, 0.001f, 0.1f, true},
    {"mamba2_130m_like", 4, 64, 128, 1, 9, 0.0f, INFINITY, false},
    {"mamba2_small_state", 8, 64, 16, 4, 2, 0.0f, INFINITY, true},
};

INSTANTIATE_TEST_SUITE_P(Cuda, CudaMamba2Decode, ::testing::ValuesIn(kM2Cases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(CudaLinearAttnDecode, RejectsUnsupportedShapesWithoutTouchingTheDevice) {
  LinearAttnArgs a{.H = 1, .HV = 1, .K = 512, .V = 64};
  EXPECT_THROW(cuda::linear_attn_decode(a, {}, {}, nullptr, 1, nullptr, nullptr), Error);
  const kernels::Mamba2Dims dims{.H = 6, .P = 64, .N = 64, .G = 4};  // 4 groups do not divide 6 heads
  EXPECT_THROW(cuda::mamba2_decode(dims, {}, {}, {}, nullptr, 1, nullptr, nullptr), Error);
}

}  // namespace
