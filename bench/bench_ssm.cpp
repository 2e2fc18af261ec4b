// Mamba2 SSD, linear-attention and causal conv1d kernels (CPU). Shape: Mamba2-780m's mixer (d_model 1536, expand 2:
// 48 heads × head dim P = 64, state size N = 128, one B/C group), per layer; state 1.5 MiB per
// sequence. Machine floors (copy bandwidth, FMA peak) and results: docs/benchmarks.md.
//
// Counting, per token (H heads, P head dim, N state, G groups, chunk L = 64):
//   decode   bytes 2·4·H·P·N (the fp32 state read and written once) + 4·(2·H·P + 2·G·N + H) inputs/output
//            flops 5·H·P·N (decay multiply, update FMA, output FMA)
//   prefill  bytes 4·(2·H·P + 2·G·N + H) per token + 2·4·H·P·N per sequence
//            flops, chunked form, causal halves only: H·(4·P·N + L·P) + G·L·N
//            (state update + initial-state output: 2·P·N each; intra-chunk (C·Bᵀ ⊙ decay)·X: L·P;
//            C·Bᵀ shared by the heads of a group: L·N)
// Counters: bytes_per_second, flops (per second), tokens (per second).
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "bench_random.h"
#include "kernels/cpu/conv1d.h"
#include "kernels/cpu/linear_attn.h"
#include "kernels/cpu/mamba2_ssd.h"
#include "linfer/core/aligned.h"
#include "linfer/core/thread_pool.h"

using namespace linfer;
using namespace linfer::kernels;

namespace {

constexpr Mamba2Dims kMamba2{.H = 48, .P = 64, .N = 128, .G = 1};
constexpr int64_t kChunk = 64;

// Weights and per-token inputs for T tokens.
struct Mamba2Bench {
  Mamba2Dims d = kMamba2;
  AlignedVector<float> x, dt, B, C, y, A_log, dt_bias, D;
  explicit Mamba2Bench(int64_t T)
      : x(randn(T * d.H * d.P, 1.0f, 1)), dt(randn(T * d.H, 1.0f, 2)), B(randn(T * d.G * d.N, 0.5f, 3)),
        C(randn(T * d.G * d.N, 0.5f, 4)), y(T * d.H * d.P), A_log(randn(d.H, 0.5f, 5)), dt_bias(randn(d.H, 0.5f, 6)),
        D(randn(d.H, 1.0f, 7)) {
    for (auto& b : dt_bias) b -= 4.0f;  // softplus(dt_bias) ≈ 0.02, as trained layers have
  }
  Mamba2Params params() const { return {A_log.data(), dt_bias.data(), D.data()}; }
  Mamba2Inputs inputs() const { return {x.data(), dt.data(), B.data(), C.data()}; }
  int64_t io_bytes_per_token() const { return 4 * (2 * d.H * d.P + 2 * d.G * d.N + d.H); }
  int64_t state_bytes() const { return 4 * mamba2_state_elems(d); }
};

struct StatePool {
  std::vector<AlignedVector<float>> store;
  std::vector<float*> ptrs;
  StatePool(int64_t n, int64_t elems) {
    for (int64_t i = 0; i < n; ++i) store.push_back(randn(elems, 0.1f, 100 + uint32_t(i)));
    for (auto& s : store) ptrs.push_back(s.data());
  }
};

void set_threads(benchmark::State& st, int arg) { set_num_threads(int(st.range(arg))); }

void BM_Mamba2_Step(benchmark::State& st) {
  set_threads(st, 1);
  const int64_t B = st.range(0);
  Mamba2Bench m(B);
  StatePool pool(B, mamba2_state_elems(m.d));
  for (auto _ : st) {
    mamba2_ssd_step(m.d, m.params(), m.inputs(), pool.ptrs, m.y.data());
    benchmark::ClobberMemory();
  }
  const auto& d = m.d;
  const double it = double(st.iterations());
  st.SetBytesProcessed(int64_t(it * B * (2 * m.state_bytes() + m.io_bytes_per_token())));
  st.counters["flops"] = benchmark::Counter(it * B * 5.0 * d.H * d.P * d.N, benchmark::Counter::kIsRate);
  st.counters["tokens"] = benchmark::Counter(it * B, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Mamba2_Step)->ArgsProduct({{1, 8, 32}, {1, 2}})->ArgNames({"B", "threads"})->UseRealTime();

double mamba2_prefill_flops(const Mamba2Dims& d, int64_t T) {
  return double(T) * (d.H * (4.0 * d.P * d.N + kChunk * d.P) + d.G * double(kChunk) * d.N);
}

void BM_Mamba2_Prefill(benchmark::State& st) {
  set_threads(st, 1);
  const int64_t T = st.range(0);
  Mamba2Bench m(T);
  StatePool pool(1, mamba2_state_elems(m.d));
  const std::vector<int64_t> offsets{0, T};
  for (auto _ : st) {
    mamba2_ssd_prefill(m.d, m.params(), m.inputs(), offsets, pool.ptrs, m.y.data());
    benchmark::ClobberMemory();
  }
  const double it = double(st.iterations());
  st.SetBytesProcessed(int64_t(it * (T * m.io_bytes_per_token() + 2 * m.state_bytes())));
  st.counters["flops"] = benchmark::Counter(it * mamba2_prefill_flops(m.d, T), benchmark::Counter::kIsRate);
  st.counters["tokens"] = benchmark::Counter(it * T, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Mamba2_Prefill)->ArgsProduct({{512, 4096}, {1, 2}})->ArgNames({"T", "threads"})->UseRealTime();

// The alternative the chunked form must beat: the decode recurrence over the prompt, token by token.
void BM_Mamba2_PrefillAsSteps(benchmark::State& st) {
  set_threads(st, 1);
  const int64_t T = st.range(0);
  Mamba2Bench m(T);
  StatePool pool(1, mamba2_state_elems(m.d));
  const auto& d = m.d;
  for (auto _ : st) {
    for (int64_t t = 0; t < T; ++t) {
      Mamba2Inputs in{m.x.data() + t * d.H * d.P, m.dt.data() + t * d.H, m.B.data() + t * d.G * d.N,
                      m.C.data() + t * d.G * d.N};
      mamba2_ssd_step(d, m.params(), in, pool.ptrs, m.y.data() + t * d.H * d.P);
    }
    benchmark::ClobberMemory();
  }
  st.counters["tokens"] = benchmark::Counter(double(st.iterations()) * T, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Mamba2_PrefillAsSteps)->ArgsProduct({{512}, {1, 2}})->ArgNames({"T", "threads"})->UseRealTime();

// Linear attention at 16 heads × 128 (GLA-like), chunked prefill, scalar vs vector decay.
void BM_LinearAttn_Prefill(benchmark::State& st) {
  set_threads(st, 2);
  const int64_t T = st.range(0), H = 16, D = 128;
  const auto decay = st.range(1) ? LinearAttnDecay::Vector : LinearAttnDecay::Scalar;
  auto q = randn(T * H * D, 0.1f, 1), k = randn(T * H * D, 0.1f, 2), v = randn(T * H * D, 1.0f, 3);
  auto g = randn(T * H * (decay == LinearAttnDecay::Vector ? D : 1), 0.01f, 4);
  for (auto& x : g) x = -0.05f - std::abs(x);
  AlignedVector<float> o(T * H * D);
  LinearAttnArgs a;
  a.H = a.HV = H;
  a.K = a.V = D;
  a.q = q.data();
  a.k = k.data();
  a.v = v.data();
  a.decay = decay;
  a.g = g.data();
  StatePool pool(1, linear_attn_state_elems(a));
  const std::vector<int64_t> offsets{0, T};
  for (auto _ : st) {
    linear_attn_prefill(a, offsets, pool.ptrs, {}, o.data());
    benchmark::ClobberMemory();
  }
  st.counters["tokens"] = benchmark::Counter(double(st.iterations()) * T, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_LinearAttn_Prefill)
    ->ArgsProduct({{4096}, {0, 1}, {1, 2}})
    ->ArgNames({"T", "vector", "threads"})
    ->UseRealTime();

// The short conv's decode step (W = 4, SiLU) over C channels for B sequences: Qwen3-Next's GDN conv (C = 4096 at
// its random test shape: q, k and v side by side), one of KDA's three (1024), Mamba2-130m's xBC (1792). Bytes: the
// conv state read and written, x read, y written (the weights stay in cache).
void BM_Conv1d_Step(benchmark::State& st) {
  set_threads(st, 2);
  const int64_t C = st.range(0), B = st.range(1), W = 4;
  const auto w = randn(C * W, 0.5f, 1), bias = randn(C, 0.1f, 2);
  auto x = randn(B * C, 1.0f, 3);
  AlignedVector<float> y(size_t(B * C));
  StatePool pool(B, C * (W - 1));
  for (auto _ : st) {
    conv1d_step(x.data(), 0, w.data(), bias.data(), C, W, pool.ptrs, true, y.data());
    benchmark::ClobberMemory();
  }
  st.SetBytesProcessed(int64_t(st.iterations()) * B * C * 4 * (2 * (W - 1) + 2));
}
BENCHMARK(BM_Conv1d_Step)
    ->ArgsProduct({{1024, 1792, 4096}, {1, 8}, {1, 2}})
    ->ArgNames({"C", "B", "threads"})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace
