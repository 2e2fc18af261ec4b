// GPU decode-step benchmark (built as gpu_decode with -DLINFER_CUDA=ON; run by tools/gpu_check.sh):
// each decode kernel at B = 1, 8, 64, 256 sequences of 32 heads × 128 × 128 (float32 state, 2 MiB per
// sequence), timed with CUDA events around replays of a CUDA graph of many calls (launch gaps as a
// serving loop's graph would have them). Two placements of the states:
//   hbm   every call in the graph uses other slots, cycling through >= 512 MiB: the state comes from HBM
//   same  every call uses the same slots: at B <= 8 the 2-16 MiB of state stays in the 60 MB L2
// Bandwidth counts the recurrent state only: read + written once per call, 2 · B · 32 · 128 · 128 · 4 bytes.
// fla's figures are from ../shared/NOTES.md (same card, fla @ bc3b101 inside a CUDA graph of 20 calls).
// The launch floor is the smallest kernel (conv1d_step of one channel) in the same kind of graph; the state
// copy floor, B states moved by cudaMemcpyAsync in the same kind of graph.
//   gpu_decode                 all tables
//   gpu_decode KERNEL B        only 20 calls of one kernel at batch B (e.g. under ncu), no output
//   gpu_decode only KERNEL...  only the main table's rows of those kernels (A/B runs)
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "kernels/cuda/conv1d.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/delta_rule_decode.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/linear_attn_decode.h"
#include "have_device.h"
#include "random_buffer.h"

using namespace linfer::kernels;
using cuda::cuda_check;
using cuda::DeviceBuffer;
using cuda::SlotPool;

