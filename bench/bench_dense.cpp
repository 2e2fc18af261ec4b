// Dense kernels (CPU): bf16 GEMV (decode projections), bf16 / f32 GEMM (prefill projections),
// attention decode at 4K context. Every kernel runs at the detected SIMD level and capped to
// scalar (arg `simd`: 0 scalar, 1 best), on LINFER_BENCH_THREADS pool threads (default 1).
// Rates are per CPU-second of the whole process (MeasureProcessCPUTime): on a shared, loaded
// machine that is what a core delivers while it runs this code; the Time column is wall clock.
//
// Counting:
//   GEMV  y[N] = W[N, K]·x: bytes 2·N·K (bf16 W streamed once; x and y are noise), flops 2·N·K.
//         Bandwidth-bound: compare bytes_per_second with BM_Floor_Read (parallel read of a buffer
//         well past the L3). Weights rotate over copies totalling > 4 × L3 so W comes from DRAM.
//   GEMM  y[M, N] = x[M, K]·Wᵀ: flops 2·M·N·K. Compute-bound for M >= 64: compare with FMA peak
//         (bench_delta's BM_Floor_FmaPeak: 2 cores × 2 FMA pipes × 8 lanes × 2 flops × clock).
//   attention decode, B = 1, Hq = 32, Hkv = 8, D = Dv = 128, L = 4096 cached rows (float32):
//         bytes 4·L·Hkv·(D + Dv) = 32 MiB per token; flops 2·L·Hq·(D + Dv).
#include <benchmark/benchmark.h>

#include <immintrin.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "bench_random.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/gemm_bf16.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/matmul_simd.h"
#include "kernels/cpu/quant/rows16.h"
#include "linfer/core/aligned.h"
#include "linfer/core/cpu_features.h"
#include "linfer/core/dtype.h"
#include "linfer/core/quant_activations.h"
#include "linfer/core/thread_pool.h"
#include "linfer/core/weight_arena.h"

using namespace linfer;
using namespace linfer::kernels;

