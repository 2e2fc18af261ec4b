#include "kernels/cuda/delta_rule_decode.h"

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/decode_common.cuh"

namespace linfer::kernels::cuda {

namespace {

using detail::RowSlice;

struct Params {
  int H, HV, K, V, group, W;
  DeltaDecay decay;
  bool l2norm, beta_logits, sigmoid_gate;
  float scale, eps;
  const float *q, *k, *v, *beta, *g;
  int64_t qs, ks, vs, gs;
  const float *wq, *wk, *wv;
  SlotPool cq, ck, cv, S;
  const float *A_log, *dt_bias, *norm_w, *norm_gate;
  const int32_t* slots;
  float* o;
};

// Shared memory, in floats: q, k [KP]; decays [group, KP] or [group]; v, o [group·V]; beta [group]; 3 sums.
// KP = padded_keys(NV4): key-channel vectors are zero-padded for the row operations' float4 reads.
int64_t smem_floats(const Params& p, int KP) {
  const int64_t rows = int64_t(p.group) * p.V;
  return 2 * KP + (p.decay == DeltaDecay::PerKey ? int64_t(p.group) * KP : p.group) + 2 * rows + p.group + 3;
}

// Block (h, b): q/k head h of sequence b and its `group` value heads hv0 .. hv0 + group - 1, whose states
// are group·V consecutive rows of K floats in the slot.
template <int NV4, bool VEC4>
__global__ void __launch_bounds__(detail::kMaxThreads, detail::min_blocks(NV4)) delta_decode_kernel(const Params p) {
  constexpr int RPT = detail::rows_per_thread(NV4);
  const int h = blockIdx.x, b = blockIdx.y, tid = threadIdx.x, nt = blockDim.x;
  constexpr int KP = detail::padded_keys(NV4);
  const int K = p.K, V = p.V, G = p.group, rows = G * V, hv0 = h * G;
  extern __shared__ float4 sm4[];
  float* q_s = reinterpret_cast<float*>(sm4);  // [KP], zero-padded, like k_s and a_s
  float* k_s = q_s + KP;
  float* a_s = k_s + KP;  // α = exp(g): PerKey [G, KP], Scalar [G]
  float* v_s = a_s + (p.decay == DeltaDecay::PerKey ? G * KP : G);
  float* o_s = v_s + rows;
  float* beta_s = o_s + rows;
  float* sums = beta_s + G;  // |q|², |k|², q·k

  const detail::TileRows tr;
  float* S0 = detail::slot_ptr(p.S, p.slots, b) + int64_t(hv0) * V * K;
  RowSlice<NV4, VEC4> st[RPT];
  auto load_tile = [&](int first) {
#pragma unroll
    for (int i = 0; i < RPT; ++i) {
      const int r = tr.row(first, i);
      if (r < rows) st[i].load(S0 + int64_t(r) * K, K, tr.lane);
    }
  };
  load_tile(0);  // the first tile's loads stay in flight while the inputs are prepared

  // Inputs, through the conv when there is one. Channel c of q/k head h is column h·K + c of q / k.
  const bool conv = p.W > 0;
  for (int c = tid; c < KP; c += nt) {
    const int ch = h * K + c;
    float xq = c < K ? p.q[b * p.qs + ch] : 0.f, xk = c < K ? p.k[b * p.ks + ch] : 0.f;
    if (conv && c < K) {
      xq = detail::conv_step(xq, p.wq + int64_t(ch) * p.W, 0.f,
                             detail::slot_ptr(p.cq, p.slots, b) + int64_t(ch) * (p.W - 1), p.W, true);
      xk = detail::conv_step(xk, p.wk + int64_t(ch) * p.W, 0.f,
                             detail::slot_ptr(p.ck, p.slots, b) + int64_t(ch) * (p.W - 1), p.W, true);
    }
    q_s[c] = xq;
    k_s[c] = xk;
  }
  for (int c = tid; c < rows; c += nt) {
    const int ch = hv0 * V + c;
    float xv = p.v[b * p.vs + ch];
    if (conv)
      xv = detail::conv_step(xv, p.wv + int64_t(ch) * p.W, 0.f,
                             detail::slot_ptr(p.cv, p.slots, b) + int64_t(ch) * (p.W - 1), p.W, true);
    v_s[c] = xv;
  }
  // Gates: log decay g (raw through -exp(A_log)·softplus(· + dt_bias) when A_log is set), kept as α = exp(g).
  if (p.decay == DeltaDecay::PerKey) {
    for (int i = tid; i < G * KP; i += nt) {
      const int hv = hv0 + i / KP, c = i % KP;
      if (c >= K) {
        a_s[i] = 0.f;
        continue;
      }
      float g = p.g[(int64_t(b) * p.HV + hv) * K + c];
      if (p.A_log) g = -expf(p.A_log[hv]) * detail::softplus(g + (p.dt_bias ? p.dt_bias[hv * K + c] : 0.f));
      a_s[i] = expf(g);
    }
  } else if (p.decay == DeltaDecay::Scalar) {
    for (int j = tid; j < G; j += nt) {
      const int hv = hv0 + j;
      float g = p.g[int64_t(b) * p.HV + hv];
      if (p.A_log) g = -expf(p.A_log[hv]) * detail::softplus(g + (p.dt_bias ? p.dt_bias[hv] : 0.f));
      a_s[j] = expf(g);
    }
  }
  for (int j = tid; j < G; j += nt) {
    const float x = p.beta[int64_t(b) * p.HV + hv0 + j];
    beta_s[j] = p.beta_logits ? detail::sigmoid(x) : x;
  }
  __syncthreads();

  // |q|², |k|² and q·k, one warp each (the block has at least 4 warps).
  const int warp = tid / 32, wl = tid % 32;
  if (warp < 3) {
    const float* x = warp == 1 ? k_s : q_s;
    const float* y = warp == 0 ? q_s : k_s;
    float s = 0.f;
    for (int c = wl; c < K; c += 32) s += x[c] * y[c];
    s = detail::warp_sum(s);
    if (wl == 0) sums[warp] = s;
  }
  __syncthreads();
  const float iq = p.l2norm ? rsqrtf(sums[0] + 1e-6f) : 1.f;
  const float ik = p.l2norm ? rsqrtf(sums[1] + 1e-6f) : 1.f;
  const float kq = sums[2] * iq * ik;  // k̂·q̂

  // Per row (row v of value head j): S <- α S; u = β (v - S·k̂); S += k̂ u; o = scale (S·q̂) where the new
  // S·q̂ = (α S)·q̂ + u (k̂·q̂), so both dot products come from one pass over the decayed row. k̂ = ik·k and
  // q̂ = iq·q: the norms scale the dot products instead of the vectors.
  for (int first = 0; first < rows; first += tr.teams * RPT) {
    if (first) load_tile(first);
#pragma unroll
    for (int i = 0; i < RPT; ++i) {
      const int r = tr.row(first, i);
      const bool live = r < rows;
      const int j = live ? r / V : 0;
      if (p.decay == DeltaDecay::PerKey) st[i].mul(a_s + j * KP, tr.lane);
      else if (p.decay == DeltaDecay::Scalar) st[i].scale(a_s[j]);
      const float sk = ik * detail::team_sum(st[i].dot(k_s, tr.lane));
      const float sq = iq * detail::team_sum(st[i].dot(q_s, tr.lane));
      const float u = beta_s[j] * ((live ? v_s[r] : 0.f) - sk);
      st[i].axpy(u * ik, k_s, tr.lane);
      if (live) {
        st[i].store(S0 + int64_t(r) * K, K, tr.lane);
        if (tr.lane == 0) o_s[r] = p.scale * (sq + u * kq);
      }
    }
  }
  __syncthreads();

  float* out = p.o + (int64_t(b) * p.HV + hv0) * V;  // the group's value heads are consecutive in o
  if (!p.norm_w) {
    for (int r = tid; r < rows; r += nt) out[r] = o_s[r];
    return;
  }
  // Gated RMSNorm over each value head's V outputs, one warp per head.
  for (int j = warp; j < G; j += nt / 32) {
    const float* oj = o_s + j * V;
    float ss = 0.f;
    for (int c = wl; c < V; c += 32) ss += oj[c] * oj[c];
    const float inv = rsqrtf(detail::warp_sum(ss) / V + p.eps);
    const float* gate = p.norm_gate + int64_t(b) * p.gs + int64_t(hv0 + j) * V;
    for (int c = wl; c < V; c += 32) {
      const float a = p.sigmoid_gate ? detail::sigmoid(gate[c]) : detail::silu(gate[c]);
      out[j * V + c] = oj[c] * inv * p.norm_w[c] * a;
    }
  }
}

template <int NV4, bool VEC4>
void launch(const Params& p, int B, cudaStream_t stream) {
  constexpr int RPT = detail::rows_per_thread(NV4);
  const int threads = detail::block_threads(p.group * p.V, RPT, 128);  // >= 4 warps: 3 reduce q, k, q·k
  const size_t smem = size_t(smem_floats(p, detail::padded_keys(NV4))) * sizeof(float);
  delta_decode_kernel<NV4, VEC4><<<dim3(p.H, B), threads, smem, stream>>>(p);
}

template <int NV4>
void launch_vec(const Params& p, int B, cudaStream_t stream) {
  if (detail::vec4_ok(p.K, p.S)) launch<NV4, true>(p, B, stream);
  else launch<NV4, false>(p, B, stream);
}

}  // namespace

void delta_rule_decode(const DeltaDecodeArgs& a, SlotPool state, const int32_t* slots, int64_t B, float* o,
                       cudaStream_t stream) {
  const DeltaRuleShape& s = a.shape;
  const DeltaRuleInputs& in = a.in;
  LINFER_CUDA_CHECK(s.H > 0 && s.HV > 0 && s.HV % s.H == 0, "cuda delta_rule_decode: HV ", s.HV,
                    " must be a multiple of H ", s.H);
  LINFER_CUDA_CHECK(s.K >= 1 && s.K <= 256 && s.V >= 1, "cuda delta_rule_decode: head dims K = ", s.K, ", V = ", s.V,
                    ": the kernel supports 1 <= K <= 256");
  LINFER_CUDA_CHECK(B >= 0 && B <= 65535, "cuda delta_rule_decode: batch ", B, " out of range [0, 65535]");
  LINFER_CUDA_CHECK(a.conv_width >= 0 && a.conv_width <= 64, "cuda delta_rule_decode: conv width ", a.conv_width,
                    " out of range");
  if (B == 0) return;
  LINFER_CUDA_CHECK(in.q && in.k && in.v && in.beta && o && slots && state.base,
                    "cuda delta_rule_decode: null q / k / v / beta / o / slots / state");
  LINFER_CUDA_CHECK(s.decay == DeltaDecay::None || in.g, "cuda delta_rule_decode: decay needs g");
  LINFER_CUDA_CHECK(
      a.conv_width == 0 || (a.conv_q.w && a.conv_k.w && a.conv_v.w &&
                            (a.conv_width == 1 || (a.conv_q.state.base && a.conv_k.state.base && a.conv_v.state.base))),
      "cuda delta_rule_decode: conv_width ", a.conv_width, " needs weights and windows for q, k and v");
  LINFER_CUDA_CHECK(!a.norm_w || a.norm_gate, "cuda delta_rule_decode: the output norm needs its gate");

  Params p{};
  p.H = int(s.H), p.HV = int(s.HV), p.K = int(s.K), p.V = int(s.V), p.group = int(s.HV / s.H);
  p.W = int(a.conv_width);
  p.decay = s.decay;
  p.l2norm = s.l2norm_qk, p.beta_logits = a.beta_logits, p.sigmoid_gate = a.norm_act == GateAct::Sigmoid;
  p.scale = delta_rule_scale(s), p.eps = a.norm_eps;
  p.q = in.q, p.k = in.k, p.v = in.v, p.beta = in.beta, p.g = in.g;
  p.qs = in.q_stride ? in.q_stride : s.H * s.K;
  p.ks = in.k_stride ? in.k_stride : s.H * s.K;
  p.vs = in.v_stride ? in.v_stride : s.HV * s.V;
  p.gs = a.norm_gate_stride ? a.norm_gate_stride : s.HV * s.V;
  p.wq = a.conv_q.w, p.wk = a.conv_k.w, p.wv = a.conv_v.w;
  p.cq = a.conv_q.state, p.ck = a.conv_k.state, p.cv = a.conv_v.state, p.S = state;
  p.A_log = a.A_log, p.dt_bias = a.dt_bias, p.norm_w = a.norm_w, p.norm_gate = a.norm_gate;
  p.slots = slots, p.o = o;
  LINFER_CUDA_CHECK(smem_floats(p, 256) * int64_t(sizeof(float)) <= 48 * 1024, "cuda delta_rule_decode: ", p.group,
                    " value heads per q/k head of ", s.V, " x ", s.K, " need more than 48 KiB of shared memory");

  if (s.K <= 64) launch_vec<2>(p, int(B), stream);
  else if (s.K <= 128) launch_vec<4>(p, int(B), stream);
  else launch_vec<8>(p, int(B), stream);
  check_launch("cuda delta_rule_decode");
}

}  // namespace linfer::kernels::cuda
