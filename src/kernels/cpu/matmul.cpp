#include "kernels/cpu/matmul.h"

#include <algorithm>
#include <vector>

#include "kernels/cpu/gemm_bf16.h"
#include "kernels/cpu/matmul_simd.h"
#include "kernels/cpu/quant/rows16.h"
#include "kernels/cpu/quant/qmatmul.h"
#include "kernels/cpu/quant/qmatmul_q8.h"
#include "linfer/core/error.h"
#include "linfer/core/quant_activations.h"
#include "linfer/core/split_ranges.h"
#include "linfer/core/thread_pool.h"

namespace linfer::kernels {

const int64_t g_prefetch_ahead = cpu_is_amd() ? 1024 : 4096;

namespace {

WeightMatrix weight_matrix(const TensorView& w, const char* op) {
  LINFER_CHECK(w.ndim() == 2, "{}: weight must be 2-D [N, K], got {}", op, shape_str(w.shape()));
  LINFER_CHECK(w.dtype() == DType::F32 || w.dtype() == DType::BF16 || w.dtype() == DType::F16 || is_quantized(w.dtype()),
               "{}: weight dtype {} not supported (f32 / bf16 / f16 / q8_0 / q4_0 / q4_1 / q5_0 / q5_1 / q4_k / "
               "q5_k / q6_k)", op, dtype_name(w.dtype()));
  LINFER_CHECK(w.strides()[1] == 1 && w.strides()[0] >= w.dim(1),
               "{}: weight rows must be contiguous (shape {}, strides {})", op, shape_str(w.shape()),
               shape_str(w.strides()));
  LINFER_CHECK(!is_quantized(w.dtype()) || (w.dim(1) % dtype_block(w.dtype()) == 0 &&
                                             w.strides()[0] % dtype_block(w.dtype()) == 0),
               "{}: a {} weight needs K (here {}) and its row stride (here {}) to be whole blocks of {}", op,
               dtype_name(w.dtype()), w.dim(1), w.strides()[0], dtype_block(w.dtype()));
  return {w.data(), w.dtype(), w.dim(0), w.dim(1), w.strides()[0]};
}

const void* row_ptr(const WeightMatrix& w, int64_t n) {
  return static_cast<const std::byte*>(w.data) + dtype_nbytes(w.dtype, n * w.ld);
}

// Rows of x up to which the SIMD paths stream W through the GEMV rather than the packed GEMM
// (docs/benchmarks.md, Dense kernels: on Zen 2 the GEMV is ahead up to M = 48, even at M = 64; measured
// for avx2 and avx512, taken as is for neon).
constexpr int64_t kGemvMaxRows = 48;

// Portable path: one weight row converted to float32 at a time, dotted with every x row.
void matmul_scalar(const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y) {
  const int64_t N = w.N, K = w.K;
  parallel_for(0, N, [&](int64_t n0, int64_t n1) {
    thread_local std::vector<float> row;  // per thread, reused: decode allocates nothing
    row.resize(static_cast<size_t>(K));
    for (int64_t n = n0; n < n1; ++n) {
      to_f32(w.dtype, row_ptr(w, n), row.data(), size_t(K));
      for (int64_t m = 0; m < M; ++m) {
        const float* xm = x + m * K;
        float acc[4] = {0, 0, 0, 0};  // four partial sums: shorter dependency chains
        int64_t k = 0;
        for (; k + 4 <= K; k += 4)
          for (int j = 0; j < 4; ++j) acc[j] += xm[k + j] * row[k + j];
        for (; k < K; ++k) acc[0] += xm[k] * row[k];
        y[m * N + n] = (acc[0] + acc[1]) + (acc[2] + acc[3]) + (bias ? bias[n] : 0.0f);
      }
    }
  }, 16);
}

// One product for the GEMV, checked.
struct Product {
  const float* x;
  int64_t M;
  WeightMatrix w;
  const float* bias;
  float* y;
};

// Whether the GEMV takes a product of M rows of x: decode and small batches stream W once for every
// row; more rows go to the packed GEMM (block-quantized weights: to quant::matmul's float32 panels). Both
// are Highway code for the path's own vector width.
// Whether a product of M rows of x with weights of type t streams W through the GEMV: decode-sized products on
// the SIMD paths, and block-quantized products of any size on a path with no quantized GEMM (NEON).
bool use_gemv(SimdLevel level, int64_t M, DType t) {
#if LINFER_HWY
  return level != SimdLevel::Scalar && (M <= kGemvMaxRows || (is_quantized(t) && !quant::has_gemm(level)));
#else
  (void)level, (void)M, (void)t;
  return false;
#endif
}

// Weight bytes a task should have at least: below this a second thread costs more to wake than it saves.
constexpr int64_t kMinTaskBytes = int64_t(32) << 10;
constexpr int64_t kUnitBytes = int64_t(16) << 10;  // the finest piece a GEMV thread claims (SplitRanges)
constexpr int64_t kMaxUnits = int64_t(1) << 20;    // so that a unit's cost offset, total × unit / units, fits int64

#if LINFER_HWY
// What the products of one gemv_many call read besides x, made before the parallel region into buffers
// of the calling thread: block-quantized weights' group sums of x (the formats that read them), or x
// rounded to int8 where QuantActivations::Q8 is set and the format has an int8 kernel (x86-64), or, for BF16
// weights, x rounded to bf16 where the setting asks for it and the CPU has the kernel (gemm_bf16.h).
class QuantInputs {
 public:
  void prepare(SimdLevel level, std::span<const Product> ps) {
    const QuantActivations a = quant_activations();
    const bool q8 = rounds_decode_to_int8(a);
    const GemvBf16Fn bf16_dot = rounds_to_bf16(a) ? gemv_bf16_dot_for(level) : nullptr;
    at_.resize(ps.size() + 1);
    bf16_at_.resize(ps.size() + 1);
    q8_.resize(ps.size());
    bf16_.resize(ps.size());
    at_[0] = bf16_at_[0] = 0;
    for (size_t j = 0; j < ps.size(); ++j) {
      const Product& p = ps[j];
      const bool quantized = is_quantized(p.w.dtype);
      q8_[j] = quantized && q8 ? quant::q8_kernel_for(level, p.w.dtype) : nullptr;
      bf16_[j] = p.w.dtype == DType::BF16 ? bf16_dot : nullptr;
      const bool reads = q8_[j] || (quantized && quant::reads_group_sums(level, p.w.dtype));
      at_[j + 1] = at_[j] + (reads ? p.M * quant::q8_ld(p.w.K) : 0);  // rows of x with room for Q8Acts::ld
      bf16_at_[j + 1] = bf16_at_[j] + (bf16_[j] ? p.M * bf16_x_ld(p.w.K) : 0);
    }
    xb_.resize(size_t(bf16_at_[ps.size()]));
#if LINFER_X86
    for (size_t j = 0; j < ps.size(); ++j)
      if (bf16_[j]) round_rows_bf16(ps[j].x, ps[j].M, ps[j].w.K, xb_.data() + bf16_at_[j]);
#endif
    const size_t n = size_t(at_[ps.size()]);
    gs_.resize(n / 32 + 1);
    if (q8) q_.resize(n + 1), d_.resize(n / 32 + 1), off_.resize(n / 4 + 1), gs16_.resize(n / 16 + 1);
    for (size_t j = 0; j < ps.size(); ++j) {
      const Product& p = ps[j];
      if (at_[j + 1] == at_[j]) continue;
#if LINFER_X86
      if (q8_[j]) {
        const int64_t e = at_[j];
        quant::quantize_q8(p.x, p.M, p.w.K, q_.data() + e, d_.data() + e / 32, off_.data() + e / 4,
                           gs16_.data() + e / 16, gs_.data() + e / 32);
        continue;
      }
#endif
      quant::group_sums(p.x, p.M, p.w.K, gs_.data() + at_[j] / 32);
    }
  }

