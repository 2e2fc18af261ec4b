#include "kernels/cuda/dense.h"

#include <cuda_fp16.h>

#include <algorithm>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/decode_common.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/mma.cuh"

namespace linfer::kernels::cuda {

namespace {

using detail::sigmoid;
using detail::silu;
using detail::softplus;
using detail::warp_sum;

__device__ __forceinline__ float widen1(float x) { return x; }
__device__ __forceinline__ float widen1(uint16_t bf16) { return __uint_as_float(uint32_t(bf16) << 16); }
__device__ __forceinline__ float widen1(__half h) { return __half2float(h); }

// ---- GEMV: one warp per output column n, all M rows of x at once ----
constexpr int kWarps = 8;  // columns per block

// 8 consecutive weights starting at w (16-byte aligned for 2-byte types, 32 for f32) as floats.
__device__ __forceinline__ void load8(const uint16_t* w, float* out) {
  const uint4 v = *reinterpret_cast<const uint4*>(w);
  const uint32_t u[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) out[2 * i] = __uint_as_float(u[i] << 16), out[2 * i + 1] = __uint_as_float(u[i] & 0xffff0000u);
}
__device__ __forceinline__ void load8(const __half* w, float* out) {
  const uint4 v = *reinterpret_cast<const uint4*>(w);
  const __half2* h = reinterpret_cast<const __half2*>(&v);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = __half22float2(h[i]);
    out[2 * i] = f.x, out[2 * i + 1] = f.y;
  }
}
__device__ __forceinline__ void load8(const float* w, float* out) {
  const float4 a = *reinterpret_cast<const float4*>(w), b = *reinterpret_cast<const float4*>(w + 4);
  out[0] = a.x, out[1] = a.y, out[2] = a.z, out[3] = a.w, out[4] = b.x, out[5] = b.y, out[6] = b.z, out[7] = b.w;
}

// The rows of x a GEMV reads: row m at x + m · ld (Strided), or at x + (rows[m] / every) · ld (Listed: the
// routed experts' rows of one expert, rows in shared memory).
struct Strided {
  const float* x;
  int64_t ld;
  __device__ const float* operator()(int m) const { return x + m * ld; }
};
struct Listed {
  const float* x;
  int64_t ld, every;
  const int* rows;
  __device__ const float* operator()(int m) const { return x + rows[m] / every * ld; }
};

// acc[m] += Σ_k wr[k] · x_m[k] over lane's share of k, for the M <= kGemvMaxRows rows x_m = xr(m). Each row's
// sum is the same sequence of operations whatever M and the other rows are. VEC: K % 8 == 0 and every row of
// w and x 16-byte aligned: each lane takes 8 consecutive k per step.
template <class WT, bool VEC, class XR>
__device__ __forceinline__ void dot_rows(XR xr, int M, const WT* wr, int64_t K, int lane,
                                         float (&acc)[kGemvMaxRows]) {
  if constexpr (VEC) {
    for (int64_t k = int64_t(lane) * 8; k < K; k += 32 * 8) {
      float wv[8];
      load8(wr + k, wv);
#pragma unroll
      for (int m = 0; m < kGemvMaxRows; ++m) {
        if (m >= M) break;
        const float* x = xr(m);
        const float4 a = *reinterpret_cast<const float4*>(x + k);
        const float4 b = *reinterpret_cast<const float4*>(x + k + 4);
        acc[m] += wv[0] * a.x + wv[1] * a.y + wv[2] * a.z + wv[3] * a.w + wv[4] * b.x + wv[5] * b.y + wv[6] * b.z +
                  wv[7] * b.w;
      }
    }
  } else {
    for (int64_t k = lane; k < K; k += 32) {
      const float wv = widen1(wr[k]);
#pragma unroll
      for (int m = 0; m < kGemvMaxRows; ++m) {
        if (m >= M) break;
        acc[m] += wv * xr(m)[k];
      }
    }
  }
}

template <class WT, bool VEC>
__global__ void gemv_kernel(const float* x, int64_t ldx, int M, const WT* w, int64_t N, int64_t K, const float* bias,
                            float* y, int64_t ldy, GemvHeads heads) {
  const int lane = threadIdx.x % 32;
  const int64_t n = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32;
  const WT* wr = w + blockIdx.y * heads.w + min(n, N - 1) * K;
  if (n < N) prefetch_l2(wr, K * int64_t(sizeof(WT)), lane, 32);  // the weight row, while the kernel before runs
  pdl_enter();
  if (n >= N) return;
  x += blockIdx.y * heads.x, y += blockIdx.y * heads.y;
  float acc[kGemvMaxRows] = {};
  dot_rows<WT, VEC>(Strided{x, ldx}, M, wr, K, lane, acc);
#pragma unroll
  for (int m = 0; m < kGemvMaxRows; ++m) {
    if (m >= M) break;
    const float s = warp_sum(acc[m]);
    if (lane == 0) y[m * ldy + n] = s + (bias ? bias[n] : 0.f);
  }
}

// Row j of y (blockIdx.y): x's row j / x_every times expert ids[j]'s weight; one warp per output column n.
template <class WT, bool VEC>
__global__ void expert_gemv_kernel(const float* x, int64_t ldx, int64_t x_every, const ExpertRows* table,
                                   int64_t first_rows, const float* ids, int64_t N, int64_t K, float* y, int64_t ldy) {
  pdl_enter();
  const int lane = threadIdx.x % 32;
  const int64_t n = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32, j = blockIdx.y;
  if (n >= N) return;
  const ExpertRows e = table[int64_t(ids[j])];
  const WT* wr = n < first_rows ? static_cast<const WT*>(e.first) + n * K
                                : static_cast<const WT*>(e.second) + (n - first_rows) * K;
  float acc[kGemvMaxRows] = {};
  dot_rows<WT, VEC>(Strided{x + j / x_every * ldx, ldx}, 1, wr, K, lane, acc);
  const float s = warp_sum(acc[0]);
  if (lane == 0) y[j * ldy + n] = s;
}

// The same products grouped by expert: block (column block, expert e) lists the rows j with ids[j] == e (warp 0,
// in order) and reads each weight row once per kGemvMaxRows of them. Dynamic shared memory: J ints.
template <class WT, bool VEC>
__global__ void expert_gemv_grouped_kernel(const float* x, int64_t ldx, int64_t x_every, const ExpertRows* table,
                                           int64_t first_rows, const float* ids, int J, int64_t N, int64_t K,
                                           float* y, int64_t ldy) {
  pdl_enter();
  extern __shared__ int rows[];
  __shared__ int n_rows;
  const int lane = threadIdx.x % 32, e = blockIdx.y;
  if (threadIdx.x < 32) {
    int count = 0;
    for (int base = 0; base < J; base += 32) {
      const bool mine = base + lane < J && int(ids[base + lane]) == e;
      const unsigned m = __ballot_sync(0xffffffffu, mine);
      if (mine) rows[count + __popc(m & ((1u << lane) - 1u))] = base + lane;
      count += __popc(m);
    }
    if (lane == 0) n_rows = count;
  }
  __syncthreads();
  const int R = n_rows;
  const int64_t n = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32;
  if (R == 0 || n >= N) return;
  const ExpertRows ex = table[e];
  const WT* wr = n < first_rows ? static_cast<const WT*>(ex.first) + n * K
                                : static_cast<const WT*>(ex.second) + (n - first_rows) * K;
  for (int r0 = 0; r0 < R; r0 += kGemvMaxRows) {
    const int M = min(int(kGemvMaxRows), R - r0);
    float acc[kGemvMaxRows] = {};
    dot_rows<WT, VEC>(Listed{x, ldx, x_every, rows + r0}, M, wr, K, lane, acc);
#pragma unroll
    for (int m = 0; m < kGemvMaxRows; ++m) {
      if (m >= M) break;
      const float s = warp_sum(acc[m]);
      if (lane == 0) y[rows[r0 + m] * ldy + n] = s;
    }
  }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }
// gemv_many's products as a kernel argument: product p's columns are blocks [first[p], first[p + 1]).
struct GemvManyArgs {
  GemvProduct p[kGemvManyMax];
  int first[kGemvManyMax + 1];
  bool vec[kGemvManyMax];
  int n, M;
};

template <class WT>
__global__ void gemv_many_kernel(const GemvManyArgs a) {
  int i = 0;
  while (i + 1 < a.n && int(blockIdx.x) >= a.first[i + 1]) ++i;
  const GemvProduct& g = a.p[i];
  const int lane = threadIdx.x % 32;
  const int64_t n = int64_t(blockIdx.x - a.first[i]) * kWarps + threadIdx.x / 32;
  const WT* wr = static_cast<const WT*>(g.w) + min(n, g.N - 1) * g.K;
  if (n < g.N) prefetch_l2(wr, g.K * int64_t(sizeof(WT)), lane, 32);  // as gemv_kernel
  pdl_enter();
  if (n >= g.N) return;
  float acc[kGemvMaxRows] = {};
  if (a.vec[i]) dot_rows<WT, true>(Strided{g.x, g.ldx}, a.M, wr, g.K, lane, acc);
  else dot_rows<WT, false>(Strided{g.x, g.ldx}, a.M, wr, g.K, lane, acc);
#pragma unroll
  for (int m = 0; m < kGemvMaxRows; ++m) {
    if (m >= a.M) break;
    const float s = warp_sum(acc[m]);
    if (lane == 0) g.y[m * g.ldy + n] = s + (g.bias ? g.bias[n] : 0.f);
  }
}


template <class WT>
void launch_gemv(const Rows& x, const WT* w, int64_t N, int64_t K, const float* bias, const Rows& y,
                 cudaStream_t stream, const GemvHeads& h) {
  const bool vec = K % 8 == 0 && x.ld % 4 == 0 && h.x % 4 == 0 && aligned16(x.p) && aligned16(w) &&
                   (h.w * int64_t(sizeof(WT))) % 16 == 0;
  for (int64_t m0 = 0; m0 < x.rows; m0 += kGemvMaxRows) {
    const int M = int(std::min(kGemvMaxRows, x.rows - m0));
    const float* xm = x.p + m0 * x.ld;
    float* ym = y.p + m0 * y.ld;
    const dim3 grid(unsigned((N + kWarps - 1) / kWarps), unsigned(h.n));
    launch_kernel("cuda gemv", {grid, 32 * kWarps, 0, stream}, vec ? gemv_kernel<WT, true> : gemv_kernel<WT, false>, xm,
                  x.ld, M, w, N, K, bias, ym, y.ld, h);
  }
}

template <class WT>
void launch_expert_gemv(const Rows& x, int64_t x_every, const ExpertRows* table, int64_t experts, int64_t first_rows,
                        int64_t N, int64_t K, const float* ids, const Rows& y, cudaStream_t stream) {
  const bool vec = K % 8 == 0 && x.ld % 4 == 0 && aligned16(x.p);  // the table's rows: expert_gemv's promise
  const unsigned col_blocks = unsigned((N + kWarps - 1) / kWarps);
  // Launches of whole x rows, each within the grouping's limit (its row list lives in shared memory).
  const int64_t per_launch = std::max<int64_t>(1, kExpertGroupMaxRows / x_every) * x_every;
  for (int64_t j0 = 0; j0 < y.rows; j0 += per_launch) {
    const int64_t n = std::min(per_launch, y.rows - j0);
    const float* xj = x.p + j0 / x_every * x.ld;
    float* yj = y.p + j0 * y.ld;
    if (n >= experts && n <= kExpertGroupMaxRows) {  // some expert serves several rows: group them
      const dim3 grid(col_blocks, unsigned(experts));
      const size_t smem = size_t(n) * sizeof(int);
      launch_kernel("cuda expert_gemv", {grid, 32 * kWarps, smem, stream},
                    vec ? expert_gemv_grouped_kernel<WT, true> : expert_gemv_grouped_kernel<WT, false>, xj, x.ld,
                    x_every, table, first_rows, ids + j0, int(n), N, K, yj, y.ld);
    } else {
      launch_kernel("cuda expert_gemv", {dim3(col_blocks, unsigned(n)), 32 * kWarps, 0, stream},
                    vec ? expert_gemv_kernel<WT, true> : expert_gemv_kernel<WT, false>, xj, x.ld, x_every, table,
                    first_rows, ids + j0, N, K, yj, y.ld);
    }
  }
}

// Row m of x by block m (and every gridDim.x-th after it), four elements per thread where x's rows and K allow.
__global__ void split_bf16x3_kernel(const float* x, int64_t ldx, int64_t M, int K, bool vec, uint16_t* terms) {
  pdl_enter();
  for (int64_t m = blockIdx.x; m < M; m += gridDim.x) {
    const float* row = x + m * ldx;
    uint16_t* out = terms + m * K;
    if (vec) {
      for (int k = 4 * threadIdx.x; k < K; k += 4 * blockDim.x) {
        const float4 v = *reinterpret_cast<const float4*>(row + k);
        uint16_t a[3], b[3], c[3], d[3];
        bf16x3(v.x, a), bf16x3(v.y, b), bf16x3(v.z, c), bf16x3(v.w, d);
#pragma unroll
        for (int j = 0; j < 3; ++j)
          *reinterpret_cast<uint2*>(out + j * M * K + k) =
              make_uint2(uint32_t(a[j]) | uint32_t(b[j]) << 16, uint32_t(c[j]) | uint32_t(d[j]) << 16);
      }
    } else {
      for (int k = threadIdx.x; k < K; k += blockDim.x) {
        uint16_t t[3];
        bf16x3(row[k], t);
#pragma unroll
        for (int j = 0; j < 3; ++j) out[j * M * K + k] = t[j];
      }
    }
  }
}

template <class WT>
__global__ void widen_kernel(const WT* w, int64_t n, float* dst) {
  pdl_enter();
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = widen1(w[i]);
}

template <class WT>
__global__ void embedding_kernel(const WT* table, const int32_t* ids, int64_t D, float* y, int64_t ldy) {
  pdl_enter();
  const WT* row = table + int64_t(ids[blockIdx.x]) * D;
  float* out = y + int64_t(blockIdx.x) * ldy;
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) out[d] = widen1(row[d]);
}

