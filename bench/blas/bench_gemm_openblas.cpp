// Prefill GEMM: linfer's hand-written packed GEMM (kernels/cpu/matmul*) against OpenBLAS's sgemm, at
// the projection shapes of the three benchmark models (docs/benchmarks.md, "End to end"), in one
// binary so that Google Benchmark can interleave the forms (issue 12, "Dense GEMM for prefill").
// Built only when pkg-config finds openblas (libopenblas-dev).
//
// y[M, N] = x[M, K] · Wᵀ, x float32, W as the checkpoint stores it (bf16 [N, K]). Forms (arg `form`):
//   0 linfer  matmul(), bf16 W: what prefill runs today (widens bf16 into float32 panels per call)
//   1 linfer  matmul(), W widened to float32 once beforehand (2× the weight memory)
//   2 blas    cblas_sgemm on W widened to float32 once beforehand (2× the weight memory)
//   3 blas    W widened bf16 -> float32 into a scratch buffer on every call, then cblas_sgemm:
//             a drop-in replacement with the weights kept as stored
//   4 widen   the widening of form 3 alone (its share of form 3)
// Threads: LINFER_BENCH_THREADS (default 2) for linfer's pool and OpenBLAS alike.
// Rates: flops = 2·M·N·K per call; the CPU column is the whole process (MeasureProcessCPUTime).
//
// Run it with OPENBLAS_THREAD_TIMEOUT=4: OpenBLAS's idle threads otherwise spin for ~2^28 cycles after
// every call, which the process CPU time counts and which takes a core from the next (linfer) run:
//   OPENBLAS_THREAD_TIMEOUT=4 bench_gemm_openblas --benchmark_repetitions=3
//       --benchmark_enable_random_interleaving=true   (one command line)
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <cmath>
#include <cstdlib>
#include <random>

#include "../bench_random.h"
#include "kernels/cpu/matmul.h"
#include "linfer/core/aligned.h"
#include "linfer/core/dtype.h"
#include "linfer/core/thread_pool.h"

using namespace linfer;

namespace {

enum Form { kLinferBf16, kLinferF32, kBlasF32, kBlasWidenPerCall, kWidenOnly };

int bench_threads() {
  const char* env = std::getenv("LINFER_BENCH_THREADS");
  return env ? std::atoi(env) : 2;
}

// bf16 -> float32 of all of W, split over linfer's pool like the GEMM itself.
void widen(const uint16_t* w, int64_t n, float* out) {
  parallel_for(0, n, [&](int64_t i0, int64_t i1) { to_f32(DType::BF16, w + i0, out + i0, size_t(i1 - i0)); },
               int64_t(1) << 16);
}

// args: M, N, K, form
void BM_PrefillGemm(benchmark::State& st) {
  const int threads = bench_threads();
  if (num_threads() != threads) set_num_threads(threads);
  openblas_set_num_threads(threads);
  const int64_t M = st.range(0), N = st.range(1), K = st.range(2);
  const auto form = Form(st.range(3));

  const auto x = randn(size_t(M * K), 1.0f, 1);
  const auto w_ref = randn(size_t(N * K), 0.02f, 2);
  AlignedVector<uint16_t> w_bf16(size_t(N * K));
  from_f32(DType::BF16, w_ref.data(), w_bf16.data(), size_t(N * K));
  AlignedVector<float> w_f32(size_t(N * K));  // W widened (forms 1, 2: once; forms 3, 4: per call)
  widen(w_bf16.data(), N * K, w_f32.data());
  AlignedVector<float> y(size_t(M * N));
  const TensorView bf16_view(w_bf16.data(), DType::BF16, {N, K}), f32_view(w_f32.data(), DType::F32, {N, K});

  // The two libraries must compute the same y (same widened W, float32 sums in different orders).
  AlignedVector<float> y_blas(size_t(M * N));
  kernels::matmul(x.data(), M, bf16_view, nullptr, y.data());
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(M), int(N), int(K), 1.0f, x.data(), int(K),
              w_f32.data(), int(K), 0.0f, y_blas.data(), int(N));
  for (size_t i = 0; i < y.size(); ++i)
    if (std::abs(y[i] - y_blas[i]) > 1e-3f * (1.0f + std::abs(y_blas[i]))) {
      st.SkipWithError("linfer and OpenBLAS results differ");
      return;
    }

  for (auto _ : st) {
    switch (form) {
      case kLinferBf16: kernels::matmul(x.data(), M, bf16_view, nullptr, y.data()); break;
      case kLinferF32: kernels::matmul(x.data(), M, f32_view, nullptr, y.data()); break;
      case kBlasWidenPerCall: widen(w_bf16.data(), N * K, w_f32.data()); [[fallthrough]];
      case kBlasF32:
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(M), int(N), int(K), 1.0f, x.data(), int(K),
                    w_f32.data(), int(K), 0.0f, y.data(), int(N));
        break;
      case kWidenOnly: widen(w_bf16.data(), N * K, w_f32.data()); break;
    }
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  st.counters["flops"] = benchmark::Counter(double(st.iterations()) * 2 * M * N * K, benchmark::Counter::kIsRate);
  static const char* names[] = {"linfer_bf16", "linfer_f32w", "blas_f32w", "blas_widen_per_call", "widen_only"};
  st.SetLabel(names[form]);
}

// {M, N, K}: M = 512 prompt tokens for the dense projections; routed experts see about
// 512 · top-4 / 32 experts = 64 rows each.
const int64_t kShapes[][3] = {
    {512, 3352, 768},   // mamba2 in_proj
    {512, 768, 1536},   // mamba2 out_proj
    {512, 6144, 1024},  // qwen3next GDN in_proj_qkvz
    {512, 1024, 2048},  // qwen3next GDN out_proj
    {512, 2048, 1024},  // qwen3next attention q_proj (with gate)
    {512, 1024, 1024},  // kimi KDA q / k / v / o_proj
    {512, 1536, 1024},  // kimi dense layer gate / up
    {512, 2048, 512},   // kimi MLA kv_b_proj
    {512, 512, 1024},   // shared expert gate / up (both models)
    {64, 512, 1024},    // routed expert gate / up
    {64, 1024, 512},    // routed expert down
};

void shapes_and_forms(benchmark::internal::Benchmark* b) {
  for (const auto& s : kShapes)
    for (int form = kLinferBf16; form <= kWidenOnly; ++form) b->Args({s[0], s[1], s[2], form});
}

BENCHMARK(BM_PrefillGemm)
    ->ArgNames({"M", "N", "K", "form"})
    ->Apply(shapes_and_forms)
    ->MeasureProcessCPUTime()
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
