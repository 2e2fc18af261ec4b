// Linear-attention family on the CPU: decode step and chunkwise-parallel prefill (see linear_attn.h).
//
// Prefill, per sequence, q/k head and chunk of L tokens (local index i, j), with the per-token log
// decays of one v head (segment sums, formed by adding non-positive gates, never by subtracting two
// large cumulative sums — that cancellation costs digits at strong decay):
//   seg(i, j)  = Σ_{j<m<=i} g_m      cf(i) = Σ_{m<=i} g_m      cb(j) = Σ_{j<m<L} g_m
//   A[i][j]    = Σ_k q_ik k_jk exp(seg_k(i, j)), j <= i          (scalar decay: (q_i·k_j) exp(seg(i, j)))
//   O          = A Vb + (q ⊙ exp(cf)) S0ᵀ                          Vb = beta ⊙ v
//   S          = exp(cf(L-1)) ⊙ S0 + Vbᵀ (k ⊙ exp(cb))
// Every exponent is <= 0. With scalar (or no) decay q·k is shared by all v heads of the group, so a
// work item is (sequence, q/k head, block of its v heads). During a prefill the work item keeps its
// states transposed ([K, V]) so that all three chunk products are row-broadcast GEMMs.
#include "kernels/cpu/linear_attn.h"

#include <algorithm>
#include <cmath>

#include "kernels/cpu/linear_attn_simd.h"
#include "linfer/core/error.h"
#include "linfer/core/thread_pool.h"

namespace linfer::kernels {
namespace {

// Vector decay exponentiates every (i, j, k) inside a chunk, so it uses shorter chunks.
constexpr int64_t kChunk = 64;
constexpr int64_t kChunkVector = 16;

struct Strides {
  int64_t q, k, v;
};

Strides check_args(const LinearAttnArgs& a, size_t n_seqs, std::span<float* const> states,
                   std::span<float* const> z_states) {
  LINFER_CHECK(a.H > 0 && a.HV > 0 && a.K > 0 && a.V > 0, "linear_attn: dims must be positive (H {}, HV {}, K {}, V {})",
               a.H, a.HV, a.K, a.V);
  LINFER_CHECK(a.HV % a.H == 0, "linear_attn: v heads HV = {} must be a multiple of q/k heads H = {}", a.HV, a.H);
  LINFER_CHECK(a.q && a.k && a.v, "linear_attn: q, k and v are required");
  LINFER_CHECK((a.decay == LinearAttnDecay::None) == (a.g == nullptr),
               "linear_attn: g must be given exactly when decay is not None");
  LINFER_CHECK(states.size() == n_seqs, "linear_attn: {} states for {} sequences", states.size(), n_seqs);
  LINFER_CHECK(a.normalize ? z_states.size() == n_seqs : z_states.empty(),
               "linear_attn: z states are required exactly when normalize is set ({} given, {} sequences)",
               z_states.size(), n_seqs);
  Strides st{a.q_stride ? a.q_stride : a.H * a.K, a.k_stride ? a.k_stride : a.H * a.K,
             a.v_stride ? a.v_stride : a.HV * a.V};
  LINFER_CHECK(st.q >= a.H * a.K && st.k >= a.H * a.K && st.v >= a.HV * a.V,
               "linear_attn: token strides ({}, {}, {}) shorter than a token's q / k / v", st.q, st.k, st.v);
  return st;
}

// Log decay of token t, head hv, for the scalar forms (None: 0).
inline float scalar_g(const LinearAttnArgs& a, int64_t t, int64_t hv) {
  switch (a.decay) {
    case LinearAttnDecay::PerHead: return a.g[hv];
    case LinearAttnDecay::Scalar: return a.g[t * a.HV + hv];
    default: return 0.0f;
  }
}

// Per-thread scratch for one chunk.
struct ChunkScratch {
  std::vector<float> q, k, qk, attn, vb, qd, kd, den, g, cf, cb, seg, last;
  ChunkScratch(int64_t C, int64_t K, int64_t V)
      : q(C * K), k(C * K), qk(C * C), attn(C * C), vb(C * V), qd(C * K), kd(C * K), den(C), g(C * K),
        cf(C * K), cb(C * K), seg(std::max(C, K)), last(K) {}
};

class Prefill {
 public:
  Prefill(const LinearAttnArgs& a, const Strides& st, std::span<const int64_t> offsets, std::span<float* const> states,
          std::span<float* const> z_states, float* o, const LinearAttnSimd& simd)
      : a_(a), st_(st), offsets_(offsets), states_(states), z_states_(z_states), o_(o), simd_(simd),
        vector_(a.decay == LinearAttnDecay::Vector), C_(vector_ ? kChunkVector : kChunk) {}