// Grid-stride loops over [rows, cols] with the column at hand.
template <class F>
__global__ void rows_kernel(int64_t rows, int64_t cols, F f) {
  pdl_enter();
  const int64_t n = rows * cols;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    f(i / cols, i % cols);
}

template <class F>
void for_each(int64_t rows, int64_t cols, F f, cudaStream_t stream, const char* what) {
  const int64_t n = rows * cols;
  if (n == 0) return;
  const int threads = 256;
  const int64_t blocks = std::min<int64_t>((n + threads - 1) / threads, 65535);
  launch_kernel(what, {unsigned(blocks), threads, 0, stream}, rows_kernel<F>, rows, cols, f);
}

// ---- norms: one block per row (per row and group for gate-first) ----
constexpr int kNormThreads = 256;

__device__ float block_sum(float v) {
  __shared__ float part[kNormThreads / 32];
  __shared__ float total;
  v = warp_sum(v);
  if (threadIdx.x % 32 == 0) part[threadIdx.x / 32] = v;
  __syncthreads();
  if (threadIdx.x < 32) {
    float s = threadIdx.x < kNormThreads / 32 ? part[threadIdx.x] : 0.f;
    s = warp_sum(s);
    if (threadIdx.x == 0) total = s;
  }
  __syncthreads();
  return total;
}

