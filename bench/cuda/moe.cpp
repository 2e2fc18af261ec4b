// GPU benchmark of the routed experts' products (built as gpu_moe with -DLINFER_CUDA=ON; run by
// tools/gpu_check.sh): expert_gemm (tensor cores, kernels/cuda/expert_gemm.h) against expert_gemv (CUDA cores,
// dense.h) for bf16 weights at several rows per expert, experts drawn uniformly or half the rows on one expert,
// for two MoE shapes (the gate / up product [2 I, H] and the down product [H, I]):
//   random 1B    32 experts, top 4, H 1,024, I 512   (tools/make_random_model.py's kimi_linear / qwen3next)
//   Kimi 48B     256 experts, top 8, H 2,304, I 1,024 (Kimi-Linear-48B-A3B's MoE layers)
// µs per call (median of 9 timings of 10 calls each), and the rate of the useful products (2 J N K flops; the
// tensor cores do three times that for x's three bf16 terms). The row count from which expert_gemm wins is
// where kExpertGemmMinRowsPerExpert belongs.
//   gpu_moe            the table
//   gpu_moe gemm-only  the table without expert_gemv (A/B runs of expert_gemm)
//   gpu_moe gemm|gemv  10 calls of one kernel at the random 1B gate / up shape, 64 rows per expert (for ncu)
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/dense.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/expert_gemm.h"
#include "linfer/core/dtype.h"
#include "have_device.h"
#include "random_buffer.h"

using namespace linfer::kernels;
using cuda::cuda_check;
using cuda::DeviceBuffer;

namespace {

struct Shape {
  const char* name;
  int64_t E, top_k, H, I;
};

// One product of one shape: E experts' [N, K] bf16 weights, y.rows = J (token, expert) rows.
struct Product {
  int64_t E, N, K;
  DeviceBuffer<uint16_t> w;  // [E][N][K]
  DeviceBuffer<cuda::ExpertRows> table;