  // v heads [hv0, hv1) of q/k head h of sequence s.
  void run(int64_t s, int64_t h, int64_t hv0, int64_t hv1) const {
    if (offsets_[s + 1] == offsets_[s]) return;
    const int64_t K = a_.K, V = a_.V;
    ChunkScratch w(C_, K, V);
    // The states stay transposed, [K, V] per head, for the whole sequence: every chunk product is then
    // a row-broadcast GEMM over contiguous rows of V (gemm_nn), the shape the SIMD kernels run fastest.
    std::vector<float> st((hv1 - hv0) * K * V);
    for (int64_t hv = hv0; hv < hv1; ++hv) transpose(states_[s] + hv * V * K, V, K, st.data() + (hv - hv0) * K * V);
    for (int64_t t0 = offsets_[s]; t0 < offsets_[s + 1]; t0 += C_) {
      const int64_t L = std::min(C_, offsets_[s + 1] - t0);
      load_qk(w, t0, L, h);
      if (!vector_) simd_.gemm_nt(L, L, K, w.q.data(), K, w.k.data(), K, w.qk.data(), C_, false);
      for (int64_t hv = hv0; hv < hv1; ++hv) chunk(w, st.data() + (hv - hv0) * K * V, s, t0, L, hv);
    }
    for (int64_t hv = hv0; hv < hv1; ++hv) transpose(st.data() + (hv - hv0) * K * V, K, V, states_[s] + hv * V * K);
  }

 private:
  // dst [cols, rows] = src [rows, cols]ᵀ
  static void transpose(const float* src, int64_t rows, int64_t cols, float* dst) {
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) dst[c * rows + r] = src[r * cols + c];
  }

  void load_qk(ChunkScratch& w, int64_t t0, int64_t L, int64_t h) const {
    const int64_t K = a_.K;
    for (int64_t i = 0; i < L; ++i) {
      simd_.mul(K, w.q.data() + i * K, a_.q + (t0 + i) * st_.q + h * K, nullptr, a_.scale);
      std::copy_n(a_.k + (t0 + i) * st_.k + h * K, K, w.k.begin() + i * K);
    }
  }

  // Fills attn (lower triangle, rest zero), qd = q ⊙ exp(cf), kd = k ⊙ exp(cb), last = exp(cf(L-1)).
  void decays_scalar(ChunkScratch& w, int64_t t0, int64_t L, int64_t hv) const {
    const int64_t K = a_.K;
    float* g = w.g.data();
    float* seg = w.seg.data();  // seg(i, j) for j <= i of the current row i
    for (int64_t i = 0; i < L; ++i) g[i] = scalar_g(a_, t0 + i, hv);
    for (int64_t i = 0; i < L; ++i) {
      for (int64_t j = 0; j < i; ++j) seg[j] += g[i];
      seg[i] = 0.0f;
      float* row = w.attn.data() + i * C_;
      std::copy_n(seg, i + 1, row);
      simd_.exp_inplace(i + 1, row);
      simd_.mul(i + 1, row, row, w.qk.data() + i * C_, 0.0f);
      std::fill(row + i + 1, row + L, 0.0f);
    }
    float* cf = w.cf.data();
    float* cb = w.cb.data();
    float acc = 0.0f;
    for (int64_t i = 0; i < L; ++i) cf[i] = (acc += g[i]);
    acc = 0.0f;
    for (int64_t j = L - 1; j >= 0; --j) {
      cb[j] = acc;
      acc += g[j];
    }
    simd_.exp_inplace(L, cf);
    simd_.exp_inplace(L, cb);
    for (int64_t i = 0; i < L; ++i) {
      simd_.mul(K, w.qd.data() + i * K, w.q.data() + i * K, nullptr, cf[i]);
      simd_.mul(K, w.kd.data() + i * K, w.k.data() + i * K, nullptr, cb[i]);
    }
    std::fill(w.last.begin(), w.last.end(), cf[L - 1]);
  }

  void decays_vector(ChunkScratch& w, int64_t t0, int64_t L, int64_t hv) const {
    const int64_t K = a_.K;
    float* g = w.g.data();
    for (int64_t i = 0; i < L; ++i) std::copy_n(a_.g + ((t0 + i) * a_.HV + hv) * K, K, g + i * K);
    for (int64_t i = 0; i < L; ++i) {
      float* row = w.attn.data() + i * C_;
      std::fill_n(w.seg.begin(), K, 0.0f);
      for (int64_t j = i; j >= 0; --j)
        row[j] = simd_.decayed_dot_step(K, w.q.data() + i * K, w.k.data() + j * K, w.seg.data(), g + j * K);
      std::fill(row + i + 1, row + L, 0.0f);
    }
    float* cf = w.cf.data();
    float* cb = w.cb.data();
    for (int64_t c = 0; c < K; ++c) {
      float acc = 0.0f;
      for (int64_t i = 0; i < L; ++i) cf[i * K + c] = (acc += g[i * K + c]);
      acc = 0.0f;
      for (int64_t j = L - 1; j >= 0; --j) {
        cb[j * K + c] = acc;
        acc += g[j * K + c];
      }
    }
    simd_.exp_inplace(L * K, cf);
    simd_.exp_inplace(L * K, cb);
    simd_.mul(L * K, w.qd.data(), w.q.data(), cf, 0.0f);
    simd_.mul(L * K, w.kd.data(), w.k.data(), cb, 0.0f);
    std::copy_n(cf + (L - 1) * K, K, w.last.begin());
  }

  // One chunk of one v head; ST is that head's transposed state [K, V].
  void chunk(ChunkScratch& w, float* ST, int64_t s, int64_t t0, int64_t L, int64_t hv) const {
    const int64_t K = a_.K, V = a_.V;
    float* z = a_.normalize ? z_states_[s] + hv * K : nullptr;
    for (int64_t i = 0; i < L; ++i) {
      const float beta = a_.beta ? a_.beta[(t0 + i) * a_.HV + hv] : 1.0f;
      simd_.mul(V, w.vb.data() + i * V, a_.v + (t0 + i) * st_.v + hv * V, nullptr, beta);
    }
    if (vector_) decays_vector(w, t0, L, hv);
    else decays_scalar(w, t0, L, hv);

    // Outputs, accumulated in place in o (rows HV·V apart): the skip term (unless normalising, where it
    // comes after the division), the intra-chunk term (row blocks stop at the diagonal), then the
    // initial state's contribution.
    const int64_t ldo = a_.HV * V;
    float* out = o_ + (t0 * a_.HV + hv) * V;
    const float skip = a_.skip ? a_.skip[hv] : 0.0f;
    for (int64_t i = 0; i < L; ++i)
      simd_.mul(V, out + i * ldo, a_.v + (t0 + i) * st_.v + hv * V, nullptr, z ? 0.0f : skip);
    constexpr int64_t kRows = 12;
    for (int64_t i0 = 0; i0 < L; i0 += kRows) {
      const int64_t m = std::min(kRows, L - i0);
      simd_.gemm_nn(m, V, i0 + m, w.attn.data() + i0 * C_, C_, 1, w.vb.data(), V, out + i0 * ldo, ldo, nullptr);
    }
    simd_.gemm_nn(L, V, K, w.qd.data(), K, 1, ST, V, out, ldo, nullptr);
    if (z) {
      simd_.gemm_nt(L, 1, K, w.qd.data(), K, z, K, w.den.data(), 1, false);
      for (int64_t i = 0; i < L; ++i) {
        float den = w.den[i] + a_.eps;
        for (int64_t j = 0; j <= i; ++j) den += w.attn[i * C_ + j];
        const float* v = a_.v + (t0 + i) * st_.v + hv * V;
        for (int64_t c = 0; c < V; ++c) out[i * ldo + c] = out[i * ldo + c] / den + skip * v[c];
      }
    }

    // State: decay the whole chunk (row k of ST by last[k]) and add the chunk's rank-L update kdᵀ vb.
    simd_.gemm_nn(K, V, L, w.kd.data(), 1, K, w.vb.data(), V, ST, V, w.last.data());
    if (z) {
      for (int64_t c = 0; c < K; ++c) {
        float acc = z[c] * w.last[c];
        for (int64_t j = 0; j < L; ++j) acc += w.kd[j * K + c];
        z[c] = acc;
      }
    }
  }

  const LinearAttnArgs& a_;
  Strides st_;
  std::span<const int64_t> offsets_;
  std::span<float* const> states_, z_states_;
  float* o_;
  const LinearAttnSimd& simd_;
  bool vector_;
  int64_t C_;
};

}  // namespace

void linear_attn_step(const LinearAttnArgs& a, std::span<float* const> states, std::span<float* const> z_states,
                      float* o, SimdLevel level) {
  const int64_t n = int64_t(states.size());
  const Strides st = check_args(a, states.size(), states, z_states);
  const LinearAttnSimd& simd = linear_attn_simd(level);
  const int64_t K = a.K, V = a.V, group = a.HV / a.H;
  parallel_for(0, n * a.HV, [&](int64_t lo, int64_t hi) {
    thread_local std::vector<float> q, decay;  // this worker's, reused: decode allocates nothing
    q.resize(size_t(K)), decay.resize(size_t(K));
    for (int64_t item = lo; item < hi; ++item) {
      const int64_t s = item / a.HV, hv = item % a.HV, h = hv / group;
      const float* qs = a.q + s * st.q + h * K;
      const float* k = a.k + s * st.k + h * K;
      const float* v = a.v + s * st.v + hv * V;
      for (int64_t c = 0; c < K; ++c) q[c] = a.scale * qs[c];
      const float* dvec = nullptr;
      float dscalar = 1.0f;
      if (a.decay == LinearAttnDecay::Vector) {
        for (int64_t c = 0; c < K; ++c) decay[c] = a.g[(s * a.HV + hv) * K + c];
        simd.exp_inplace(K, decay.data());
        dvec = decay.data();
      } else {
        dscalar = std::exp(scalar_g(a, s, hv));
      }
      float den = 1.0f;
      if (a.normalize) den = simd.decay_axpy_dot(K, z_states[s] + hv * K, dvec, dscalar, 1.0f, k, q.data()) + a.eps;
      const float beta = a.beta ? a.beta[s * a.HV + hv] : 1.0f;
      const float skip = a.skip ? a.skip[hv] : 0.0f;
      float* S = states[s] + hv * V * K;
      float* out = o + (s * a.HV + hv) * V;
      for (int64_t r = 0; r < V; ++r) {
        float num = simd.decay_axpy_dot(K, S + r * K, dvec, dscalar, beta * v[r], k, q.data());
        out[r] = (a.normalize ? num / den : num) + skip * v[r];
      }
    }
  });
}

void linear_attn_prefill(const LinearAttnArgs& a, std::span<const int64_t> offsets, std::span<float* const> states,
                         std::span<float* const> z_states, float* o, SimdLevel level) {
  LINFER_CHECK(offsets.size() >= 1 && offsets[0] == 0, "linear_attn_prefill: offsets must start at 0");
  const int64_t n = int64_t(offsets.size()) - 1;
  for (int64_t s = 0; s < n; ++s)
    LINFER_CHECK(offsets[s + 1] >= offsets[s], "linear_attn_prefill: offsets decrease at sequence {}", s);
  const Strides st = check_args(a, size_t(n), states, z_states);
  const Prefill prefill(a, st, offsets, states, z_states, o, linear_attn_simd(level));

  // Split each group of v heads into blocks only as far as needed to give every thread work: a block
  // shares one q·kᵀ per chunk.
  const int64_t group = a.HV / a.H;
  const int64_t want = 2 * int64_t(num_threads());
  const int64_t blocks = std::clamp((want + n * a.H - 1) / std::max<int64_t>(n * a.H, 1), int64_t(1), group);
  const int64_t block = (group + blocks - 1) / blocks;
  parallel_for(0, n * a.H * blocks, [&](int64_t lo, int64_t hi) {
    for (int64_t item = lo; item < hi; ++item) {
      const int64_t s = item / (a.H * blocks), h = item / blocks % a.H, b = item % blocks;
      const int64_t hv0 = h * group + b * block, hv1 = std::min(h * group + (b + 1) * block, (h + 1) * group);
      if (hv0 < hv1) prefill.run(s, h, hv0, hv1);
    }
  });
}

std::vector<float> retnet_log_decays(int64_t HV) {
  std::vector<float> g(HV);
  for (int64_t h = 0; h < HV; ++h) g[h] = float(std::log1p(-std::exp2(-5.0 - double(h))));
  return g;
}

std::vector<float> lightning_log_decays(int64_t HV, int64_t layer, int64_t n_layers) {
  LINFER_CHECK(n_layers >= 1 && layer >= 0 && layer < n_layers, "lightning decays: layer {} of {}", layer, n_layers);
  const double factor = 1.0 - double(layer) / (double(n_layers) - 1.0 + 1e-5) + 1e-5;
  std::vector<float> g(HV);
  for (int64_t h = 0; h < HV; ++h) g[h] = float(-std::exp2(-8.0 * double(h + 1) / double(HV)) * factor);
  return g;
}

}  // namespace linfer::kernels