// mode 0: rms_norm (w, one_plus); 1: gated (act(gate) after w); 2: gate first (x · silu(z) before the sum);
// 3: residual first (x += g, then rms_norm of the sum into y).
__global__ void norm_kernel(int mode, float* x, int64_t ldx, const float* g, int64_t ldg, const float* w, float* y,
                            int64_t ldy, int64_t n, int64_t group, float eps, bool one_plus, bool silu_gate) {
  pdl_enter();
  const int64_t r = blockIdx.x, c0 = int64_t(blockIdx.y) * group;
  float* xr = x + r * ldx + c0;
  const float* gr = g ? g + r * ldg + c0 : nullptr;
  float* yr = y + r * ldy + c0;
  float ss = 0.f;
  for (int64_t i = threadIdx.x; i < group; i += blockDim.x) {
    float h = xr[i];
    if (mode == 2) {
      h *= silu(gr[i]);
      yr[i] = h;  // the same thread rescales it below
    } else if (mode == 3) {
      h += gr[i];
      xr[i] = h;  // the same thread reads it back below
    }
    ss += h * h;
  }
  const float s = 1.0f / sqrtf(block_sum(ss) / float(group) + eps);
  for (int64_t i = threadIdx.x; i < group; i += blockDim.x) {
    float v = (mode == 2 ? yr[i] : xr[i]) * s;
    if (w) v *= one_plus ? 1.0f + w[c0 + i] : w[c0 + i];
    if (mode == 1) v *= silu_gate ? silu(gr[i]) : sigmoid(gr[i]);
    yr[i] = v;
  }
}

