#include "kernels/cuda/delta_rule_decode.h"

#include <cooperative_groups.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/decode_common.cuh"
#include "kernels/cuda/launch.cuh"

namespace linfer::kernels::cuda {

namespace {

using detail::RowSlice;

struct Params {
  int H, HV, K, V, group, W, split;
  bool prefetch;  // detail::prefetch_state
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

// The rows [r0, r0 + n) of a (sequence, q/k head)'s group·V state rows that one block of its cluster owns.
struct BlockRows {
  int r0, n, per;
  __device__ BlockRows(int rows, int split, int rank) {
    per = (rows + split - 1) / split;
    r0 = min(rows, rank * per);
    n = min(rows, r0 + per) - r0;
  }
};

// Shared memory, in floats, for rows_per rows per block. KP = padded_keys(NV4): key-channel vectors are
// zero-padded for the row operations' float4 reads.
struct SmemLayout {
  int q, k, a, v, o, gw, beta, sums, part, tot, stash, total;
  __host__ __device__ SmemLayout(const Params& p, int KP, int rows_per) {
    q = 0;                                                                   // q [KP]
    k = q + KP;                                                              // k [KP]
    a = k + KP;                                                              // α = exp(g): [G, KP] or [G]
    v = a + (p.decay == DeltaDecay::PerKey ? p.group * KP : p.group);      // v of the block's rows
    o = v + rows_per;                                                        // o of the block's rows
    gw = o + rows_per;                                                       // norm_w · act(gate), per row
    beta = gw + (p.norm_w ? rows_per : 0);                                   // [G]
    sums = beta + p.group;                                                   // |q|², |k|², q·k
    part = sums + 3;                                                         // this block's Σ o² per head [G]
    tot = part + p.group;                                                    // the cluster's Σ o² [G]
    stash = tot + p.group;                                                   // q, k windows [2, K, W-1]
    total = stash + (p.W > 1 ? 2 * p.K * (p.W - 1) : 0);
  }
};

// Grid (H · split, B): the blocks of one (sequence b, q/k head h) form a cluster of `split` blocks, each
// owning a slice of the group·V state rows of value heads hv0 .. hv0 + group - 1 (consecutive rows of K
// floats in the slot). Every block needs all of q and k, so each convolves them from the old windows; the
// cluster barrier after that lets rank 0 write the new q/k windows once everyone has read the old ones.
// The output norm needs Σ o² over a whole value head: ranks add their partial sums through distributed
// shared memory.
template <int NV4, bool VEC4>
__global__ void __launch_bounds__(detail::kMaxThreads, detail::min_blocks(NV4)) delta_decode_kernel(const Params p) {
  constexpr int RPT = detail::rows_per_thread(NV4), KP = detail::padded_keys(NV4);
  namespace cg = cooperative_groups;
  const int split = p.split, h = blockIdx.x / split, rank = blockIdx.x % split, b = blockIdx.y;
  const int tid = threadIdx.x, nt = blockDim.x, warp = tid / 32, wl = tid % 32;
  const int K = p.K, V = p.V, G = p.group, hv0 = h * G, W = p.W;
  const BlockRows br(G * V, split, rank);
  const SmemLayout L(p, KP, br.per);
  extern __shared__ float4 sm4[];
  float* sm = reinterpret_cast<float*>(sm4);
  float *q_s = sm + L.q, *k_s = sm + L.k, *a_s = sm + L.a, *v_s = sm + L.v, *o_s = sm + L.o, *gw_s = sm + L.gw;
  float *beta_s = sm + L.beta, *sums = sm + L.sums, *part = sm + L.part, *tot = sm + L.tot, *stash = sm + L.stash;

  const detail::TileRows tr;
  float* S0 = detail::slot_ptr(p.S, p.slots, b) + (int64_t(hv0) * V + br.r0) * K;
  if (p.prefetch) prefetch_l2(S0, int64_t(br.n) * K * sizeof(float), tid, nt);  // while the kernel before runs
  pdl_enter();
  RowSlice<NV4, VEC4> st[RPT];
  auto load_tile = [&](int first) {
#pragma unroll
    for (int i = 0; i < RPT; ++i) {
      const int r = tr.row(first, i);
      if (r < br.n) st[i].load(S0 + int64_t(r) * K, K, tr.lane);
    }
  };
  load_tile(0);  // the first tile's loads stay in flight while the inputs are prepared

  // Inputs: one item per thread where the block is large enough, each item's loads issued together.
  //   [0, KP)        q and k channel c (conv from the old window; new windows to the stash); 0 past K
  //   [.., + n)      v of the block's row (its window is the block's own: updated in place)
  //   [.., + ng)     decay α of (value head, key channel) or of the value head
  //   [.., + G)      beta of a value head
  //   [.., + n)      norm_w · act(gate) of the block's row (output norm only)
  const bool conv = W > 0, per_key = p.decay == DeltaDecay::PerKey;
  const int ng = per_key ? G * KP : p.decay == DeltaDecay::Scalar ? G : 0;
  const int nn = p.norm_w ? br.n : 0;
  for (int item = tid; item < KP + br.n + ng + G + nn; item += nt) {
    int i = item;
    if (i < KP) {
      float xq = 0.f, xk = 0.f;
      if (i < K) {
        const int ch = h * K + i;
        xq = p.q[b * p.qs + ch], xk = p.k[b * p.ks + ch];
        if (conv) {
          detail::ConvTap tq, tk;
          tq.load(detail::slot_ptr(p.cq, p.slots, b) + int64_t(ch) * (W - 1), p.wq + int64_t(ch) * W, W);
          tk.load(detail::slot_ptr(p.ck, p.slots, b) + int64_t(ch) * (W - 1), p.wk + int64_t(ch) * W, W);
          tq.shift_into(stash + i * (W - 1), xq, W);
          tk.shift_into(stash + (K + i) * (W - 1), xk, W);
          xq = tq.out(xq, 0.f, W, true);
          xk = tk.out(xk, 0.f, W, true);
        }
      }
      q_s[i] = xq;
      k_s[i] = xk;
    } else if ((i -= KP) < br.n) {
      const int ch = hv0 * V + br.r0 + i;
      float xv = p.v[b * p.vs + ch];
      if (conv) {
        float* window = detail::slot_ptr(p.cv, p.slots, b) + int64_t(ch) * (W - 1);
        detail::ConvTap tv;
        tv.load(window, p.wv + int64_t(ch) * W, W);
        tv.shift_into(window, xv, W);
        xv = tv.out(xv, 0.f, W, true);
      }
      v_s[i] = xv;
    } else if ((i -= br.n) < ng) {
      // log decay g (raw through -exp(A_log)·softplus(· + dt_bias) when A_log is set), kept as α = exp(g)
      const int hv = hv0 + (per_key ? i / KP : i), c = per_key ? i % KP : 0;
      float alpha = 0.f;
      if (c < K) {
        const int64_t at = per_key ? (int64_t(b) * p.HV + hv) * K + c : int64_t(b) * p.HV + hv;
        float g = p.g[at];
        if (p.A_log) {
          const float bias = p.dt_bias ? p.dt_bias[per_key ? hv * K + c : hv] : 0.f;
          g = -expf(p.A_log[hv]) * detail::softplus(g + bias);
        }
        alpha = expf(g);
      }
      a_s[i] = alpha;
    } else if ((i -= ng) < G) {
      const float x = p.beta[int64_t(b) * p.HV + hv0 + i];
      beta_s[i] = p.beta_logits ? detail::sigmoid(x) : x;
    } else {
      i -= G;
      const int r = br.r0 + i, c = r % V;  // value channel c of value head hv0 + r / V
      const float gt = p.norm_gate[int64_t(b) * p.gs + int64_t(hv0 + r / V) * V + c];
      gw_s[i] = p.norm_w[c] * (p.sigmoid_gate ? detail::sigmoid(gt) : detail::silu(gt));
    }
  }
  if (split > 1) cg::this_cluster().sync();  // every rank has read the old q/k windows
  else __syncthreads();

  // |q|², |k|² and q·k, one warp each (blocks have >= 4 warps); rank 0 writes the new q/k windows.
  if (warp < 3) {
    const float* x = warp == 1 ? k_s : q_s;
    const float* y = warp == 0 ? q_s : k_s;
    float s = 0.f;
    for (int c = wl; c < K; c += 32) s += x[c] * y[c];
    s = detail::warp_sum(s);
    if (wl == 0) sums[warp] = s;
  }
  if (conv && W > 1 && rank == 0) {
    const int n = K * (W - 1);  // the head's channels are consecutive rows of the [C, W-1] windows
    float* wq = detail::slot_ptr(p.cq, p.slots, b) + int64_t(h) * n;
    float* wk = detail::slot_ptr(p.ck, p.slots, b) + int64_t(h) * n;
    for (int i = tid; i < n; i += nt) wq[i] = stash[i], wk[i] = stash[n + i];
  }
  __syncthreads();
  const float iq = p.l2norm ? rsqrtf(sums[0] + 1e-6f) : 1.f;
  const float ik = p.l2norm ? rsqrtf(sums[1] + 1e-6f) : 1.f;
  const float kq = sums[2] * iq * ik;  // k̂·q̂

  // Per row (row v of value head j): S <- α S; u = β (v - S·k̂); S += k̂ u; o = scale (S·q̂) where the new
  // S·q̂ = (α S)·q̂ + u (k̂·q̂), so both dot products come from one pass over the decayed row. k̂ = ik·k and
  // q̂ = iq·q: the norms scale the dot products instead of the vectors.
  for (int first = 0; first < br.n; first += tr.teams * RPT) {
    if (first) load_tile(first);
#pragma unroll
    for (int i = 0; i < RPT; ++i) {
      const int r = tr.row(first, i);
      const bool live = r < br.n;
      const int j = live ? (br.r0 + r) / V : 0;
      if (per_key) st[i].mul(a_s + j * KP, tr.lane);
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

  float* out = p.o + (int64_t(b) * p.HV + hv0) * V + br.r0;  // the group's value heads are consecutive in o
  if (!p.norm_w) {
    for (int r = tid; r < br.n; r += nt) out[r] = o_s[r];
    return;
  }
  // Gated RMSNorm per value head: this block's share of Σ o² for each head (one warp per head), summed
  // over the cluster's ranks.
  for (int j = warp; j < G; j += nt / 32) {
    const int lo = max(0, j * V - br.r0), hi = min(br.n, (j + 1) * V - br.r0);
    float ss = 0.f;
    for (int r = lo + wl; r < hi; r += 32) ss += o_s[r] * o_s[r];
    ss = detail::warp_sum(ss);
    if (wl == 0) part[j] = ss;
  }
  const float* total = part;
  if (split > 1) {
    cg::cluster_group cluster = cg::this_cluster();
    cluster.sync();  // every rank's partial sums are in place
    for (int j = tid; j < G; j += nt) {
      float t = 0.f;
      for (int rk = 0; rk < split; ++rk) t += cluster.map_shared_rank(part, rk)[j];
      tot[j] = t;
    }
    total = tot;
  }
  __syncthreads();
  for (int r = tid; r < br.n; r += nt) out[r] = o_s[r] * rsqrtf(total[(br.r0 + r) / V] / V + p.eps) * gw_s[r];
  if (split > 1) cg::this_cluster().sync();  // no rank leaves while another may still read its part[]
}

int rows_per_block(const Params& p) { return (p.group * p.V + p.split - 1) / p.split; }

template <int NV4, bool VEC4>
void launch(const Params& p, int B, cudaStream_t stream) {
  const int rows = rows_per_block(p);
  const LaunchShape shape{dim3(p.H * p.split, B),
                          dim3(detail::block_threads(rows, detail::rows_per_thread(NV4), 128)),  // >= 4 warps
                          size_t(SmemLayout(p, detail::padded_keys(NV4), rows).total) * sizeof(float), stream,
                          unsigned(p.split)};
  Params q = p;
  q.prefetch = detail::prefetch_state(int64_t(shape.grid.x) * B, detail::min_blocks(NV4));
  launch_kernel("cuda delta_rule_decode launch", shape, delta_decode_kernel<NV4, VEC4>, q);
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
  LINFER_CUDA_CHECK(a.conv_width >= 0 && a.conv_width <= detail::kMaxConvW, "cuda delta_rule_decode: conv width ",
                    a.conv_width, " out of range [0, ", detail::kMaxConvW, "]");
  LINFER_CUDA_CHECK(a.split == 0 || a.split == 1 || a.split == 2 || a.split == 4 || a.split == 8,
                    "cuda delta_rule_decode: split ", a.split, " is not 0 (automatic), 1, 2, 4 or 8");
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
  p.split = a.split ? a.split : detail::pick_split(s.H * B, p.group * p.V);
  LINFER_CUDA_CHECK(p.split <= p.group * p.V, "cuda delta_rule_decode: split ", p.split, " exceeds the ",
                    p.group * p.V, " state rows per q/k head");
  LINFER_CUDA_CHECK(SmemLayout(p, 256, rows_per_block(p)).total * int64_t(sizeof(float)) <= 48 * 1024,
                    "cuda delta_rule_decode: ", p.group, " value heads per q/k head of ", s.V, " x ", s.K,
                    " need more than 48 KiB of shared memory");

  if (s.K <= 64) launch_vec<2>(p, int(B), stream);
  else if (s.K <= 128) launch_vec<4>(p, int(B), stream);
  else launch_vec<8>(p, int(B), stream);
}

}  // namespace linfer::kernels::cuda
