// Delta-rule kernels (GDN, KDA) at head dim 128, against this machine's floors measured in the same
// binary: a stream copy (memory bandwidth) and an FMA loop (peak FP32 arithmetic).
//
// Counting (shared/research/kernels.md §2.2-2.3), per head-token with d = K = V:
//   decode        bytes 2·4·d² (the fp32 state read and written once); flops 7·d²
//   prefill, recurrent form   flops 7·d² (the decode recurrence per token)
//   prefill, chunked form     flops 6·d² + 10·C·d + C²/3 (full, not triangular, chunk GEMMs)
// Counters: bytes_per_second / flops (per second), tokens/s. The last argument is the thread count;
// times are wall-clock (a shared machine: rerun when the load average is high).
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <vector>

#include "kernels/cpu/delta_rule.h"
#include "linfer/core/aligned.h"
#include "linfer/core/cpu_features.h"
#include "linfer/core/thread_pool.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

using namespace linfer;
using namespace linfer::kernels;

namespace {

constexpr int64_t kHeads = 16, kDim = 128;

// ---- floors ---------------------------------------------------------------------------------------

// Memory bandwidth: copy 64 MiB (twice the L3) per thread; counts bytes read + written.
void BM_Floor_StreamCopy(benchmark::State& st) {
  const size_t n = size_t(16) << 20;  // floats
  AlignedVector<float> a(n, 1.0f), b(n);
  for (auto _ : st) {
    std::memcpy(b.data(), a.data(), n * sizeof(float));
    benchmark::ClobberMemory();
  }
  st.SetBytesProcessed(int64_t(st.iterations()) * 2 * n * sizeof(float));
}
BENCHMARK(BM_Floor_StreamCopy)->Threads(1)->Threads(2)->UseRealTime();

#if defined(__x86_64__)
// Peak FP32 FMA: 10 independent 8-lane accumulators (enough to cover latency × 2 pipes).
__attribute__((target("avx2,fma"))) float fma_loop(int64_t iters) {
  __m256 acc[10];
  for (int i = 0; i < 10; ++i) acc[i] = _mm256_set1_ps(float(i));
  const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it)
#pragma GCC unroll 10  // without it GCC keeps acc[] in memory and measures store forwarding
    for (int i = 0; i < 10; ++i) acc[i] = _mm256_fmadd_ps(acc[i], m, c);
  __m256 s = acc[0];
  for (int i = 1; i < 10; ++i) s = _mm256_add_ps(s, acc[i]);
  float out[8];
  _mm256_storeu_ps(out, s);
  return out[0];
}