void check_rows(const Rows& m, const char* what) {
  LINFER_CUDA_CHECK(m.p && m.rows >= 0 && m.cols >= 0 && m.ld >= m.cols, what, ": bad matrix [", m.rows, ", ", m.cols,
                    "] ld ", m.ld);
}

void launch_norm(int mode, const Rows& x, const Rows* g, const float* w, const Rows& y, int64_t group, float eps,
                 bool one_plus, bool silu_gate, cudaStream_t stream, const char* what) {
  check_rows(x, what), check_rows(y, what);
  LINFER_CUDA_CHECK(x.rows == y.rows && x.cols == y.cols && (!g || (g->rows == x.rows && g->cols == x.cols)), what,
                    ": shapes differ");
  LINFER_CUDA_CHECK(group > 0 && x.cols % group == 0 && x.rows < (int64_t(1) << 31), what, ": group ", group,
                    " does not divide ", x.cols);
  if (x.rows == 0) return;
  launch_kernel(what, {dim3(unsigned(x.rows), unsigned(x.cols / group)), kNormThreads, 0, stream}, norm_kernel, mode,
                x.p, x.ld, g ? g->p : nullptr, g ? g->ld : 0, w, y.p, y.ld, x.cols, group, eps, one_plus, silu_gate);
}

}  // namespace