  // Rows [n0, n1) of product j.
  void rows(SimdLevel level, const Product& p, size_t j, int64_t n0, int64_t n1) const {
    const int64_t e = at_[j];
    if (bf16_[j])
      bf16_[j](xb_.data() + bf16_at_[j], p.M, p.w, p.bias, p.y, n0, n1);
    else if (q8_[j])
      q8_[j](q8_acts(j, p.w.K), p.M, p.w, p.bias, p.y, n0, n1);
    else if (is_quantized(p.w.dtype))
      quant::matmul_rows(level, p.x, gs_.data() + e / 32, p.M, p.w, p.bias, p.y, n0, n1);
    else
      hwy_paths::gemv_rows(level, p.x, p.M, p.w, p.bias, p.y, n0, n1);
  }

 private:
  // The rounded x of product j.
  quant::Q8Acts q8_acts(size_t j, int64_t K) const {
    const int64_t e = at_[j];
    return {quant::q8_ld(K), q_.data() + e, d_.data() + e / 32, off_.data() + e / 4, gs16_.data() + e / 16,
            gs_.data() + e / 32};
  }

  std::vector<int64_t> at_;              // [products + 1] where product j's inputs start, in elements of x
  std::vector<int64_t> bf16_at_;         // [products + 1] where product j's bf16 x starts in xb_
  std::vector<quant::Q8RowsFn> q8_;      // [products] the int8 kernel, or null
  std::vector<GemvBf16Fn> bf16_;         // [products] the bf16 GEMV, or null
  std::vector<uint16_t> xb_;             // x rounded to bf16, rows of bf16_x_ld(K)
  std::vector<float> gs_;                // group sums (or the rounded x's: Q8Acts::gs), at at_ / 32
  std::vector<int8_t> q_;                // Q8Acts::q at at_
  std::vector<float> d_;                 // Q8Acts::d at at_ / 32
  std::vector<int32_t> off_;             // Q8Acts::off_q4_0 at at_ / 4
  std::vector<float> gs16_;              // Q8Acts::gs16 at at_ / 16
};
#endif

// Every product's weight rows, split over the pool in one parallel call. The rows of all products form
// one sequence of cost (weight bytes × passes over them: one pass per 4 rows of x), cut into units of
// kUnitBytes at multiples of 4 rows (interleaved weights, quant/rows16.h: 16), so a 1-row gate and a
// 32000-row head share the threads evenly and the pool wakes once for the lot. Each thread streams a
// contiguous share of the units and, done early, splits another's remainder (core/split_ranges.h).
// Block-quantized weights take the quantized GEMV (quant/qmatmul.h).
void gemv_many(SimdLevel level, std::span<const Product> ps) {
#if LINFER_HWY
  thread_local std::vector<int64_t> start_buf;  // per thread, reused
  thread_local QuantInputs inputs_buf;
  thread_local SplitRanges ranges_buf;
  std::vector<int64_t>& start = start_buf;  // the caller's, also in the workers: cost before product j
  QuantInputs& inputs = inputs_buf;
  inputs.prepare(level, ps);
  start.resize(ps.size() + 1);
  auto row_cost = [](const Product& p) {
    return std::max<int64_t>(1, int64_t(dtype_nbytes(p.w.dtype, p.w.K)) * ((p.M + 3) / 4));
  };
  start[0] = 0;
  for (size_t j = 0; j < ps.size(); ++j) start[j + 1] = start[j] + ps[j].w.N * row_cost(ps[j]);
  const int64_t total = start[ps.size()];
  if (total == 0) return;
  // First row of product j at cost offset c (a multiple of 4 or 16, within [0, N]); the same function
  // gives one piece's end and the next one's start, so the pieces cover every row exactly once.
  auto row_at = [&](size_t j, int64_t c) {
    const int64_t cost = row_cost(ps[j]), r = (c - start[j] + cost - 1) / cost;
    const int64_t step = is_rows16(ps[j].w.dtype) ? quant::kRows16 : 4;
    return std::clamp<int64_t>((r + step - 1) / step * step, 0, ps[j].w.N);
  };
  auto cost_range = [&](int64_t c0, int64_t c1) {
    for (size_t j = 0; j < ps.size(); ++j) {
      if (start[j + 1] <= c0 || start[j] >= c1) continue;
      const int64_t n0 = row_at(j, c0), n1 = row_at(j, c1);
      if (n0 < n1) inputs.rows(level, ps[j], j, n0, n1);
    }
  };
  const int parts = int(std::min<int64_t>(num_threads(), total / kMinTaskBytes));
  if (parts <= 1) return cost_range(0, total);
  const int64_t units = std::clamp<int64_t>(total / kUnitBytes, parts, kMaxUnits);
  SplitRanges& ranges = ranges_buf;
  ranges.reset(units, parts);
  parallel_for(0, parts, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p)
      ranges.run(int(p), [&](int64_t u0, int64_t u1) { cost_range(total * u0 / units, total * u1 / units); });
  });
#else
  (void)level, (void)ps;
#endif
}

}  // namespace

