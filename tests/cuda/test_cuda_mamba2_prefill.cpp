// The chunked Mamba2 (SSD) prefill (kernels/cuda/delta_rule_prefill.h's mamba2_prefill) against the float64
// reference ref::mamba2_ssd (token by token): packed sequences of awkward lengths (0, 1, 63, 64, 65, ...,
// 2049) in random slots of a larger pool with a random (nonzero) initial state, P and N not powers of two,
// several groups of several heads, x / B / C as slices of one conv output row; strong decays (dt near 5, A
// up to 16: a chunk's cumulative decay underflows float32), weak ones (dt near 1e-4) and clamped dt. Outputs
// and final states must match, every other slot must be untouched; every tensor-core mode runs on every case
// from the same initial pool. Then one decode step (kernels/cuda/linear_attn_decode.h) continues from the
// chunked states and must match the reference continuing from its own.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "cuda_test_util.h"
#include "prefill_modes.h"
#include "kernels/cuda/delta_rule_prefill.h"
#include "kernels/cuda/linear_attn_decode.h"
#include "kernels/reference/mamba2_ssd.h"
#include "linfer/core/error.h"

using namespace linfer;
using namespace linfer::kernels;
using namespace cuda_test;

namespace {

// Mild: dt_raw ~ N(-1, 1), A_log ~ N(0, 0.5); Strong: dt_raw in [3, 6], A = -exp(A_log) in [-16, -1] (g down to
// -100 per token); Weak: dt_raw in [-12, -8] (dt 6e-6 .. 3e-4: the state barely decays and accumulates).
enum class Dt { Mild, Strong, Weak };

struct Case {
  const char* name;
  int64_t H, P, N, G;
  std::vector<int64_t> lens;  // tokens per sequence
  Dt dt;
  int64_t pad = 0;  // extra floats per conv row: x / B / C rows not 16-byte aligned
  bool D = true;
  float dt_min = 0.0f, dt_max = INFINITY;
};


std::vector<int64_t> one_token_each(int64_t B) {
  std::vector<int64_t> offsets(B + 1);
  for (int64_t b = 0; b <= B; ++b) offsets[b] = b;
  return offsets;
}

TEST(CudaMamba2Prefill, RejectsUnsupportedShapesWithoutTouchingTheDevice) {
  const Mamba2Inputs in{};
  const Mamba2Params params{};
  const std::vector<int64_t> offsets{0, 5};
  Mamba2Dims d{.H = 4, .P = 64, .N = 256, .G = 1};
  EXPECT_FALSE(cuda::mamba2_prefill_supported(d));
  EXPECT_THROW(cuda::mamba2_prefill(d, params, in, offsets, {}, nullptr, nullptr, nullptr), Error);
  d = {.H = 6, .P = 64, .N = 64, .G = 4};  // 4 groups do not divide 6 heads
  EXPECT_THROW(cuda::mamba2_prefill(d, params, in, offsets, {}, nullptr, nullptr, nullptr), Error);
  d = {.H = 4, .P = 300, .N = 64, .G = 2};
  EXPECT_THROW(cuda::mamba2_prefill(d, params, in, offsets, {}, nullptr, nullptr, nullptr), Error);
  d = {.H = 4, .P = 64, .N = 128, .G = 2};
  EXPECT_TRUE(cuda::mamba2_prefill_supported(d));
  EXPECT_THROW(cuda::mamba2_prefill(d, params, in, offsets, {}, nullptr, nullptr, nullptr), Error);  // null pointers
  const std::vector<int64_t> empty{0, 0, 0};
  EXPECT_NO_THROW(cuda::mamba2_prefill(d, params, in, empty, {}, nullptr, nullptr, nullptr));  // no tokens
  const cuda::Mamba2InputsBf16 in_bf{};  // the bf16 entry point checks the same
  EXPECT_THROW(cuda::mamba2_prefill(d, params, in_bf, offsets, {}, nullptr, nullptr, nullptr), Error);
  d.N = 256;
  EXPECT_THROW(cuda::mamba2_prefill(d, params, in_bf, offsets, {}, nullptr, nullptr, nullptr), Error);
}

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class CudaMamba2Prefill : public ::testing::TestWithParam<Case> {};

TEST_P(CudaMamba2Prefill, MatchesReferenceAndDecodeContinues) {
  LINFER_SKIP_WITHOUT_CUDA();
  const Case c = GetParam();
  const int64_t H = c.H, P = c.P, N = c.N, G = c.G, n = int64_t(c.lens.size());
  const int64_t row = H * P + 2 * G * N + c.pad;  // one conv output row [x | B | C | pad]
  const int64_t n_slots = 2 * n + 3;
  std::vector<int64_t> offsets{0};
  for (int64_t len : c.lens) offsets.push_back(offsets.back() + len);
  const int64_t T = offsets.back();
  std::mt19937 rng(uint32_t(std::hash<std::string>{}(c.name)));

  const Mamba2Dims dims{.H = H, .P = P, .N = N, .G = G};
  Pool S(rng, n_slots, H * P * N, 0.5f);
  const std::vector<float> S_before = S.host;
  std::vector<double> S_ref(S.host.begin(), S.host.end());
  const auto slots = pick_slots(rng, n, n_slots);

  const auto xbc = normal(rng, (T + n) * row);  // T prefill rows, then one decode row per sequence
  auto dt = normal(rng, (T + n) * H, 1.0f, -1.0f), A_log = normal(rng, H, 0.5f);
  const auto dt_bias = normal(rng, H, 0.5f), D = normal(rng, H);
  std::uniform_real_distribution<float> strong_dt(3.0f, 6.0f), strong_a(0.0f, std::log(16.0f)),
      weak_dt(-12.0f, -8.0f);
  if (c.dt == Dt::Strong) {
    for (float& x : dt) x = strong_dt(rng);
    for (float& x : A_log) x = strong_a(rng);
  } else if (c.dt == Dt::Weak) {
    for (float& x : dt) x = weak_dt(rng);
  }

  Mamba2Params params{.A_log = A_log.data(), .dt_bias = dt_bias.data(), .D = c.D ? D.data() : nullptr,
                      .dt_min = c.dt_min, .dt_max = c.dt_max};
  Mamba2Inputs in{.x = xbc.data(), .dt = dt.data(), .B = xbc.data() + H * P, .C = xbc.data() + H * P + G * N,
                  .x_stride = row, .dt_stride = H, .B_stride = row, .C_stride = row};
  std::vector<double*> states;
  for (int32_t s : slots) states.push_back(S_ref.data() + s * S.stride);
  std::vector<double> y_ref(T * H * P);
  ref::mamba2_ssd(dims, params, in, offsets, states, y_ref.data());

  DeviceBuffer<float> d_xbc(xbc), d_dt(dt), d_A_log(A_log), d_dt_bias(dt_bias), d_D(D), d_y(T * H * P);
  DeviceBuffer<int32_t> d_slots(slots);
  Mamba2Params d_params = params;
  d_params.A_log = d_A_log.data(), d_params.dt_bias = d_dt_bias.data(), d_params.D = c.D ? d_D.data() : nullptr;
  const Mamba2Inputs d_in{.x = d_xbc.data(), .dt = d_dt.data(), .B = d_xbc.data() + H * P,
                          .C = d_xbc.data() + H * P + G * N, .x_stride = row, .dt_stride = H, .B_stride = row,
                          .C_stride = row};
  for (const auto& [math, mode, tolerance] : kPrefillModes) {
    S.upload();  // the initial pool again
    d_y.fill_bytes(0xFF);  // NaN: an unwritten output fails
    cuda::mamba2_prefill(dims, d_params, d_in, offsets, S.device(), d_slots.data(), d_y.data(), nullptr, math);
    cuda::cuda_check(cudaDeviceSynchronize(), "mamba2_prefill");
    const double err = rel_err(d_y.download(), y_ref);
    std::printf("%s %s: outputs rel err %.3g\n", c.name, mode, err);
    EXPECT_LT(err, tolerance) << mode << " outputs";
    expect_pool(S.dev.download(), S_before, S_ref, S, slots, tolerance, std::string(mode) + " states");
  }

  // Decode continues from the 3xTF32 states: one token per sequence (rows T .. T + n), same slots.
  Mamba2Inputs in1 = in, d_in1 = d_in;
  in1.x += T * row, in1.B += T * row, in1.C += T * row, in1.dt += T * H;
  d_in1.x += T * row, d_in1.B += T * row, d_in1.C += T * row, d_in1.dt += T * H;
  std::vector<double> y1_ref(n * H * P);
  ref::mamba2_ssd(dims, params, in1, one_token_each(n), states, y1_ref.data());
  DeviceBuffer<float> d_y1(n * H * P);
  d_y1.fill_bytes(0xFF);
  cuda::mamba2_decode(dims, d_params, d_in1, S.device(), d_slots.data(), n, d_y1.data(), nullptr);
  cuda::cuda_check(cudaDeviceSynchronize(), "mamba2_decode after the chunked prefill");
  const double err = rel_err(d_y1.download(), y1_ref);
  std::printf("%s decode after prefill: outputs rel err %.3g\n", c.name, err);
  EXPECT_LT(err, kFloat32Tolerance) << "decode outputs";
  expect_pool(S.dev.download(), S_before, S_ref, S, slots, kFloat32Tolerance,
              "states after a decode step");

  // x, B and C in bf16 (the bf16 passes), against the reference on the same rounded rows.
  const Bf16Copy xbc_bf = to_bf16(xbc);
  std::vector<double> S_bf(S.host.begin(), S.host.end());
  std::vector<double*> states_bf;
  for (int32_t s : slots) states_bf.push_back(S_bf.data() + s * S.stride);
  Mamba2Inputs in_r = in;
  in_r.x = xbc_bf.values.data(), in_r.B = in_r.x + H * P, in_r.C = in_r.x + H * P + G * N;
  y_ref.assign(y_ref.size(), 0.0);
  ref::mamba2_ssd(dims, params, in_r, offsets, states_bf, y_ref.data());
  const DeviceBuffer<uint16_t> d_xbc_bf(xbc_bf.bits);
  const auto* bf = reinterpret_cast<const __nv_bfloat16*>(d_xbc_bf.data());
  const cuda::Mamba2InputsBf16 in_bf{.x = bf, .dt = d_dt.data(), .B = bf + H * P, .C = bf + H * P + G * N,
                                     .x_stride = row, .dt_stride = H, .B_stride = row, .C_stride = row};
  S.upload();
  d_y.fill_bytes(0xFF);
  cuda::mamba2_prefill(dims, d_params, in_bf, offsets, S.device(), d_slots.data(), d_y.data(), nullptr);
  cuda::cuda_check(cudaDeviceSynchronize(), "mamba2_prefill, bf16 inputs");
  const double err_bf = rel_err(d_y.download(), y_ref);
  std::printf("%s bf16 inputs: outputs rel err %.3g\n", c.name, err_bf);
  EXPECT_LT(err_bf, kBf16Tolerance) << "bf16 inputs: outputs";
  expect_pool(S.dev.download(), S_before, S_bf, S, slots, kBf16Tolerance, "bf16 inputs: states");
}

const Case kCases[] = {
    // name            H   P    N  G  lengths                             dt          pad  D     dt_min  dt_max
    {"packed_groups",  6, 50, 100, 2, {1, 63, 64, 65, 0, 200, 130},      Dt::Mild},
    {"long",           4, 64, 128, 1, {2049},                            Dt::Mild},
    {"strong",         4, 36,  64, 2, {129, 7, 300},                     Dt::Strong,   3},
    {"weak",           2, 72, 128, 1, {90, 33, 0},                       Dt::Weak,     0, false},
    {"clamped",        6, 40,  68, 3, {77, 1, 191},                      Dt::Mild,     1, true, 0.05f, 0.5f},
    {"small_state",    8, 64,  16, 4, {3, 64, 100, 31},                  Dt::Mild},
    {"p256",           2, 256, 32, 1, {130, 5},                          Dt::Strong},
    // more blocks than any GPU has SMs (40 x 8 x 2 column blocks): the bf16 state pass's two-blocks-per-SM form
    {"many_seqs",      8, 64,  64, 2, {64, 17, 65, 1, 3, 129, 3, 64, 1, 129, 40, 1, 3, 65, 65, 3, 40, 3, 129, 65,
      1, 3, 40, 1, 65, 1, 40, 1, 129, 17, 63, 65, 17, 129, 3, 63, 129, 17, 3, 40}, Dt::Mild},
};

INSTANTIATE_TEST_SUITE_P(Cuda, CudaMamba2Prefill, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