void gemv(const Rows& x, const void* w, DType wt, int64_t N, int64_t K, const float* bias, const Rows& y,
          cudaStream_t stream, const GemvHeads& heads) {
  check_rows(x, "cuda gemv"), check_rows(y, "cuda gemv");
  LINFER_CUDA_CHECK(x.rows == y.rows && x.cols == K && y.cols == N && w, "cuda gemv: x [",
                    x.rows, ", ", x.cols, "] · w [", N, ", ", K, "]ᵀ -> y [", y.rows, ", ", y.cols, "]");
  LINFER_CUDA_CHECK(heads.n >= 1 && heads.n <= 65535 && heads.x >= 0 && heads.w >= 0 && heads.y >= 0,
                    "cuda gemv: bad heads (", heads.n, ")");
  if (x.rows == 0 || N == 0) return;
  switch (wt) {
    case DType::F32: launch_gemv(x, static_cast<const float*>(w), N, K, bias, y, stream, heads); break;
    case DType::BF16: launch_gemv(x, static_cast<const uint16_t*>(w), N, K, bias, y, stream, heads); break;
    case DType::F16: launch_gemv(x, static_cast<const __half*>(w), N, K, bias, y, stream, heads); break;
    default: throw_error("cuda gemv: weights must be f32, bf16 or f16");
  }
}