  Product(std::mt19937& rng, int64_t E_, int64_t N_, int64_t K_) : E(E_), N(N_), K(K_), w(size_t(E_ * N_ * K_)) {
    std::normal_distribution<float> d(0.f, 0.05f);
    std::vector<uint16_t> block(size_t(std::min<int64_t>(E * N * K, 1 << 20)));
    for (auto& b : block) b = linfer::f32_to_bf16(d(rng));
    for (int64_t at = 0; at < E * N * K; at += int64_t(block.size())) {
      const int64_t n = std::min<int64_t>(int64_t(block.size()), E * N * K - at);
      cuda_check(cudaMemcpy(w.data() + at, block.data(), size_t(n) * 2, cudaMemcpyHostToDevice), "weights");
    }
    std::vector<cuda::ExpertRows> rows(static_cast<size_t>(E));
    for (int64_t e = 0; e < E; ++e) rows[size_t(e)] = {w.data() + e * N * K, nullptr};
    table = DeviceBuffer<cuda::ExpertRows>(rows);
  }
};

template <class F>
double time_us(F&& call, cudaStream_t stream) {
  cudaEvent_t start, stop;
  cuda_check(cudaEventCreate(&start), "event");
  cuda_check(cudaEventCreate(&stop), "event");
  for (int i = 0; i < 3; ++i) call();
  std::vector<double> t;
  for (int r = 0; r < 9; ++r) {
    cuda_check(cudaEventRecord(start, stream), "record");
    for (int i = 0; i < 10; ++i) call();
    cuda_check(cudaEventRecord(stop, stream), "record");
    cuda_check(cudaEventSynchronize(stop), "sync");
    float ms = 0;
    cuda_check(cudaEventElapsedTime(&ms, start, stop), "elapsed");
    t.push_back(ms * 1e3 / 10);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

std::string f1(double v) {  // one decimal
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", v);
  return b;
}

// J expert ids: uniform over the experts, or (skewed) every other row on expert 0.
DeviceBuffer<float> expert_ids(std::mt19937& rng, int64_t J, int64_t E, bool skewed) {
  std::vector<float> ids(static_cast<size_t>(J));
  std::uniform_int_distribution<int64_t> pick(0, E - 1);
  for (int64_t j = 0; j < J; ++j) ids[size_t(j)] = float(skewed && j % 2 == 0 ? 0 : pick(rng));
  return DeviceBuffer<float>(ids);
}

}  // namespace

int main(int argc, char** argv) {
  if (!have_device("gpu_moe")) return 0;
  cudaDeviceProp prop;
  cuda_check(cudaGetDeviceProperties(&prop, 0), "device properties");
  cudaStream_t stream;
  cuda_check(cudaStreamCreate(&stream), "stream");
  std::mt19937 rng(3);
  const bool gemm_only = argc >= 2 && std::string(argv[1]) == "gemm-only";
  const std::string only = argc >= 2 && !gemm_only ? argv[1] : "";
  const Shape shapes[] = {{"random 1B", 32, 4, 1024, 512}, {"Kimi 48B", 256, 8, 2304, 1024}};
  if (!only.empty())
    std::printf("gpu_moe: 10 calls of expert_%s, %s gate / up, 64 rows per expert\n", only.c_str(), shapes[0].name);
  else
    std::printf("device: %s, %d SMs\n\n| shape | product | experts | rows / expert | J | gemv µs | gemm µs | gemv "
                "TFLOPS | gemm TFLOPS |\n|---|---|---|---|---|---|---|---|---|\n",
                prop.name, prop.multiProcessorCount);
  for (const Shape& s : shapes) {
    Product gate_up(rng, s.E, 2 * s.I, s.H), down(rng, s.E, s.H, s.I);
    for (const int64_t per_expert : {4, 8, 16, 32, 64, 128, 256}) {
      const int64_t J = per_expert * s.E, T = J / s.top_k;
      if (J > 32768 || (!only.empty() && (per_expert != 64 || &s != &shapes[0]))) continue;
      DeviceBuffer<float> x = random_buffer(rng, J * std::max(s.H, s.I), 1.0f), y(size_t(J * std::max(s.H, 2 * s.I)));
      DeviceBuffer<char> scratch(size_t(std::max(cuda::expert_gemm_scratch_bytes(s.E, J, s.top_k, s.H),
                                                 cuda::expert_gemm_scratch_bytes(s.E, J, 1, s.I))));
      for (const bool skewed : {false, true}) {
        if (skewed && per_expert != 64) continue;
        DeviceBuffer<float> ids = expert_ids(rng, J, s.E, skewed);
        for (const bool is_down : {false, true}) {
          const Product& p = is_down ? down : gate_up;
          const int64_t x_every = is_down ? 1 : s.top_k;
          const cuda::Rows rx{x.data(), is_down ? J : T, p.K, p.K}, ry{y.data(), J, p.N, p.N};
          auto gemm = [&] {
            cuda::expert_gemm(rx, x_every, p.table.data(), p.E, p.N, p.N, p.K, ids.data(), ry, scratch.data(), stream);
          };
          auto gemv = [&] {
            cuda::expert_gemv(rx, x_every, p.table.data(), p.E, p.N, linfer::DType::BF16, p.N, p.K, ids.data(), ry,
                              stream);
          };
          if (!only.empty()) {
            if (is_down) continue;
            for (int i = 0; i < 10; ++i) only == "gemm" ? gemm() : gemv();
            cuda_check(cudaStreamSynchronize(stream), "sync");
            return 0;
          }
          const double tv = gemm_only ? 0.0 : time_us(gemv, stream), tm = time_us(gemm, stream),
                       flops = 2.0 * J * p.N * p.K;
          const std::string gemv_us = gemm_only ? "-" : f1(tv), gemv_tf = gemm_only ? "-" : f1(flops / tv * 1e-6);
          std::printf("| %s | %s [%ld, %ld] | %ld | %ld%s | %ld | %s | %.1f | %s | %.1f |\n", s.name,
                      is_down ? "down" : "gate / up", long(p.N), long(p.K), long(s.E), long(per_expert),
                      skewed ? " (half on one)" : "", long(J), gemv_us.c_str(), tm, gemv_tf.c_str(), flops / tm * 1e-6);
        }
      }
    }
  }
  return 0;
}
