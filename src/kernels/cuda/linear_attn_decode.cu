#include "kernels/cuda/linear_attn_decode.h"

#include <cmath>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/decode_common.cuh"
#include "kernels/cuda/launch.cuh"

namespace linfer::kernels::cuda {

namespace {

using detail::RowSlice;

struct Params {
  int H, HV, K, V, split;
  bool prefetch;  // detail::prefetch_state
  LinearAttnDecay decay;
  bool normalize, mamba2;
  float scale, eps, dt_min, dt_max;
  const float *q, *k, *v, *g, *beta, *skip;
  int64_t qs, ks, vs, gs;  // token strides; gs: g (Scalar: HV, Vector: HV·K) or Mamba2's raw dt
  const float *A_log, *dt_bias;  // Mamba2 only
  SlotPool S, Z;
  const int32_t* slots;
  float* o;
};

int rows_per_block(const Params& p) { return (p.V + p.split - 1) / p.split; }

// Grid (HV · split, B): block (hv · split + rank, b) streams rows [rank · per, ...) of value head hv of
// sequence b (V rows of K floats). Splits share nothing but the (read-only) inputs, so they need no
// cluster; the normaliser z, which every row needs updated, runs unsplit.
template <int NV4, bool VEC4>
__global__ void __launch_bounds__(detail::kMaxThreads, detail::min_blocks(NV4))
    linear_attn_decode_kernel(const Params p) {
  constexpr int RPT = detail::rows_per_thread(NV4), KP = detail::padded_keys(NV4);
  const int split = p.split, hv = blockIdx.x / split, rank = blockIdx.x % split, b = blockIdx.y;
  const int tid = threadIdx.x, nt = blockDim.x;
  const int K = p.K, V = p.V, h = hv / (p.HV / p.H);
  const int per = (V + split - 1) / split, r0 = min(V, rank * per), n = min(V, r0 + per) - r0;
  extern __shared__ float4 sm4[];
  float* q_s = reinterpret_cast<float*>(sm4);  // scale · q [KP], zero-padded, like k_s and a_s
  float* k_s = q_s + KP;  // [KP]
  float* a_s = k_s + KP;  // decay exp(g) per key channel [KP]
  float* v_s = a_s + KP;  // v of the block's rows [per]
  float* o_s = v_s + per;  // [per]
  float* den_s = o_s + per;

  const detail::TileRows tr;
  float* S0 = detail::slot_ptr(p.S, p.slots, b) + (int64_t(hv) * V + r0) * K;
  if (p.prefetch) prefetch_l2(S0, int64_t(n) * K * sizeof(float), tid, nt);  // while the kernel before runs
  pdl_enter();
  RowSlice<NV4, VEC4, detail::StateCache::StreamStores> st[RPT];
  auto load_tile = [&](int first) {
#pragma unroll
    for (int i = 0; i < RPT; ++i) {
      const int r = tr.row(first, i);
      if (r < n) st[i].load(S0 + int64_t(r) * K, K, tr.lane);
    }
  };
  load_tile(0);  // in flight while the inputs are read

  // Scalar decay and beta of this (token, head), in every thread; Mamba2 derives both from its dt.
  float g = 0.f, beta = p.beta ? p.beta[int64_t(b) * p.HV + hv] : 1.f;
  if (p.mamba2) {
    const float dt = detail::mamba2_dt(p.g[b * p.gs + hv], p.dt_bias[hv], p.dt_min, p.dt_max);
    g = dt * -expf(p.A_log[hv]);
    beta = dt;
  } else if (p.decay == LinearAttnDecay::PerHead) {
    g = p.g[hv];
  } else if (p.decay == LinearAttnDecay::Scalar) {
    g = p.g[b * p.gs + hv];
  }
  const float alpha = expf(g);
  // One item per thread where the block is large enough: key channel c (q, k, decay; 0 past K), then v of
  // the block's rows.
  for (int i = tid; i < KP + n; i += nt) {
    if (i < KP) {
      const bool in = i < K;
      q_s[i] = in ? p.scale * p.q[b * p.qs + int64_t(h) * K + i] : 0.f;
      k_s[i] = in ? p.k[b * p.ks + int64_t(h) * K + i] : 0.f;
      a_s[i] = !in ? 0.f : p.decay == LinearAttnDecay::Vector ? expf(p.g[b * p.gs + int64_t(hv) * K + i]) : alpha;
    } else {
      v_s[i - KP] = p.v[b * p.vs + int64_t(hv) * V + r0 + i - KP];
    }
  }
  __syncthreads();

  // Normaliser (unsplit): z <- α ⊙ z + k; den = eps + (scale q)·z, one warp.
  if (p.normalize && tid < 32) {
    float* z = detail::slot_ptr(p.Z, p.slots, b) + int64_t(hv) * K;
    float s = 0.f;
    for (int c = tid; c < K; c += 32) {
      const float zc = a_s[c] * z[c] + k_s[c];
      z[c] = zc;
      s += q_s[c] * zc;
    }
    s = detail::warp_sum(s);
    if (tid == 0) den_s[0] = p.eps + s;
  }
  if (p.normalize) __syncthreads();

  // Per row v: S <- α ⊙ S + k (β v_v); o_v = S·(scale q) / den + skip · v_v.
  const float inv_den = p.normalize ? 1.f / den_s[0] : 1.f, skip = p.skip ? p.skip[hv] : 0.f;
  for (int first = 0; first < n; first += tr.teams * RPT) {
    if (first) load_tile(first);
#pragma unroll
    for (int i = 0; i < RPT; ++i) {
      const int r = tr.row(first, i);
      const bool live = r < n;
      const float vr = live ? v_s[r] : 0.f;
      st[i].mul(a_s, tr.lane);
      st[i].axpy(beta * vr, k_s, tr.lane);
      const float num = detail::team_sum(st[i].dot(q_s, tr.lane));
      if (live) {
        st[i].store(S0 + int64_t(r) * K, K, tr.lane);
        if (tr.lane == 0) o_s[r] = num * inv_den + skip * vr;
      }
    }
  }
  __syncthreads();
  float* out = p.o + (int64_t(b) * p.HV + hv) * V + r0;
  for (int r = tid; r < n; r += nt) out[r] = o_s[r];
}

template <int NV4, bool VEC4>
void launch(const Params& p, int B, cudaStream_t stream, const char* what) {
  const int rows = rows_per_block(p);
  const int threads = detail::block_threads(rows, detail::rows_per_thread(NV4), 64);
  const size_t smem = size_t(3 * detail::padded_keys(NV4) + 2 * rows + 1) * sizeof(float);
  Params q = p;
  q.prefetch = detail::prefetch_state(int64_t(p.HV) * p.split * B, detail::min_blocks(NV4));
  launch_kernel(what, {dim3(p.HV * p.split, B), unsigned(threads), smem, stream}, linear_attn_decode_kernel<NV4, VEC4>,
                q);
}

template <int NV4>
void launch_vec(const Params& p, int B, cudaStream_t stream, const char* what) {
  if (detail::vec4_ok(p.K, p.S)) launch<NV4, true>(p, B, stream, what);
  else launch<NV4, false>(p, B, stream, what);
}

void run(Params p, int64_t B, cudaStream_t stream, const char* what) {
  LINFER_CUDA_CHECK(p.H > 0 && p.HV > 0 && p.HV % p.H == 0, what, ": ", p.HV, " heads are not a multiple of ", p.H,
                    " groups");
  LINFER_CUDA_CHECK(p.K >= 1 && p.K <= 256 && p.V >= 1, what, ": dims K = ", p.K, ", V = ", p.V,
                    ": the kernel supports 1 <= K <= 256");
  LINFER_CUDA_CHECK(B >= 0 && B <= 65535, what, ": batch ", B, " out of range [0, 65535]");
  LINFER_CUDA_CHECK(int64_t(3 * 256 + 2 * p.V + 1) * 4 <= 48 * 1024, what, ": V = ", p.V,
                    " needs more than 48 KiB of shared memory");
  if (B == 0) return;
  p.split = p.normalize ? 1 : detail::pick_split(p.HV * B, p.V);
  LINFER_CUDA_CHECK(p.q && p.k && p.v && p.o && p.slots && p.S.base, what, ": null input / output / slots / state");
  LINFER_CUDA_CHECK(p.decay == LinearAttnDecay::None || p.g, what, ": the decay needs g (Mamba2: dt)");
  LINFER_CUDA_CHECK(!p.normalize || p.Z.base, what, ": normalize needs the z pool");
  LINFER_CUDA_CHECK(!p.mamba2 || (p.A_log && p.dt_bias), what, ": null A_log / dt_bias");
  if (p.K <= 64) launch_vec<2>(p, int(B), stream, what);
  else if (p.K <= 128) launch_vec<4>(p, int(B), stream, what);
  else launch_vec<8>(p, int(B), stream, what);
}

}  // namespace

void linear_attn_decode(const LinearAttnArgs& a, SlotPool state, SlotPool z_state, const int32_t* slots, int64_t B,
                        float* o, cudaStream_t stream) {
  Params p{};
  p.H = int(a.H), p.HV = int(a.HV), p.K = int(a.K), p.V = int(a.V);
  p.decay = a.decay, p.normalize = a.normalize, p.mamba2 = false;
  p.scale = a.scale, p.eps = a.eps;
  p.q = a.q, p.k = a.k, p.v = a.v, p.g = a.g, p.beta = a.beta, p.skip = a.skip;
  p.qs = a.q_stride ? a.q_stride : a.H * a.K;
  p.ks = a.k_stride ? a.k_stride : a.H * a.K;
  p.vs = a.v_stride ? a.v_stride : a.HV * a.V;
  p.gs = a.decay == LinearAttnDecay::Vector ? a.HV * a.K : a.HV;
  p.S = state, p.Z = z_state, p.slots = slots, p.o = o;
  run(p, B, stream, "cuda linear_attn_decode");
}

void mamba2_decode(const Mamba2Dims& d, const Mamba2Params& params, const Mamba2Inputs& in, SlotPool state,
                   const int32_t* slots, int64_t B, float* y, cudaStream_t stream) {
  Params p{};
  p.H = int(d.G), p.HV = int(d.H), p.K = int(d.N), p.V = int(d.P);
  p.decay = LinearAttnDecay::Scalar, p.normalize = false, p.mamba2 = true;
  p.scale = 1.f, p.eps = 0.f, p.dt_min = params.dt_min, p.dt_max = params.dt_max;
  p.q = in.C, p.k = in.B, p.v = in.x, p.g = in.dt, p.beta = nullptr, p.skip = params.D;
  p.qs = in.C_stride ? in.C_stride : d.G * d.N;
  p.ks = in.B_stride ? in.B_stride : d.G * d.N;
  p.vs = in.x_stride ? in.x_stride : d.H * d.P;
  p.gs = in.dt_stride ? in.dt_stride : d.H;
  p.A_log = params.A_log, p.dt_bias = params.dt_bias;
  p.S = state, p.slots = slots, p.o = y;
  run(p, B, stream, "cuda mamba2_decode");
}

}  // namespace linfer::kernels::cuda