void gemv_many(const GemvProduct* products, int n, int64_t M, DType wt, cudaStream_t stream) {
  LINFER_CUDA_CHECK(n >= 0 && n <= kGemvManyMax && M >= 0, "cuda gemv_many: ", n, " products of ", M, " rows (at most ",
                    kGemvManyMax, ")");
  if (M == 0) return;
  const int64_t wsize = int64_t(dtype_size(wt));
  for (int64_t m0 = 0; m0 < M; m0 += kGemvMaxRows) {
    GemvManyArgs a{};
    a.n = 0, a.M = int(std::min(kGemvMaxRows, M - m0));
    int blocks = 0;
    for (int i = 0; i < n; ++i) {
      GemvProduct g = products[i];
      LINFER_CUDA_CHECK(g.x && g.w && g.y && g.N >= 0 && g.K >= 0 && g.ldx >= g.K && g.ldy >= g.N,
                        "cuda gemv_many: product ", i, " is malformed");
      if (g.N == 0) continue;
      g.x += m0 * g.ldx, g.y += m0 * g.ldy;
      a.vec[a.n] = g.K % 8 == 0 && g.ldx % 4 == 0 && aligned16(g.x) && aligned16(g.w) && (g.K * wsize) % 16 == 0;
      a.first[a.n] = blocks;
      a.p[a.n++] = g;
      blocks += int((g.N + kWarps - 1) / kWarps);
    }
    a.first[a.n] = blocks;
    if (blocks == 0) return;
    const LaunchShape shape{unsigned(blocks), 32 * kWarps, 0, stream};
    switch (wt) {
      case DType::F32: launch_kernel("cuda gemv_many", shape, gemv_many_kernel<float>, a); break;
      case DType::BF16: launch_kernel("cuda gemv_many", shape, gemv_many_kernel<uint16_t>, a); break;
      case DType::F16: launch_kernel("cuda gemv_many", shape, gemv_many_kernel<__half>, a); break;
      default: throw_error("cuda gemv_many: weights must be f32, bf16 or f16");
    }
  }
}

void expert_gemv(const Rows& x, int64_t x_every, const ExpertRows* table, int64_t experts, int64_t first_rows, DType wt,
                 int64_t N, int64_t K, const float* ids, const Rows& y, cudaStream_t stream) {
  check_rows(x, "cuda expert_gemv"), check_rows(y, "cuda expert_gemv");
  LINFER_CUDA_CHECK(x_every >= 1 && (y.rows + x_every - 1) / x_every <= x.rows && x.cols == K && y.cols == N && table &&
                        ids && first_rows >= 0 && first_rows <= N && y.rows <= 65535 && experts >= 1 &&
                        experts <= 65535,
                    "cuda expert_gemv: x [", x.rows, ", ", x.cols, "] (", x_every, " rows of y each) · w [", N, ", ",
                    K, "]ᵀ of ", experts, " experts -> y [", y.rows, ", ", y.cols, "]");
  if (y.rows == 0 || N == 0) return;
  switch (wt) {
    case DType::F32: launch_expert_gemv<float>(x, x_every, table, experts, first_rows, N, K, ids, y, stream); break;
    case DType::BF16: launch_expert_gemv<uint16_t>(x, x_every, table, experts, first_rows, N, K, ids, y, stream); break;
    case DType::F16: launch_expert_gemv<__half>(x, x_every, table, experts, first_rows, N, K, ids, y, stream); break;
    default: throw_error("cuda expert_gemv: weights must be f32, bf16 or f16");
  }
}

void widen(const void* w, DType wt, int64_t n, float* dst, cudaStream_t stream) {
  if (n == 0) return;
  const int threads = 256;
  const unsigned blocks = unsigned(std::min<int64_t>((n + threads - 1) / threads, 65535 * 8));
  auto run = [&](auto kernel, auto* from) {
    launch_kernel("cuda widen", {blocks, threads, 0, stream}, kernel, from, n, dst);
  };
  switch (wt) {
    case DType::BF16: run(widen_kernel<uint16_t>, static_cast<const uint16_t*>(w)); break;
    case DType::F16: run(widen_kernel<__half>, static_cast<const __half*>(w)); break;
    case DType::F32: run(widen_kernel<float>, static_cast<const float*>(w)); break;
    default: throw_error("cuda widen: weights must be f32, bf16 or f16");
  }
}

void split_bf16x3(const Rows& x, uint16_t* terms, cudaStream_t stream) {
  check_rows(x, "cuda split_bf16x3");
  LINFER_CUDA_CHECK(x.cols < (int64_t(1) << 31), "cuda split_bf16x3: rows of ", x.cols, " elements");
  if (x.rows == 0 || x.cols == 0) return;
  const bool vec = x.cols % 4 == 0 && x.ld % 4 == 0 && reinterpret_cast<uintptr_t>(x.p) % 16 == 0 &&
                   reinterpret_cast<uintptr_t>(terms) % 8 == 0;
  const int threads = int(std::clamp<int64_t>((vec ? x.cols / 4 : x.cols + 31) / 32 * 32, 32, 256));
  launch_kernel("cuda split_bf16x3", {unsigned(std::min<int64_t>(x.rows, 65535)), unsigned(threads), 0, stream},
                split_bf16x3_kernel, x.p, x.ld, x.rows, int(x.cols), vec, terms);
}