void BM_Floor_FmaPeak(benchmark::State& st) {
  if (simd_level() < SimdLevel::Avx2) {
    st.SkipWithError("no AVX2");
    return;
  }
  int64_t iters = 1 << 20;
  for (auto _ : st) {
    benchmark::DoNotOptimize(iters);  // or the pure call is hoisted out of the timing loop
    benchmark::DoNotOptimize(fma_loop(iters));
  }
  st.counters["flops"] = benchmark::Counter(double(st.iterations()) * iters * 10 * 8 * 2, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Floor_FmaPeak)->Threads(1)->Threads(2)->UseRealTime();
#endif

// ---- kernels --------------------------------------------------------------------------------------

struct Inputs {
  std::vector<float> q, k, v, beta, g;
  Inputs(int64_t T, DeltaDecay decay) {
    std::mt19937 rng(1);
    std::normal_distribution<float> n(0.0f, 1.0f);
    auto fill = [&](std::vector<float>& x, int64_t size, float lo_clamp) {
      x.resize(size);
      for (auto& e : x) e = lo_clamp < 0 ? std::min(0.0f, std::max(lo_clamp, -std::abs(n(rng)))) : n(rng);
    };
    fill(q, T * kHeads * kDim, 0);
    fill(k, T * kHeads * kDim, 0);
    fill(v, T * kHeads * kDim, 0);
    beta.assign(T * kHeads, 0.5f);
    fill(g, T * kHeads * (decay == DeltaDecay::PerKey ? kDim : 1), -5.0f);
  }
  DeltaRuleInputs view() const { return {q.data(), k.data(), v.data(), beta.data(), g.data()}; }
};

DeltaRuleShape shape_of(DeltaDecay decay) {
  return {.H = kHeads, .HV = kHeads, .K = kDim, .V = kDim, .decay = decay, .l2norm_qk = true};
}

// Decode: one token for each of B sequences, each with its own state.
void BM_Decode(benchmark::State& st, DeltaDecay decay) {
  const int64_t B = st.range(0);
  set_num_threads(int(st.range(1)));
  const DeltaRuleShape shape = shape_of(decay);
  const Inputs in(B, decay);
  std::vector<AlignedVector<float>> states(B, AlignedVector<float>(delta_rule_state_elems(shape), 0.01f));
  std::vector<float*> ptrs;
  for (auto& s : states) ptrs.push_back(s.data());
  std::vector<float> o(B * kHeads * kDim);
  for (auto _ : st) {
    delta_rule_step(shape, in.view(), ptrs, o.data());
    benchmark::ClobberMemory();
  }
  const double head_tokens = double(st.iterations()) * B * kHeads;
  st.SetBytesProcessed(int64_t(head_tokens * 2 * 4 * kDim * kDim));
  st.counters["flops"] = benchmark::Counter(head_tokens * 7 * kDim * kDim, benchmark::Counter::kIsRate);
  st.counters["tokens/s"] = benchmark::Counter(double(st.iterations()) * B, benchmark::Counter::kIsRate);
}
void decode_args(benchmark::internal::Benchmark* b) {
  for (int64_t threads : {1, 2})
    for (int64_t B : {1, 8, 32, 128}) b->Args({B, threads});
  b->ArgNames({"B", "threads"})->UseRealTime();
}
BENCHMARK_CAPTURE(BM_Decode, GDN, DeltaDecay::Scalar)->Apply(decode_args);
BENCHMARK_CAPTURE(BM_Decode, KDA, DeltaDecay::PerKey)->Apply(decode_args);

// Prefill of one sequence of T tokens; range(1): 0 = recurrent form, C > 0 = chunked with chunk C.
void BM_Prefill(benchmark::State& st, DeltaDecay decay) {
  const int64_t T = st.range(0), C = st.range(1);
  set_num_threads(int(st.range(2)));
  const DeltaRuleShape shape = shape_of(decay);
  const Inputs in(T, decay);
  AlignedVector<float> state(delta_rule_state_elems(shape), 0.0f);
  std::vector<float*> ptrs = {state.data()};
  std::vector<int64_t> offsets = {0, T};
  std::vector<float> o(T * kHeads * kDim);
  const DeltaPrefillOptions opt = C ? DeltaPrefillOptions{DeltaPrefillForm::Chunked, int(C)}
                                    : DeltaPrefillOptions{DeltaPrefillForm::Recurrent, 0};
  for (auto _ : st) {
    delta_rule_prefill(shape, in.view(), offsets, ptrs, o.data(), opt);
    benchmark::ClobberMemory();
  }
  const double d = kDim, head_tokens = double(st.iterations()) * T * kHeads;
  const double per = C ? 6 * d * d + 10 * C * d + C * C / 3.0 : 7 * d * d;
  st.counters["flops"] = benchmark::Counter(head_tokens * per, benchmark::Counter::kIsRate);
  st.counters["tokens/s"] = benchmark::Counter(double(st.iterations()) * T, benchmark::Counter::kIsRate);
}
void prefill_args(benchmark::internal::Benchmark* b) {
  for (int64_t threads : {1, 2})
    for (int64_t T : {512, 4096})
      for (int64_t C : {0, 16, 32, 64}) b->Args({T, C, threads});
  b->ArgNames({"T", "chunk", "threads"})->UseRealTime()->Unit(benchmark::kMillisecond);
}
BENCHMARK_CAPTURE(BM_Prefill, GDN, DeltaDecay::Scalar)->Apply(prefill_args);
BENCHMARK_CAPTURE(BM_Prefill, KDA, DeltaDecay::PerKey)->Apply(prefill_args);

}  // namespace