void matmul(const float* x, int64_t M, const TensorView& w, const float* bias, float* y, SimdLevel level) {
  const WeightMatrix wm = weight_matrix(w, "matmul");
  if (M <= 0 || wm.N == 0) return;
  if (use_gemv(level, M, wm.dtype)) {
    const Product p{x, M, wm, bias, y};
    return gemv_many(level, {&p, 1});
  }
  if (is_quantized(wm.dtype)) return quant::matmul(x, M, wm, bias, y, level);  // kernels/cpu/quant
  if (wm.dtype == DType::BF16 && rounds_to_bf16(quant_activations()))
    if (const GemmBf16Fn bf16_dot = prefill_gemm_bf16_for(level)) return bf16_dot(x, M, wm, bias, y);
#if LINFER_HWY
  if (level != SimdLevel::Scalar) return hwy_paths::gemm(level, x, M, wm, bias, y);
#endif
  matmul_scalar(x, M, wm, bias, y);
}

ActivationRounding activation_rounding(QuantActivations a, std::span<const DType> weight_types, SimdLevel level) {
  ActivationRounding r;
  for (DType t : weight_types) {
    r.bf16_prefill |= (t == DType::BF16 || is_quantized(t)) && rounds_to_bf16(a) && prefill_gemm_bf16_for(level);
    r.bf16_decode |= t == DType::BF16 && rounds_to_bf16(a) && gemv_bf16_dot_for(level);
    r.int8_decode |= rounds_decode_to_int8(a) && quant::q8_kernel_for(level, t) != nullptr;
  }
  return r;
}