void sum_bf16x3(const float* c, const float* bias, const Rows& y, cudaStream_t stream) {
  check_rows(y, "cuda sum_bf16x3");
  float* p = y.p;
  const int64_t ld = y.ld, M = y.rows, N = y.cols;
  for_each(M, N, [=] __device__(int64_t m, int64_t n) {
    const float s = (c[(2 * M + m) * N + n] + c[(M + m) * N + n]) + c[m * N + n];
    p[m * ld + n] = bias ? s + bias[n] : s;
  }, stream, "cuda sum_bf16x3");
}

void add_bias(const Rows& y, const float* bias, cudaStream_t stream) {
  check_rows(y, "cuda add_bias");
  float* p = y.p;
  const int64_t ld = y.ld;
  for_each(y.rows, y.cols, [=] __device__(int64_t r, int64_t c) { p[r * ld + c] += bias[c]; }, stream,
           "cuda add_bias");
}

void embedding(const void* table, DType wt, const int32_t* ids, const Rows& y, cudaStream_t stream) {
  check_rows(y, "cuda embedding");
  LINFER_CUDA_CHECK(y.rows < (int64_t(1) << 31), "cuda embedding: too many rows");
  if (y.rows == 0) return;
  const LaunchShape shape{unsigned(y.rows), 256, 0, stream};
  auto run = [&](auto kernel, auto* t) { launch_kernel("cuda embedding", shape, kernel, t, ids, y.cols, y.p, y.ld); };
  switch (wt) {
    case DType::F32: run(embedding_kernel<float>, static_cast<const float*>(table)); break;
    case DType::BF16: run(embedding_kernel<uint16_t>, static_cast<const uint16_t*>(table)); break;
    case DType::F16: run(embedding_kernel<__half>, static_cast<const __half*>(table)); break;
    default: throw_error("cuda embedding: the table must be f32, bf16 or f16");
  }
}

void rms_norm(const Rows& x, const float* w, const Rows& y, float eps, bool one_plus, cudaStream_t stream) {
  launch_norm(0, x, nullptr, w, y, x.cols, eps, one_plus, false, stream, "cuda rms_norm");
}

void add_rms_norm(const Rows& x, const Rows& r, const float* w, const Rows& y, float eps, bool one_plus,
                  cudaStream_t stream) {
  LINFER_CUDA_CHECK(x.p != y.p && x.p != r.p, "cuda add_rms_norm: y and r must not alias x");
  launch_norm(3, x, &r, w, y, x.cols, eps, one_plus, false, stream, "cuda add_rms_norm");
}

void rms_norm_gated(const Rows& x, const Rows& gate, const float* w, const Rows& y, float eps, bool silu_gate,
                    cudaStream_t stream) {
  launch_norm(1, x, &gate, w, y, x.cols, eps, false, silu_gate, stream, "cuda rms_norm_gated");
}

void rms_norm_gate_first(const Rows& x, const Rows& z, const float* w, const Rows& y, int64_t group, float eps,
                         cudaStream_t stream) {
  launch_norm(2, x, &z, w, y, group, eps, false, false, stream, "cuda rms_norm_gate_first");
}

