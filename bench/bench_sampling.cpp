// Per-token cost of choosing the next token (runtime/sampling.h) from a row of 151,936 logits (the
// Qwen vocabulary), for each path of the sampler: greedy, plain temperature (no cut), top-k 40,
// top-p 0.95, and both. Logits are Gaussian with sd 3 (a peaked but not degenerate row) and stay the
// same across iterations, so the time is the sampler's alone. One thread; Time is per token.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "runtime/sampling.h"

using namespace linfer;

namespace {

constexpr int64_t kVocab = 151936;

const std::vector<float>& logits() {
  static const std::vector<float> row = [] {
    std::mt19937 rng(1);
    std::normal_distribution<float> dist(0.0f, 3.0f);
    std::vector<float> v(kVocab);
    for (auto& x : v) x = dist(rng);
    return v;
  }();
  return row;
}

void BM_Sample(benchmark::State& st, SamplingParams p) {
  Sampler s(p);
  const auto& row = logits();
  for (auto _ : st) benchmark::DoNotOptimize(s.sample(row.data(), kVocab));
  st.SetItemsProcessed(int64_t(st.iterations()));
}

}  // namespace

BENCHMARK_CAPTURE(BM_Sample, greedy, SamplingParams{.greedy = true})->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Sample, temperature_only, SamplingParams{.temperature = 0.8f})->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Sample, top_k_40, SamplingParams{.temperature = 0.8f, .top_k = 40})
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Sample, top_p_095, SamplingParams{.temperature = 0.8f, .top_p = 0.95f})
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Sample, top_k_40_top_p_095, SamplingParams{.temperature = 0.8f, .top_k = 40, .top_p = 0.95f})
    ->Unit(benchmark::kMicrosecond);
