#include "kernels/cuda/delta_rule_decode.h"

#include <cooperative_groups.h>

#include <algorithm>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/decode_common.cuh"
#include "kernels/cuda/launch.cuh"

namespace linfer::kernels::cuda {

namespace {

using detail::RowSlice;

struct Params {
  int H, HV, K, V, group, W, split;
  bool cluster;   // the split blocks of a head form a cluster: they share q/k conv windows or the output norm
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
  int q, k, a, v, o, gw, beta, sums, stash, total;
  __host__ __device__ SmemLayout(const Params& p, int KP, int rows_per) {
    const int norm_rows = p.norm_w ? rows_per : 0;
    q = 0;                                                                   // q [KP]
    k = q + KP;                                                              // k [KP]
    a = k + KP;                                                              // α = exp(g): [G, KP] or [G]
    v = a + (p.decay == DeltaDecay::PerKey ? p.group * KP : p.group);      // v of the block's rows
    o = v + rows_per;                                                        // o of the block's rows (norm only)
    gw = o + norm_rows;                                                      // norm_w · act(gate), per row
    beta = gw + norm_rows;                                                   // [G]
    sums = beta + p.group;                                                   // Σ o² per head from each rank [split, G]
    stash = sums + (p.norm_w ? p.split * p.group : 0);                       // q, k windows [2, K, W-1]
    total = stash + (p.W > 1 ? 2 * p.K * (p.W - 1) : 0);
  }
};

// Items of the input prologue (see the kernel) for a block of `rows` state rows: the block has at least as many
// threads where it can (launch), so that each thread's loads are one round trip.
__host__ __device__ inline int prologue_items(const Params& p, int KP, int rows) {
  const int ng = p.decay == DeltaDecay::PerKey ? p.group * KP : p.decay == DeltaDecay::Scalar ? p.group : 0;
  return KP + rows + ng + p.group + (p.norm_w ? rows : 0);
}

// Grid (H · split, B): the `split` blocks of one (sequence b, q/k head h) each own a slice of the group·V
// state rows of value heads hv0 .. hv0 + group - 1 (consecutive rows of K floats in the slot). Every block
// needs all of q and k, so each convolves them from the old windows. Where the blocks share something they
// form a cluster (p.cluster): rank 0 writes the new q/k windows once every rank has arrived at the cluster
// barrier after its prologue (it waits for that only at its end), and the output norm's Σ o² over a whole
// value head reaches every rank through distributed shared memory. Without windows and norm (or at split 1)
// the blocks are independent and launch without a cluster.
//
// The dependent chain after pdl_enter(): state and input loads issued together, one round trip; a block
// barrier; q/k norms by every warp from shared memory (no second barrier); one pass over the rows; state and
// (without the norm) outputs stored from registers, no barrier after the rows.
template <int NV4, bool VEC4, detail::StateCache CACHE>
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
  float *beta_s = sm + L.beta, *sums = sm + L.sums, *stash = sm + L.stash;

  const detail::TileRows tr;
  float* S0 = detail::slot_ptr(p.S, p.slots, b) + (int64_t(hv0) * V + br.r0) * K;
  if (p.prefetch) prefetch_l2(S0, int64_t(br.n) * K * sizeof(float), tid, nt);  // while the kernel before runs
  pdl_enter();
  RowSlice<NV4, VEC4, CACHE> st[RPT];
  auto load_tile = [&](int first) {
#pragma unroll
    for (int i = 0; i < RPT; ++i) {
      const int r = tr.row(first, i);
      if (r < br.n) st[i].load(S0 + int64_t(r) * K, K, tr.lane);
    }
  };
  load_tile(0);  // the first tile's loads stay in flight while the inputs are prepared

  // Inputs: one item per thread (up to 512 items: launch), each item's loads issued together.
  //   [0, KP)        q and k channel c (conv from the old window; new windows to the stash); 0 past K
  //   [.., + n)      v of the block's row (its window is the block's own: updated in place)
  //   [.., + ng)     decay α of (value head, key channel) or of the value head
  //   [.., + G)      beta of a value head
  //   [.., + n)      norm_w · act(gate) of the block's row (output norm only)
  const bool conv = W > 0, per_key = p.decay == DeltaDecay::PerKey;
  const int ng = per_key ? G * KP : p.decay == DeltaDecay::Scalar ? G : 0;
  for (int item = tid; item < prologue_items(p, KP, br.n); item += nt) {
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
  // The new q/k windows, from the stash: by rank 0 once every rank has read the old ones.
  auto write_windows = [&] {
    if (!conv || W < 2 || rank != 0) return;
    const int n = K * (W - 1);  // the head's channels are consecutive rows of the [C, W-1] windows
    float* wq = detail::slot_ptr(p.cq, p.slots, b) + int64_t(h) * n;
    float* wk = detail::slot_ptr(p.ck, p.slots, b) + int64_t(h) * n;
    for (int i = tid; i < n; i += nt) wq[i] = stash[i], wk[i] = stash[n + i];
  };
  // In a cluster: this thread has read its old q/k windows (release); rank 0 waits for everyone's arrival only
  // after its rows, so that no rank waits for another here.
  if (p.cluster) __cluster_barrier_arrive();
  __syncthreads();
  if (!p.cluster) write_windows();

  // |q|², |k|² and q·k, each warp for itself (q_s and k_s are zero-padded to KP).
  float qq = 0.f, kk = 0.f, qk = 0.f;
  for (int c = wl; c < KP / 4; c += 32) {
    const float4 x = reinterpret_cast<const float4*>(q_s)[c], y = reinterpret_cast<const float4*>(k_s)[c];
    qq += x.x * x.x + x.y * x.y + x.z * x.z + x.w * x.w;
    kk += y.x * y.x + y.y * y.y + y.z * y.z + y.w * y.w;
    qk += x.x * y.x + x.y * y.y + x.z * y.z + x.w * y.w;
  }
  qq = detail::warp_sum(qq), kk = detail::warp_sum(kk), qk = detail::warp_sum(qk);
  const float iq = p.l2norm ? rsqrtf(qq + 1e-6f) : 1.f;
  const float ik = p.l2norm ? rsqrtf(kk + 1e-6f) : 1.f;
  const float kq = qk * iq * ik;  // k̂·q̂
  const bool norm = p.norm_w != nullptr;
  float* out = p.o + (int64_t(b) * p.HV + hv0) * V + br.r0;  // the group's value heads are consecutive in o

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
        if (tr.lane == 0) {
          const float o = p.scale * (sq + u * kq);
          if (norm) o_s[r] = o;
          else out[r] = o;
        }
      }
    }
  }

  if (p.cluster) {
    __cluster_barrier_wait();  // every rank has read the old q/k windows, and runs: its shared memory may be written
    write_windows();
  }
  if (!norm) return;

  // Gated RMSNorm per value head: this block's share of Σ o² for each head (one warp per head), written into
  // row `rank` of every rank's sums[split, G]; after the barrier each rank adds them up in its own memory, so no
  // rank reads another's memory and none has to wait for the others before leaving.
  __syncthreads();  // o_s
  for (int j = warp; j < G; j += nt / 32) {
    const int lo = max(0, j * V - br.r0), hi = min(br.n, (j + 1) * V - br.r0);
    float ss = 0.f;
    for (int r = lo + wl; r < hi; r += 32) ss += o_s[r] * o_s[r];
    ss = detail::warp_sum(ss);
    if (wl < split) {
      float* to = sums + rank * G + j;
      *(p.cluster ? cg::this_cluster().map_shared_rank(to, wl) : to) = ss;
    }
  }
  if (p.cluster) {
    __cluster_barrier_arrive();  // release: this rank's sums are written
    __cluster_barrier_wait();    // acquire: every rank's are
  } else {
    __syncthreads();
  }
  for (int r = tid; r < br.n; r += nt) {
    const int j = (br.r0 + r) / V;
    float t = 0.f;
    for (int rk = 0; rk < split; ++rk) t += sums[rk * G + j];
    out[r] = o_s[r] * rsqrtf(t / V + p.eps) * gw_s[r];
  }
}

int rows_per_block(const Params& p) { return (p.group * p.V + p.split - 1) / p.split; }

// Blocks per (sequence, q/k head) when the caller leaves it to the kernel, for `blocks` (sequence, q/k head)
// pairs of `rows` state rows each. Independent blocks (no cluster): as many as the SMs take one each, each
// keeping >= 32 rows (32 heads x 128 rows at B = 1: 4). A cluster: detail::pick_split (2 for the smallest
// grids; clusters of 4 and 8 cost more than they spread, docs/gpu.md).
int auto_split(int64_t blocks, int rows, bool cluster) {
  if (cluster) return detail::pick_split(blocks, rows);
  int split = 1;
  while (split < 8 && 2 * split * blocks <= detail::sm_count() && rows >= 2 * split * 32) split *= 2;
  return split;
}

template <int NV4, bool VEC4, detail::StateCache CACHE>
void launch(const Params& p, int B, cudaStream_t stream) {
  constexpr int KP = detail::padded_keys(NV4);
  const int rows = rows_per_block(p);
  // one team per RPT rows, and at least one thread per prologue item (whole warps, <= 512)
  const int items = (prologue_items(p, KP, rows) + 31) / 32 * 32;
  const int threads = std::min(detail::kMaxThreads,
                               std::max(detail::block_threads(rows, detail::rows_per_thread(NV4), 32), items));
  const LaunchShape shape{dim3(p.H * p.split, B), dim3(threads),
                          size_t(SmemLayout(p, KP, rows).total) * sizeof(float), stream,
                          p.cluster ? unsigned(p.split) : 1u};
  Params q = p;
  q.prefetch = detail::prefetch_state(int64_t(shape.grid.x) * B, detail::min_blocks(NV4));
  launch_kernel("cuda delta_rule_decode launch", shape, delta_decode_kernel<NV4, VEC4, CACHE>, q);
}

// 16-byte state accesses where they can be, evict-first where the grid fills the device in one wave
// (detail::StateCache).
template <int NV4>
void launch_vec(const Params& p, int B, cudaStream_t stream) {
  using detail::StateCache;
  if (!detail::vec4_ok(p.K, p.S)) return launch<NV4, false, StateCache::Plain>(p, B, stream);
  if (detail::fills_one_wave(int64_t(p.H) * p.split * B, detail::min_blocks(NV4)))
    return launch<NV4, true, StateCache::Stream>(p, B, stream);
  launch<NV4, true, StateCache::Plain>(p, B, stream);
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
  const bool shared = p.W > 1 || p.norm_w;  // q/k windows or the output norm: the split blocks of a head cooperate
  p.split = a.split ? a.split : auto_split(s.H * B, p.group * p.V, shared);
  p.cluster = p.split > 1 && shared;
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