void elementwise(Elementwise f, const Rows& x, const Rows& b, const Rows& y, cudaStream_t stream) {
  check_rows(x, "cuda elementwise"), check_rows(y, "cuda elementwise");
  LINFER_CUDA_CHECK(x.rows == y.rows && x.cols == y.cols, "cuda elementwise: shapes differ");
  const float* xp = x.p;
  const float* bp = b.p;
  float* yp = y.p;
  const int64_t lx = x.ld, lb = b.ld, ly = y.ld;
  switch (f) {
    case Elementwise::Sigmoid:
      return for_each(x.rows, x.cols, [=] __device__(int64_t r, int64_t c) { yp[r * ly + c] = sigmoid(xp[r * lx + c]); },
                      stream, "cuda sigmoid");
    case Elementwise::Softplus:
      return for_each(x.rows, x.cols, [=] __device__(int64_t r, int64_t c) { yp[r * ly + c] = softplus(xp[r * lx + c]); },
                      stream, "cuda softplus");
    case Elementwise::Silu:
      return for_each(x.rows, x.cols, [=] __device__(int64_t r, int64_t c) { yp[r * ly + c] = silu(xp[r * lx + c]); },
                      stream, "cuda silu");
    case Elementwise::Add:
      return for_each(x.rows, x.cols, [=] __device__(int64_t r, int64_t c) { yp[r * ly + c] += xp[r * lx + c]; },
                      stream, "cuda add");
    case Elementwise::Mul:
      return for_each(x.rows, x.cols, [=] __device__(int64_t r, int64_t c) { yp[r * ly + c] *= xp[r * lx + c]; },
                      stream, "cuda mul");
    case Elementwise::Swiglu:
      check_rows(b, "cuda swiglu");
      return for_each(x.rows, x.cols,
                      [=] __device__(int64_t r, int64_t c) { yp[r * ly + c] = silu(xp[r * lx + c]) * bp[r * lb + c]; },
                      stream, "cuda swiglu");
  }
}

void fill(const Rows& y, float value, cudaStream_t stream) {
  check_rows(y, "cuda fill");
  float* p = y.p;
  const int64_t ld = y.ld;
  for_each(y.rows, y.cols, [=] __device__(int64_t r, int64_t c) { p[r * ld + c] = value; }, stream, "cuda fill");
}

void decay_gate(const Rows& g, const float* dt_bias, const float* A_log, int64_t per_head, cudaStream_t stream) {
  check_rows(g, "cuda decay_gate");
  LINFER_CUDA_CHECK(per_head > 0 && g.cols % per_head == 0 && dt_bias && A_log, "cuda decay_gate: per_head ",
                    per_head, " does not divide ", g.cols, " or a parameter is null");
  float* p = g.p;
  const int64_t ld = g.ld;
  for_each(g.rows, g.cols, [=] __device__(int64_t r, int64_t c) {
    float& v = p[r * ld + c];
    v = -expf(A_log[c / per_head]) * softplus(v + dt_bias[c]);
  }, stream, "cuda decay_gate");
}

void scale_rows_sigmoid(const Rows& y, const Rows& g, cudaStream_t stream) {
  check_rows(y, "cuda scale_rows_sigmoid"), check_rows(g, "cuda scale_rows_sigmoid");
  LINFER_CUDA_CHECK(g.rows == y.rows && g.cols >= 1, "cuda scale_rows_sigmoid: gate [", g.rows, ", ", g.cols,
                    "] for ", y.rows, " rows");
  float* p = y.p;
  const float* gp = g.p;
  const int64_t ly = y.ld, lg = g.ld;
  for_each(y.rows, y.cols, [=] __device__(int64_t r, int64_t c) { p[r * ly + c] *= sigmoid(gp[r * lg]); }, stream,
           "cuda scale_rows_sigmoid");
}

void moe_combine(const Rows& src, const Rows& w, const Rows& y, cudaStream_t stream) {
  check_rows(src, "cuda moe_combine"), check_rows(w, "cuda moe_combine"), check_rows(y, "cuda moe_combine");
  LINFER_CUDA_CHECK(w.rows == y.rows && src.rows == y.rows * w.cols && src.cols == y.cols, "cuda moe_combine: [",
                    src.rows, ", ", src.cols, "] rows weighted by [", w.rows, ", ", w.cols, "] into [", y.rows, ", ",
                    y.cols, "]");
  const float* s = src.p;
  const float* wp = w.p;
  float* d = y.p;
  const int64_t ls = src.ld, lw = w.ld, ly = y.ld, k = w.cols;
  for_each(y.rows, y.cols, [=] __device__(int64_t t, int64_t c) {
    float sum = 0.f;
    for (int64_t i = 0; i < k; ++i) sum += wp[t * lw + i] * s[(t * k + i) * ls + c];
    d[t * ly + c] += sum;
  }, stream, "cuda moe_combine");
}

}  // namespace linfer::kernels::cuda