namespace {

SimdLevel level_arg(const benchmark::State& st, int i) { return st.range(i) ? simd_level() : SimdLevel::Scalar; }

void use_bench_threads() {
  const char* env = std::getenv("LINFER_BENCH_THREADS");
  const int n = env ? std::atoi(env) : 1;
  if (num_threads() != n) set_num_threads(n);
}

// ---- floor: read bandwidth ------------------------------------------------------------------------

// The sum of n floats at p (n a multiple of 32), with the GEMV's software prefetch (prefetch_ahead) if asked.
__attribute__((target("avx2"))) float sum_range(const float* p, int64_t n, bool prefetch = false) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
  for (int64_t i = 0; i + 32 <= n; i += 32) {
    if (prefetch) prefetch_ahead(p + i, 128);
    a0 = _mm256_add_ps(a0, _mm256_load_ps(p + i));
    a1 = _mm256_add_ps(a1, _mm256_load_ps(p + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_load_ps(p + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_load_ps(p + i + 24));
  }
  alignas(32) float out[8];
  _mm256_store_ps(out, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  return out[0];
}

// Every iteration reads the n floats at a once, split over the pool in blocks of 4096 floats.
void read_floor(benchmark::State& st, const float* a, int64_t n, bool prefetch) {
  for (auto _ : st) {
    parallel_for(0, n / 4096, [&](int64_t b0, int64_t b1) {
      benchmark::DoNotOptimize(sum_range(a + b0 * 4096, (b1 - b0) * 4096, prefetch));
    });
  }
  st.SetBytesProcessed(int64_t(st.iterations()) * n * int64_t(sizeof(float)));
}

void BM_Floor_Read(benchmark::State& st) {
  use_bench_threads();
  const int64_t n = int64_t(64) << 20;  // 256 MiB of floats
  AlignedVector<float> a(size_t(n), 1.0f);
  read_floor(st, a.data(), n, false);
}
BENCHMARK(BM_Floor_Read)->MeasureProcessCPUTime()->Unit(benchmark::kMillisecond);

// The same read from where decode finds the weights: 1 GiB copied into a WeightArena (2 MiB pages where the kernel
// gives them), with the GEMV's software prefetch, wall clock: the rate a batch-1 decode can stream weights at that
// come from DRAM (what fits in the L3 comes faster).
void BM_Floor_ReadArena(benchmark::State& st) {
  use_bench_threads();
  const int64_t n = int64_t(256) << 20;  // 1 GiB of floats
  AlignedVector<float> src(size_t(n), 1.0f);
  WeightArena arena;
  const std::shared_ptr<const std::byte> copy = arena.copy(src.data(), size_t(n) * sizeof(float));
  read_floor(st, copy ? reinterpret_cast<const float*>(copy.get()) : src.data(), n, true);
  st.SetLabel(copy ? "arena" : "arena refused: plain buffer");
}
BENCHMARK(BM_Floor_ReadArena)->UseRealTime()->Unit(benchmark::kMillisecond);

// The read floor of a batch-1 MoE step: each iteration reads 8 blocks of `kib` KiB at random places of a 2 GiB
// buffer (4 experts' gate and up of a 1024-wide model: 1 MiB each), split over the pool in one parallel call as
// gemv_many splits its products, with the GEMV's software prefetch. Wall-clock rate (UseRealTime): compare with
// what a decode token's routed experts stream (linfer bench --profile).
void BM_Floor_ReadBlocks(benchmark::State& st) {
  use_bench_threads();
  const int64_t block = st.range(0) << 10, n_blocks = (int64_t(2) << 30) / block, per_call = 8;
  AlignedVector<float> a(size_t(n_blocks * block / 4), 1.0f);
  std::mt19937_64 rng(5);
  int64_t picked[per_call];
  for (auto _ : st) {
    for (int64_t& b : picked) b = int64_t(rng() % uint64_t(n_blocks));
    parallel_for(0, per_call, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        benchmark::DoNotOptimize(sum_range(a.data() + picked[b] * block / 4, block / 4, true));
      }
    });
  }
  st.SetBytesProcessed(int64_t(st.iterations()) * per_call * block);
}
BENCHMARK(BM_Floor_ReadBlocks)->ArgName("kib")->Arg(256)->Arg(1024)->Arg(8192)->UseRealTime()->Unit(benchmark::kMicrosecond);

// ---- GEMV / GEMM -------------------------------------------------------------------------------

// Random weights where the engine keeps them: copies in a WeightArena (2 MiB pages where the kernel gives them;
// a copy the arena refuses, memory being short, goes to an ordinary buffer of its own, so that the benchmarks
// still rotate through distinct copies).
struct Weights {
  WeightArena arena;
  std::vector<std::shared_ptr<const std::byte>> copies;  // N × K values of dtype each
  DType dtype;
  int64_t N, K;
  Weights(DType dt, int64_t N_, int64_t K_, int n_copies) : dtype(dt), N(N_), K(K_) {
    const auto w = randn(size_t(N * K), 0.02f, 7);
    const size_t bytes = dtype_nbytes(dt, N * K);
    AlignedVector<std::byte> stored(bytes);
    if (dt == DType::F32) std::memcpy(stored.data(), w.data(), bytes);
    else from_f32(dt, w.data(), stored.data(), size_t(N * K));
    for (int c = 0; c < n_copies; ++c) {
      std::shared_ptr<const std::byte> copy = arena.copy(stored.data(), bytes);
      if (!copy) {
        auto own = std::make_shared<AlignedVector<std::byte>>(stored);
        copy = std::shared_ptr<const std::byte>(own, own->data());
      }
      copies.push_back(std::move(copy));
    }
  }
  TensorView view(int i) const {
    return TensorView(const_cast<std::byte*>(copies[size_t(i) % copies.size()].get()), dtype, {N, K});
  }
};

// args: N, K, simd
void BM_Gemv_bf16(benchmark::State& st) {
  use_bench_threads();
  const int64_t N = st.range(0), K = st.range(1);
  const int copies = int(std::max<int64_t>(2, (int64_t(160) << 20) / (2 * N * K)));  // > 4 × L3
  Weights w(DType::BF16, N, K, copies);
  auto x = randn(size_t(K), 1.0f, 1);
  AlignedVector<float> y(static_cast<size_t>(N));
  const SimdLevel level = level_arg(st, 2);
  int i = 0;
  for (auto _ : st) matmul(x.data(), 1, w.view(i++), nullptr, y.data(), level);
  st.SetBytesProcessed(int64_t(st.iterations()) * 2 * N * K);
  st.counters["flops"] = benchmark::Counter(double(st.iterations()) * 2 * N * K, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Gemv_bf16)
    ->ArgNames({"N", "K", "simd"})
    ->Args({4096, 4096, 1})
    ->Args({2048, 8192, 1})
    ->Args({8192, 2048, 1})
    ->Args({4096, 1024, 1})  // a 1024-wide model's projections (the random kimi / qwen3next shapes)
    ->Args({3328, 768, 1})   // mamba2 130M's in_proj
    ->Args({4096, 4096, 0})
    ->MeasureProcessCPUTime()
    ->Unit(benchmark::kMicrosecond);

// Block-quantized weights (kernels/cpu/quant), M rows of x: random blocks (their fp16 scales set to 0.01),
// several copies so W comes from DRAM. bytes_per_second counts the weight's bytes. The types ending in x16: the
// blocks repacked as the CPU backend does on CPUs with AVX-512 VNNI (quant/rows16.h; skipped elsewhere).
// args: N, K, type (index into kQuantTypes), simd, acts (0: float32 activations, 1: int8, QuantActivations::Q8), M;
// 4096 x 4096 for every type at M = 1, Q4_0 / Q4_K / Q8_0 / Q6_K and their interleaved forms at M = 1, 4, 8, and
// at a MoE expert's shapes (512 / 1024 rows of 512 / 1024) with int8 x.
constexpr DType kQuantTypes[] = {DType::Q8_0, DType::Q4_0, DType::Q5_0, DType::Q4_K,
                                 DType::Q5_K, DType::Q6_K, DType::Q4_0x16, DType::Q4_Kx16, DType::Q8_0x16,
                                 DType::Q6_Kx16};

void BM_Gemv_quant(benchmark::State& st) {
  use_bench_threads();
  const int64_t N = st.range(0), K = st.range(1);
  const DType t = kQuantTypes[st.range(2)];
  const bool repack = is_rows16(t);
  if (repack && !quant::rows16_runs(level_arg(st, 3))) return st.SkipWithError("the interleaved types need AVX-512 VNNI");
  const DType stored = repack ? quant::rows16_stored(t) : t;  // what the random blocks are made as
  const size_t bytes = repack ? size_t(quant::rows16_bytes(t, N, K)) : dtype_nbytes(t, N * K);
  const size_t bb = dtype_block_bytes(stored);
  const int copies = int(std::max<size_t>(2, (size_t(160) << 20) / bytes));
  std::mt19937 rng(3);
  std::vector<AlignedVector<uint8_t>> w(size_t(copies), AlignedVector<uint8_t>{});
  for (auto& c : w) c.resize(bytes);
  const uint16_t scale = f32_to_f16(0.01f);
  for (auto& c : w) {
    for (auto& v : c) v = uint8_t(rng());
    for (size_t b = 0; b + bb <= bytes; b += bb)
      for (size_t off : {stored == DType::Q6_K ? size_t(208) : size_t(0), stored == DType::Q4_K || stored == DType::Q5_K ? size_t(2) : size_t(0)})
        std::memcpy(c.data() + b + off, &scale, 2);
    if (repack) {  // the blocks just made, interleaved
      const std::vector<uint8_t> src(c.begin(), c.begin() + std::ptrdiff_t(dtype_nbytes(stored, N * K)));
      quant::repack_rows16(t, src.data(), N, K, int64_t(dtype_nbytes(stored, K)), c.data());
    }
  }
  st.SetLabel(std::string(dtype_name(t)));
  const int64_t M = st.range(5);
  auto x = randn(size_t(M * K), 1.0f, 1);
  AlignedVector<float> y(static_cast<size_t>(M * N));
  const SimdLevel level = level_arg(st, 3);
  set_quant_activations(st.range(4) ? QuantActivations::Q8 : QuantActivations::F32);
  int i = 0;
  for (auto _ : st)
    matmul(x.data(), M, TensorView(w[size_t(i++ % copies)].data(), t, {N, K}), nullptr, y.data(), level);
  set_quant_activations(QuantActivations::F32);
  st.SetBytesProcessed(int64_t(st.iterations()) * int64_t(bytes));
}
BENCHMARK(BM_Gemv_quant)
    ->ArgNames({"N", "K", "type", "simd", "acts", "M"})
    ->ArgsProduct({{4096}, {4096}, {2, 4}, {1}, {0, 1}, {1}})
    ->ArgsProduct({{4096}, {4096}, {1, 6, 3, 7, 0, 8, 5, 9}, {1}, {0, 1}, {1, 4, 8}})
    ->ArgsProduct({{512, 1024}, {512, 1024}, {1, 6, 0, 8, 5, 9}, {1}, {1}, {1}})
    ->MeasureProcessCPUTime()
    ->Unit(benchmark::kMicrosecond);

// Small batches (decode of B sequences): the Highway GEMV (matmul_hwy.cpp, W streamed once for all
// rows) vs the packed GEMM (gemm_hwy.cpp) at the detected path, W from DRAM as above. matmul()
// switches from the first to the second above kGemvMaxRows (matmul.cpp) — where this crosses. gemv 2: the
// GEMV with x rounded to bf16 (gemv_bf16_avx512bf16.cpp, --activations bf16; skipped without AVX-512 BF16).
// args: M, N, K, gemv (0 packed GEMM, 1 GEMV, 2 bf16 GEMV)
void BM_GemvVsGemm_bf16(benchmark::State& st) {
  use_bench_threads();
  const int64_t M = st.range(0), N = st.range(1), K = st.range(2);
  const int copies = int(std::max<int64_t>(2, (int64_t(160) << 20) / (2 * N * K)));
  Weights w(DType::BF16, N, K, copies);
  auto x = randn(size_t(M * K), 1.0f, 1);
  AlignedVector<float> y(static_cast<size_t>(M * N));
  const SimdLevel level = simd_level();
  const GemvBf16Fn bf16_dot = gemv_bf16_dot_for(level);
  if (st.range(3) == 2 && !bf16_dot) return st.SkipWithError("needs the avx512 path with AVX-512 BF16");
  std::vector<uint16_t> xb(size_t(M * bf16_x_ld(K)));
  int i = 0;
  for (auto _ : st) {
    const WeightMatrix wm{w.view(i++).data(), DType::BF16, N, K, K};
    if (st.range(3) == 2) {
#if LINFER_X86
      round_rows_bf16(x.data(), M, K, xb.data());
#endif
      parallel_for(0, (N + 15) / 16, [&](int64_t b0, int64_t b1) {
        bf16_dot(xb.data(), M, wm, nullptr, y.data(), 16 * b0, std::min(N, 16 * b1));
      });
    } else if (st.range(3)) {
      parallel_for(0, (N + 15) / 16, [&](int64_t b0, int64_t b1) {
        hwy_paths::gemv_rows(level, x.data(), M, wm, nullptr, y.data(), 16 * b0, std::min(N, 16 * b1));
      });
    }
    else hwy_paths::gemm(level, x.data(), M, wm, nullptr, y.data());
  }
  st.SetBytesProcessed(int64_t(st.iterations()) * 2 * N * K);
  st.counters["flops"] = benchmark::Counter(double(st.iterations()) * 2 * M * N * K, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_GemvVsGemm_bf16)
    ->ArgNames({"M", "N", "K", "gemv"})
    ->ArgsProduct({{1, 8, 32, 48, 64}, {4096}, {4096}, {0, 1}})
    ->ArgsProduct({{1, 8, 32, 48}, {4096}, {4096}, {2}})
    ->ArgsProduct({{2, 4, 8}, {4096}, {1024}, {1, 2}})  // batched decode of a 1024-wide model
    ->MeasureProcessCPUTime()
    ->Unit(benchmark::kMicrosecond);

// args: M, N, K, simd; dtype by template
template <DType T>
void BM_Gemm(benchmark::State& st) {
  use_bench_threads();
  const int64_t M = st.range(0), N = st.range(1), K = st.range(2);
  Weights w(T, N, K, 1);
  auto x = randn(size_t(M * K), 1.0f, 1);
  AlignedVector<float> y(size_t(M * N));
  const SimdLevel level = level_arg(st, 3);
  for (auto _ : st) matmul(x.data(), M, w.view(0), nullptr, y.data(), level);
  st.counters["flops"] = benchmark::Counter(double(st.iterations()) * 2 * M * N * K, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Gemm<DType::BF16>)
    ->Name("BM_Gemm_bf16")
    ->ArgNames({"M", "N", "K", "simd"})
    ->Args({64, 4096, 4096, 1})
    ->Args({512, 2048, 2048, 1})
    ->Args({64, 2048, 2048, 0})
    ->MeasureProcessCPUTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Gemm<DType::F32>)
    ->Name("BM_Gemm_f32")
    ->ArgNames({"M", "N", "K", "simd"})
    ->Args({64, 4096, 4096, 1})
    ->Args({512, 2048, 2048, 1})
    ->MeasureProcessCPUTime()
    ->Unit(benchmark::kMillisecond);

// ---- attention decode ----------------------------------------------------------------------------

// args: L, simd
void BM_AttentionDecode(benchmark::State& st) {
  use_bench_threads();
  const int64_t L = st.range(0), Hq = 32, Hkv = 8, D = 128;
  auto k = randn(size_t(L * Hkv * D), 1.0f, 2), v = randn(size_t(L * Hkv * D), 1.0f, 3);
  auto q = randn(size_t(Hq * D), 1.0f, 4);
  AlignedVector<float> o(size_t(Hq * D));
  const KvCache kv{k.data(), v.data(), L};
  const AttentionDims d{Hq, Hkv, D, D, 1.0f / 11.3137f};
  const SimdLevel level = level_arg(st, 1);
  for (auto _ : st) attention_decode(q.data(), d, {&kv, 1}, o.data(), level);
  st.SetBytesProcessed(int64_t(st.iterations()) * 4 * L * Hkv * 2 * D);
  st.counters["flops"] = benchmark::Counter(double(st.iterations()) * 2 * L * Hq * 2 * D, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_AttentionDecode)->ArgNames({"L", "simd"})->Args({4096, 1})->Args({4096, 0})->MeasureProcessCPUTime()->Unit(benchmark::kMicrosecond);

// Elementwise activations over n floats in L1 (a MoE step's SwiGLU, a KDA layer's decay gate): fn 0 SiLU,
// 1 softplus; rate in floats per CPU-second.
void BM_Activation(benchmark::State& st) {
  const int64_t n = st.range(0);
  const auto x = randn(size_t(n), 4.0f, 9);
  AlignedVector<float> y(static_cast<size_t>(n));
  const SimdLevel level = level_arg(st, 2);
  for (auto _ : st) {
    if (st.range(1) == 0) silu(x.data(), y.data(), n, level);
    else softplus(x.data(), y.data(), n, level);
    benchmark::DoNotOptimize(y.data());
  }
  st.counters["floats"] = benchmark::Counter(double(st.iterations()) * double(n), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Activation)
    ->ArgNames({"n", "fn", "simd"})
    ->ArgsProduct({{4096}, {0, 1}, {0, 1}})
    ->MeasureProcessCPUTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace
