// GPU chunked prefill benchmark (built as gpu_prefill with -DLINFER_CUDA=ON): one GDN layer's recurrence
// (scalar decay per head) and one KDA layer's (decay per key channel, g [T, 32, 128]), 32 heads × 128 × 128;
// one Mamba2 layer's SSD of mamba2-2.7b's shape (80 heads, P = 64, N = 128, one group: x, B, C slices of one
// conv row [T, 5120 + 256], raw dt [T, 80]) and the same with 64 heads (the state pass's 2 blocks per head
// fill 128 of the 132 SMs once; 80 heads need a second round for 28 blocks); float32 inputs and state, one
// sequence of T tokens, timed with CUDA events:
//   chunked   kernels/cuda/delta_rule_prefill.h, one TF32 product, 3xTF32 and one bf16 product (median of 5
//             calls after a warm-up; the device memory pool keeps its memory between calls, so the scratch
//             allocation is a pool hit, as in a serving loop); "bf16 in": the bf16 product on the same q / k / v
//             (Mamba2: x / B / C) rounded to bf16, as fla is given them
//   tokens    the decode kernel once per token (what the CUDA backend did for prefill before), one run
// fla's chunk_gated_delta_rule / chunk_kda (bf16 inputs, same card) are from ../shared/NOTES.md; issue 11's
// goals beside them.
//   gpu_prefill                           GDN, KDA and Mamba2, T = 8192 and 32768
//   gpu_prefill T [gdn|kda|mamba2]        one length (every mixer unless named)
//   gpu_prefill T gdn|kda|mamba2 chunked  one length and mixer, the chunked kernel alone (for ncu: its launches
//                                         first)
//   gpu_prefill T gdn|kda chunked S       the T tokens as S packed sequences of T / S, each with its own state
//                                         slot (a server's batch of prompts)
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/delta_rule_decode.h"
#include "kernels/cuda/delta_rule_prefill.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/linear_attn_decode.h"
#include "linfer/core/dtype.h"
#include "have_device.h"
#include "random_buffer.h"

using namespace linfer::kernels;
using cuda::cuda_check;
using cuda::DeviceBuffer;

namespace {

constexpr int64_t kHeads = 32, kDim = 128;

template <class F>
double time_ms(F&& f, cudaStream_t stream) {
  cudaEvent_t a, b;
  cuda_check(cudaEventCreate(&a), "event");
  cuda_check(cudaEventCreate(&b), "event");
  cuda_check(cudaEventRecord(a, stream), "record");
  f();
  cuda_check(cudaEventRecord(b, stream), "record");
  cuda_check(cudaEventSynchronize(b), "sync");
  float ms = 0;
  cuda_check(cudaEventElapsedTime(&ms, a, b), "elapsed");
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return ms;
}

// A device copy of x rounded to bf16.
DeviceBuffer<uint16_t> to_bf16(const DeviceBuffer<float>& x) {
  const std::vector<float> host = x.download();
  std::vector<uint16_t> bits(host.size());
  for (size_t i = 0; i < host.size(); ++i) bits[i] = linfer::f32_to_bf16(host[i]);
  return DeviceBuffer<uint16_t>(bits);
}
const __nv_bfloat16* bf16_ptr(const DeviceBuffer<uint16_t>& x) { return reinterpret_cast<const __nv_bfloat16*>(x.data()); }

// Median of 5 timed calls after a warm-up call.
template <class F>
double median_ms(F&& call, cudaStream_t stream) {
  call();
  cuda_check(cudaStreamSynchronize(stream), "warm-up");
  std::vector<double> t;
  for (int r = 0; r < 5; ++r) t.push_back(time_ms(call, stream));
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// T tokens as `seqs` sequences of T / seqs (packed, as a server's batch of prompts), each with its own state.
void run(int64_t T, bool kda, bool tokens, cudaStream_t stream, int64_t seqs = 1) {
  std::mt19937 rng(7);
  const int64_t kd = kHeads * kDim, row = 3 * kd, gw = kda ? kd : kHeads;  // g per token
  DeviceBuffer<float> qkv = random_buffer(rng, T * row, 1.f), beta = random_buffer(rng, T * kHeads, 0.1f, 0.5f),
                      g = random_buffer(rng, T * gw, 0.02f, -0.1f),
                      state = random_buffer(rng, seqs * kHeads * kDim * kDim, 0.1f), o(T * kHeads * kDim);
  std::vector<int32_t> slots(size_t(seqs), 0);
  std::vector<int64_t> offsets{0};
  for (int64_t i = 0; i < seqs; ++i) slots[size_t(i)] = int32_t(i), offsets.push_back((i + 1) * T / seqs);
  DeviceBuffer<int32_t> slot(slots);
  const DeltaRuleShape shape{.H = kHeads, .HV = kHeads, .K = kDim, .V = kDim,
                             .decay = kda ? DeltaDecay::PerKey : DeltaDecay::Scalar, .l2norm_qk = true};
  const DeltaRuleInputs in{.q = qkv.data(), .k = qkv.data() + kd, .v = qkv.data() + 2 * kd, .beta = beta.data(),
                           .g = g.data(), .q_stride = row, .k_stride = row, .v_stride = row};
  const cuda::SlotPool pool{state.data(), kHeads * kDim * kDim};
  auto chunked_ms = [&](cuda::PrefillMath math) {
    return median_ms([&] { cuda::delta_rule_prefill(shape, in, offsets, pool, slot.data(), o.data(), stream, math); },
                     stream);
  };
  const double tf32_ms = chunked_ms(cuda::PrefillMath::Tf32), x3_ms = chunked_ms(cuda::PrefillMath::Tf32x3),
               bf16_ms = chunked_ms(cuda::PrefillMath::Bf16);
  const DeviceBuffer<uint16_t> qkv_bf = to_bf16(qkv);
  const cuda::DeltaRuleInputsBf16 in_bf{.q = bf16_ptr(qkv_bf), .k = bf16_ptr(qkv_bf) + kd, .v = bf16_ptr(qkv_bf) + 2 * kd,
                                        .beta = beta.data(), .g = g.data(), .q_stride = row, .k_stride = row,
                                        .v_stride = row};
  const double bf16_in_ms = median_ms(
      [&] { cuda::delta_rule_prefill(shape, in_bf, offsets, pool, slot.data(), o.data(), stream); }, stream);
  const char* mixer = kda ? "KDA" : "GDN";
  if (!tokens) {
    const std::string length = seqs == 1 ? std::to_string(T) : std::to_string(seqs) + " x " + std::to_string(T / seqs);
    std::printf("| %s | %6s | %9.3f | %9.3f | %9.3f | %9.3f | %9.1f | - | - | - |\n", mixer, length.c_str(), tf32_ms,
                x3_ms, bf16_ms, bf16_in_ms, T / x3_ms / 1e3);
    return;
  }

  cuda::DeltaDecodeArgs a{};
  a.shape = shape;
  const double token_ms = time_ms([&] {
    for (int64_t i = 0; i < T; ++i) {
      a.in = in;
      a.in.q += i * row, a.in.k += i * row, a.in.v += i * row, a.in.beta += i * kHeads, a.in.g += i * gw;
      cuda::delta_rule_decode(a, pool, slot.data(), 1, o.data() + i * kd, stream);
    }
  }, stream);
  const char* fla = T == 32768 ? (kda ? "3.97" : "1.95") : T == 8192 ? (kda ? "1.33" : "1.08") : "-";
  std::printf("| %s | %6lld | %9.3f | %9.3f | %9.3f | %9.3f | %9.1f | %10.1f | %8s | %s |\n", mixer, (long long)T,
              tf32_ms, x3_ms, bf16_ms, bf16_in_ms, T / x3_ms / 1e3, token_ms, fla,
              T == 32768 ? (kda ? "<= 2.4" : "<= 1.3") : "-");
}

constexpr int64_t kM2P = 64, kM2N = 128;  // mamba2-2.7b: d_inner 5120 = 80 heads x 64, one group

void run_mamba2(int64_t T, int64_t heads, bool tokens, cudaStream_t stream) {
  std::mt19937 rng(11);
  const int64_t xd = heads * kM2P, row = xd + 2 * kM2N, state_floats = heads * kM2P * kM2N;
  DeviceBuffer<float> xbc = random_buffer(rng, T * row, 1.f), dt = random_buffer(rng, T * heads, 1.f, -2.f),
                      A_log = random_buffer(rng, heads, 0.5f, 1.f), dt_bias = random_buffer(rng, heads, 0.5f),
                      D = random_buffer(rng, heads, 1.f), state = random_buffer(rng, state_floats, 0.1f),
                      y(T * xd);
  DeviceBuffer<int32_t> slot(std::vector<int32_t>{0});
  const Mamba2Dims dims{.H = heads, .P = kM2P, .N = kM2N, .G = 1};
  const Mamba2Params params{.A_log = A_log.data(), .dt_bias = dt_bias.data(), .D = D.data()};
  const Mamba2Inputs in{.x = xbc.data(), .dt = dt.data(), .B = xbc.data() + xd, .C = xbc.data() + xd + kM2N,
                        .x_stride = row, .B_stride = row, .C_stride = row};
  const std::vector<int64_t> offsets{0, T};
  const cuda::SlotPool pool{state.data(), state_floats};
  auto chunked_ms = [&](cuda::PrefillMath math) {
    return median_ms([&] { cuda::mamba2_prefill(dims, params, in, offsets, pool, slot.data(), y.data(), stream, math); },
                     stream);
  };
  const double tf32_ms = chunked_ms(cuda::PrefillMath::Tf32), x3_ms = chunked_ms(cuda::PrefillMath::Tf32x3),
               bf16_ms = chunked_ms(cuda::PrefillMath::Bf16);
  const DeviceBuffer<uint16_t> xbc_bf = to_bf16(xbc);
  const cuda::Mamba2InputsBf16 in_bf{.x = bf16_ptr(xbc_bf), .dt = dt.data(), .B = bf16_ptr(xbc_bf) + xd,
                                     .C = bf16_ptr(xbc_bf) + xd + kM2N, .x_stride = row, .B_stride = row,
                                     .C_stride = row};
  const double bf16_in_ms = median_ms(
      [&] { cuda::mamba2_prefill(dims, params, in_bf, offsets, pool, slot.data(), y.data(), stream); }, stream);
  double token_ms = -1;
  if (tokens)
    token_ms = time_ms([&] {
      for (int64_t i = 0; i < T; ++i) {
        Mamba2Inputs a = in;
        a.x += i * row, a.B += i * row, a.C += i * row, a.dt += i * heads;
        cuda::mamba2_decode(dims, params, a, pool, slot.data(), 1, y.data() + i * xd, stream);
      }
    }, stream);
  std::printf("| Mamba2 %lld heads | %6lld | %9.3f | %9.3f | %9.3f | %9.3f | %9.1f | %10.1f |\n", (long long)heads,
              (long long)T, tf32_ms, x3_ms, bf16_ms, bf16_in_ms, T / x3_ms / 1e3, token_ms);
}

}  // namespace

int main(int argc, char** argv) {
  if (!have_device("gpu_prefill")) return 0;
  cudaStream_t stream;
  cuda_check(cudaStreamCreate(&stream), "stream");
  cudaMemPool_t mem_pool;
  cuda_check(cudaDeviceGetDefaultMemPool(&mem_pool, 0), "default mem pool");
  uint64_t keep = UINT64_MAX;  // keep freed scratch in the pool between calls
  cuda_check(cudaMemPoolSetAttribute(mem_pool, cudaMemPoolAttrReleaseThreshold, &keep), "pool threshold");
  cudaDeviceProp prop{};
  cuda_check(cudaGetDeviceProperties(&prop, 0), "device properties");
  std::printf("Delta-rule prefill, one sequence, 32 heads x 128 x 128, float32 inputs (bf16 in: bf16 q / k / v) and "
              "state (%s)\n", prop.name);
  std::printf("| mixer | T      | chunked tf32 ms | chunked 3xtf32 ms | chunked bf16 ms | chunked bf16, bf16 in ms | M tok/s (3xtf32) | token-by-token ms | fla ms (bf16, NOTES.md) | goal ms |\n");
  std::printf("|-------|--------|-----------|-----------|-----------|-----------|-----------|------------|----------|--------|\n");
  const std::string which = argc > 2 ? argv[2] : "";
  const bool chunked_only = argc > 3 && std::string(argv[3]) == "chunked";
  const int64_t seqs = argc > 4 ? std::max<int64_t>(1, std::atoll(argv[4])) : 1;  // GDN / KDA: T as that many sequences
  const std::vector<int64_t> lengths = argc > 1 ? std::vector<int64_t>{std::atoll(argv[1])} : std::vector<int64_t>{8192, 32768};
  for (bool kda : {false, true})
    if (which.empty() || which == (kda ? "kda" : "gdn"))
      for (int64_t T : lengths) run(T, kda, !chunked_only && seqs == 1, stream, seqs);
  if (which.empty() || which == "mamba2") {
    std::printf("\nMamba2 SSD prefill, one sequence, heads x P 64 x N 128, one group (80 heads: mamba2-2.7b) (%s)\n",
                prop.name);
    std::printf("| mixer | T      | chunked tf32 ms | chunked 3xtf32 ms | chunked bf16 ms | chunked bf16, bf16 in ms | M tok/s (3xtf32) | token-by-token ms |\n");
    std::printf("|-------|--------|-----------|-----------|-----------|-----------|-----------|------------|\n");
    for (int64_t heads : {80, 64})
      for (int64_t T : lengths) run_mamba2(T, heads, !chunked_only && heads == 80, stream);
  }
  cudaStreamDestroy(stream);
  return 0;
}