void matmul_many(std::span<const MatmulArgs> products, SimdLevel level) {
  thread_local std::vector<Product> streamed;  // per thread, reused: decode allocates nothing
  streamed.clear();
  for (const MatmulArgs& a : products) {
    const WeightMatrix wm = weight_matrix(*a.w, "matmul");
    if (a.M <= 0 || wm.N == 0) continue;
    if (use_gemv(level, a.M, wm.dtype)) streamed.push_back({a.x, a.M, wm, a.bias, a.y});
    else matmul(a.x, a.M, *a.w, a.bias, a.y, level);
  }
  gemv_many(level, streamed);
}

void embedding(const TensorView& table, std::span<const int32_t> ids, float* out, SimdLevel level) {
  const WeightMatrix wm = weight_matrix(table, "embedding");
  std::vector<uint8_t> tmp(quant::quant_row_bytes(wm.dtype, wm.K));
  for (size_t i = 0; i < ids.size(); ++i) {
    LINFER_CHECK(ids[i] >= 0 && ids[i] < wm.N, "embedding: token id {} outside the vocabulary [0, {})", ids[i],
                 wm.N);
    const quant::QuantRow row = quant::quant_row(wm, ids[i], 0, wm.K, tmp.data());
    to_f32(row.t, row.p, out + int64_t(i) * wm.K, size_t(wm.K));
  }
}

}  // namespace linfer::kernels