namespace {

constexpr int64_t kHeads = 32, kDim = 128, kConvW = 4;
constexpr int64_t kStateFloats = kHeads * kDim * kDim;  // one sequence, one layer
constexpr int64_t kConvFloats = 3 * kHeads * kDim * (kConvW - 1);

// Call i of a graph (a kernel for B sequences, say, on slot set i % sets).
using Call = std::function<void(int i, cudaStream_t)>;

struct Timing {
  double us = 0;  // median per call
};

// Median over replays of a graph of calls 0 .. n_calls - 1, per call.
Timing time_graph(const Call& call, int n_calls, cudaStream_t stream) {
  cudaGraph_t graph;
  cuda_check(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), "begin capture");
  for (int i = 0; i < n_calls; ++i) call(i, stream);
  cuda_check(cudaStreamEndCapture(stream, &graph), "end capture");
  cudaGraphExec_t exec;
  cuda_check(cudaGraphInstantiate(&exec, graph, 0), "instantiate graph");
  cudaEvent_t start, stop;
  cuda_check(cudaEventCreate(&start), "event");
  cuda_check(cudaEventCreate(&stop), "event");
  for (int i = 0; i < 3; ++i) cuda_check(cudaGraphLaunch(exec, stream), "warm-up replay");
  std::vector<double> per_call;
  for (int r = 0; r < 15; ++r) {
    cuda_check(cudaEventRecord(start, stream), "record");
    cuda_check(cudaGraphLaunch(exec, stream), "replay");
    cuda_check(cudaEventRecord(stop, stream), "record");
    cuda_check(cudaEventSynchronize(stop), "sync");
    float ms = 0;
    cuda_check(cudaEventElapsedTime(&ms, start, stop), "elapsed");
    per_call.push_back(ms * 1e3 / n_calls);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  std::sort(per_call.begin(), per_call.end());
  return {per_call[per_call.size() / 2]};
}

double copy_tbps(cudaStream_t stream) {
  const size_t bytes = size_t(2) << 30;
  DeviceBuffer<char> a(bytes), b(bytes);
  cuda_check(cudaMemset(a.data(), 1, bytes), "memset");
  cudaEvent_t start, stop;
  cuda_check(cudaEventCreate(&start), "event");
  cuda_check(cudaEventCreate(&stop), "event");
  std::vector<double> t;
  for (int r = 0; r < 10; ++r) {
    cuda_check(cudaEventRecord(start, stream), "record");
    cuda_check(cudaMemcpyAsync(b.data(), a.data(), bytes, cudaMemcpyDeviceToDevice, stream), "copy");
    cuda_check(cudaEventRecord(stop, stream), "record");
    cuda_check(cudaEventSynchronize(stop), "sync");
    float ms = 0;
    cuda_check(cudaEventElapsedTime(&ms, start, stop), "elapsed");
    if (r >= 2) t.push_back(ms);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(t.begin(), t.end());
  return 2.0 * bytes / (t[t.size() / 2] * 1e-3) / 1e12;  // read + write
}

struct FlaRef {
  double us, tbps;
};

// ../shared/NOTES.md, "Measured on an H200": fla fused_recurrent_{kda,gated_delta_rule}, CUDA graph of 20 calls.
FlaRef fla(const std::string& kernel, int64_t B) {
  const int i = B == 1 ? 0 : B == 8 ? 1 : B == 64 ? 2 : 3;
  static const FlaRef kda[] = {{4.8, 0.9}, {11.1, 3.0}, {74.7, 3.6}, {287, 3.7}};
  static const FlaRef gdn[] = {{3.5, 1.2}, {12.3, 2.7}, {94.4, 2.8}, {365, 2.9}};
  if (kernel == "kda") return kda[i];
  if (kernel == "gdn") return gdn[i];
  return {0, 0};
}

}  // namespace

int main(int argc, char** argv) {
  if (!have_device("gpu_decode")) return 0;
  cudaDeviceProp prop;
  cuda_check(cudaGetDeviceProperties(&prop, 0), "device properties");
  std::printf("device: %s, %d SMs, L2 %d MiB\n", prop.name, prop.multiProcessorCount, prop.l2CacheSize >> 20);
  cudaStream_t stream;
  cuda_check(cudaStreamCreate(&stream), "stream");
  const bool only = argc >= 2 && std::string(argv[1]) == "only";  // only KERNEL...: the table's rows of those
  const bool profile = !only && argc == 3;                          // KERNEL B: a few calls of one kernel for a profiler
  const double copy = profile ? 0.0 : copy_tbps(stream);

  std::mt19937 rng(1);
  const int64_t max_slots = 512;  // 1 GiB of state
  DeviceBuffer<float> pool = random_buffer(rng, max_slots * kStateFloats, 0.5f);
  DeviceBuffer<float> conv_pool = random_buffer(rng, max_slots * kConvFloats, 1.0f);
  const int64_t Bmax = 256, C = 3 * kHeads * kDim;
  // per-token inputs for Bmax sequences: [q | k | v] rows, gates, the norm's gate
  DeviceBuffer<float> qkv = random_buffer(rng, Bmax * C, 1.0f);
  DeviceBuffer<float> g_scalar = random_buffer(rng, Bmax * kHeads, 0.5f, -1.0f);          // raw / log decay
  DeviceBuffer<float> g_key = random_buffer(rng, Bmax * kHeads * kDim, 0.5f, -1.0f);
  DeviceBuffer<float> beta = random_buffer(rng, Bmax * kHeads, 0.1f, 0.5f);
  DeviceBuffer<float> gate = random_buffer(rng, Bmax * kHeads * kDim, 1.0f);
  DeviceBuffer<float> conv_w = random_buffer(rng, C * kConvW, 0.3f);
  DeviceBuffer<float> A_log = random_buffer(rng, kHeads, 0.3f);
  DeviceBuffer<float> dt_bias = random_buffer(rng, kHeads * kDim, 0.3f);
  DeviceBuffer<float> norm_w = random_buffer(rng, kDim, 0.1f, 1.0f);
  DeviceBuffer<float> out(Bmax * kHeads * kDim);
  // log decays must be <= 0: make the "given" gates negative by construction (mean -1, sd 0.5 clipped below)
  {
    for (auto* buf : {&g_scalar, &g_key}) {
      auto h = buf->download();
      for (float& x : h) x = std::min(x, 0.0f);
      buf->upload(h);
    }
  }

  const SlotPool S{pool.data(), kStateFloats};
  const int64_t kd = kHeads * kDim;
  using Kernel = std::function<void(int64_t, const int32_t*, cudaStream_t)>;
  auto delta = [&](DeltaDecay decay, bool layer, int split = 0) -> Kernel {
    return [&, decay, layer, split](int64_t B, const int32_t* slots, cudaStream_t s) {
      cuda::DeltaDecodeArgs a;
      a.shape = {.H = kHeads, .HV = kHeads, .K = kDim, .V = kDim, .decay = decay, .l2norm_qk = true};
      a.in = {.q = qkv.data(), .k = qkv.data() + kd, .v = qkv.data() + 2 * kd, .beta = beta.data(),
              .g = decay == DeltaDecay::PerKey ? g_key.data() : g_scalar.data(),
              .q_stride = C, .k_stride = C, .v_stride = C};
      if (layer) {
        const int64_t w = kConvW - 1;
        a.conv_width = kConvW;
        a.conv_q = {conv_w.data(), {conv_pool.data(), kConvFloats}};
        a.conv_k = {conv_w.data() + kd * kConvW, {conv_pool.data() + kd * w, kConvFloats}};
        a.conv_v = {conv_w.data() + 2 * kd * kConvW, {conv_pool.data() + 2 * kd * w, kConvFloats}};
        a.A_log = A_log.data();
        a.dt_bias = dt_bias.data();
        a.beta_logits = true;
        a.norm_w = norm_w.data();
        a.norm_gate = gate.data();
        a.norm_act = decay == DeltaDecay::PerKey ? GateAct::Sigmoid : GateAct::Silu;
      }
      a.split = split;
      cuda::delta_rule_decode(a, S, slots, B, out.data(), s);
    };
  };
  auto mamba2 = [&](int64_t B, const int32_t* slots, cudaStream_t s) {
    const Mamba2Dims dims{.H = kHeads, .P = kDim, .N = kDim, .G = 1};
    const Mamba2Params params{.A_log = A_log.data(), .dt_bias = dt_bias.data(), .D = norm_w.data()};
    const Mamba2Inputs in{.x = qkv.data(), .dt = g_scalar.data(), .B = qkv.data() + kd, .C = qkv.data() + 2 * kd,
                          .x_stride = C, .B_stride = C, .C_stride = C};
    cuda::mamba2_decode(dims, params, in, S, slots, B, out.data(), s);
  };
  auto simple_gla = [&](int64_t B, const int32_t* slots, cudaStream_t s) {
    const LinearAttnArgs a{.H = kHeads, .HV = kHeads, .K = kDim, .V = kDim, .q = qkv.data(), .k = qkv.data() + kd,
                           .v = qkv.data() + 2 * kd, .q_stride = C, .k_stride = C, .v_stride = C,
                           .decay = LinearAttnDecay::Scalar, .g = g_scalar.data(), .scale = 0.088f};
    cuda::linear_attn_decode(a, S, {}, slots, B, out.data(), s);
  };
  const std::vector<std::pair<std::string, Kernel>> kernels = {
      {"gdn", delta(DeltaDecay::Scalar, false)},      {"gdn_layer", delta(DeltaDecay::Scalar, true)},
      {"kda", delta(DeltaDecay::PerKey, false)},      {"kda_layer", delta(DeltaDecay::PerKey, true)},
      {"mamba2", mamba2},                             {"simple_gla", simple_gla},
  };

  // Slot sets for B sequences: a random permutation of the pool's slots, cut into n_sets sets of B.
  auto slot_sets = [&](int64_t B, int n_sets) {
    std::vector<int32_t> host(max_slots);
    for (size_t i = 0; i < host.size(); ++i) host[i] = int32_t(i);
    std::shuffle(host.begin(), host.end(), rng);
    host.resize(n_sets * B);
    return DeviceBuffer<int32_t>(host);
  };
  // hbm placement: cycle through all 512 slots (1 GiB); same: one set of B slots for every call
  auto measure = [&](const Kernel& fn, int64_t B, bool hbm) {
    const int n_sets = hbm ? int(std::max<int64_t>(2, max_slots / B)) : 1;
    const DeviceBuffer<int32_t> slots = slot_sets(B, n_sets);
    fn(B, slots.data(), stream);  // argument errors surface here, outside the capture
    cuda_check(cudaStreamSynchronize(stream), "first call");
    const Call call = [&, B, n_sets](int i, cudaStream_t s) { fn(B, slots.data() + (i % n_sets) * B, s); };
    const Timing t = time_graph(call, std::max(20, n_sets), stream);
    return std::pair{t.us, 2.0 * B * kStateFloats * sizeof(float) / (t.us * 1e-6) / 1e12};
  };

  if (profile) {
    const std::string want = argv[1];
    const int64_t B = std::atoll(argv[2]);
    for (const auto& [name, fn] : kernels) {
      if (name != want) continue;
      const DeviceBuffer<int32_t> slots = slot_sets(B, 1);
      for (int i = 0; i < 20; ++i) fn(B, slots.data(), stream);
      cuda_check(cudaStreamSynchronize(stream), "profiled calls");
      return 0;
    }
    std::fprintf(stderr, "gpu_decode: unknown kernel %s\n", argv[1]);
    return 2;
  }

  // Launch floor: the smallest kernel in a graph of 20 calls (one thread, one conv channel of width 1).
  const Kernel tiny = [&](int64_t, const int32_t* slots, cudaStream_t s) {
    cuda::conv1d_step(qkv.data(), 1, conv_w.data(), nullptr, 1, 1, {}, slots, 1, false, out.data(), s);
  };
  std::printf("device-to-device copy: %.2f TB/s (read + write); launch floor %.1f us per call in a graph\n\n",
              copy, measure(tiny, 1, false).first);

  std::printf("%-11s %4s | %9s %7s %5s | %9s %7s | %9s %7s\n", "kernel", "B", "hbm us", "TB/s", "%copy",
              "same us", "TB/s", "fla us", "TB/s");
  for (const auto& [name, fn] : kernels) {
    if (only && std::find(argv + 2, argv + argc, name) == argv + argc) continue;
    for (int64_t B : {1, 8, 64, 256}) {
      const auto [hbm_us, hbm_tbps] = measure(fn, B, true);
      const auto [same_us, same_tbps] = measure(fn, B, false);
      const FlaRef f = fla(name, B);
      std::printf("%-11s %4lld | %9.1f %7.2f %4.0f%% | %9.1f %7.2f |", name.c_str(), (long long)B, hbm_us, hbm_tbps,
                  100 * hbm_tbps / copy, same_us, same_tbps);
      if (f.us > 0) std::printf(" %9.1f %7.1f\n", f.us, f.tbps);
      else std::printf(" %9s %7s\n", "-", "-");
    }
  }
  if (only) return 0;

  // The same bytes without a kernel of ours: B states (read + written) moved by one cudaMemcpyAsync per call,
  // in a graph of 20; hbm: call i copies set i of the pool's first half to its mirror in the second half,
  // same: every call set 0 (source and destination, 2 B states, in L2 up to B = 8).
  std::printf("\nstate copy floor (cudaMemcpyAsync of B states; us per call)\n%-11s %4s | %9s %7s | %9s %7s\n",
              "copy", "B", "hbm us", "TB/s", "same us", "TB/s");
  for (int64_t B : {1, 8, 64, 256}) {
    const int64_t set_floats = B * kStateFloats, half = max_slots / B / 2;
    std::printf("%-11s %4lld |", "copy", (long long)B);
    for (bool hbm : {true, false}) {
      const Call copy = [&, hbm](int i, cudaStream_t s) {
        float* src = pool.data() + (hbm ? i % half : 0) * set_floats;
        cuda_check(cudaMemcpyAsync(src + half * set_floats, src, set_floats * sizeof(float),
                                   cudaMemcpyDeviceToDevice, s),
                   "state copy");
      };
      const double us = time_graph(copy, 20, stream).us;
      std::printf(" %9.1f %7.2f |", us, 2.0 * set_floats * sizeof(float) / (us * 1e-6) / 1e12);
    }
    std::printf("\n");
  }

  // Blocks per head (delta_rule_decode's split) against the automatic choice: hbm placement, us per call.
  std::printf("\nsplit sweep (hbm us per call; auto = the kernel's choice)\n%-11s %4s | %8s %8s %8s %8s %8s\n",
              "kernel", "B", "auto", "1", "2", "4", "8");
  for (const auto& [name, decay, layer] : {std::tuple{"gdn", DeltaDecay::Scalar, false},
                                           std::tuple{"kda", DeltaDecay::PerKey, false},
                                           std::tuple{"gdn_layer", DeltaDecay::Scalar, true},
                                           std::tuple{"kda_layer", DeltaDecay::PerKey, true}}) {
    for (int64_t B : {1, 8, 64, 256}) {
      std::printf("%-11s %4lld |", name, (long long)B);
      for (int split : {0, 1, 2, 4, 8}) std::printf(" %8.1f", measure(delta(decay, layer, split), B, true).first);
      std::printf("\n");
    }
  }
  cuda_check(cudaStreamDestroy(stream), "stream");
  return 0;
}
