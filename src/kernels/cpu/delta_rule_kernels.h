#pragma once
// Internal: the delta-rule kernels of one (sequence, value head), written once over GCC vector
// extensions (Vec<W>) and compiled once per SIMD level. Included only by delta_rule_portable.cpp
// (no -m flags) and delta_rule_avx2.cpp (-mavx2 -mfma); everything here has internal linkage, so
// each build gets its own copy. W = 8 needs K and V multiples of 8; W = 1 takes any head dims.
//
// Notation: S ∈ R^{K×V} per head. In memory the state is v-major ([V, K], row v = S[:, v]); the
// prefill forms transpose it once per call into k-major scratch ([K, V], row i = S[i, :]) so every
// inner loop runs over contiguous value channels with broadcast key scalars: no horizontal sums.
// q is pre-multiplied by scale, so o = Sᵀq'.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/delta_rule_impl.h"
#include "linfer/core/aligned.h"

#if defined(__AVX2__)
#include <immintrin.h>
#endif

// Vec<8> values are passed between inlined internal functions only, so the note that their calling
// convention differs with and without AVX does not concern us.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace linfer::kernels::delta_detail {
namespace {

template <int W>
struct Vec;

// 8 lanes: one AVX register in the AVX2 build, two SSE registers (or what the target has) otherwise.
template <>
struct Vec<8> {
  typedef float type __attribute__((vector_size(32)));
  typedef int32_t itype __attribute__((vector_size(32)));

  static type load(const float* p) {
    type v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  static void store(float* p, type v) { std::memcpy(p, &v, sizeof v); }
  static type set1(float x) { return type{x, x, x, x, x, x, x, x}; }  // a broadcast, not 0 + x
  static type fma(type a, type b, type c) {  // a * b + c
#if defined(__FMA__)
    return _mm256_fmadd_ps(a, b, c);
#else
    return a * b + c;
#endif
  }
  static float hsum(type v) {
#if defined(__AVX2__)
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
#else
    return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]));
#endif
  }
  // exp(x) for the log decays (x <= 0 in use; valid up to 88): Cephes-style range reduction to
  // [-ln2/2, ln2/2] and a degree-7 polynomial, ~1 ulp. Below -87.3 the result is flushed to 0.
  static type exp(type x) {
    const type xc = x < -87.33f ? set1(-87.33f) : (x > 88.0f ? set1(88.0f) : x);
    // n = round(xc / ln2): adding 1.5·2^23 leaves the rounded integer in the low mantissa bits
    const type magic = set1(12582912.0f);
    const type t = xc * 1.44269504088896341f + magic;
    const type n = t - magic;
    const type r = fma(n, set1(-1.428606765330187045e-06f), fma(n, set1(-0.693145751953125f), xc));
    type p = set1(1.9875691500e-4f);
    p = fma(p, r, set1(1.3981999507e-3f));
    p = fma(p, r, set1(8.3334519073e-3f));
    p = fma(p, r, set1(4.1665795894e-2f));
    p = fma(p, r, set1(1.6666665459e-1f));
    p = fma(p, r, set1(5.0000001201e-1f));
    p = fma(p, r * r, r + 1.0f);
    const itype bits = ((itype)t - (itype)magic + 127) << 23;  // 2^n
    const type e = p * (type)bits;
    return x < -87.33f ? set1(0.0f) : e;
  }
};

// 1 lane: plain floats, for head dims that are not multiples of 8.
template <>
struct Vec<1> {
  typedef float type;
  static type load(const float* p) { return *p; }
  static void store(float* p, type v) { *p = v; }
  static type set1(float x) { return x; }
  static type fma(type a, type b, type c) { return a * b + c; }
  static float hsum(type v) { return v; }
  static type exp(type x) { return std::exp(x); }
};

// Thread-local scratch that only grows; aligned for the vector loads.
inline float* scratch(int slot, int64_t n) {
  thread_local AlignedVector<float> buffers[4];
  if (int64_t(buffers[slot].size()) < n) buffers[slot].resize(n);
  return buffers[slot].data();
}

// q' = scale · q and k, each L2-normalised first when asked (x / sqrt(sum(x²) + 1e-6)). Returns q'·k.
template <int W>
float prepare_qk(const HeadTask& h, int64_t t, float* qn, float* kn) {
  using X = Vec<W>;
  using vf = typename X::type;
  const float* q = h.q + t * h.q_stride;
  const float* k = h.k + t * h.k_stride;
  float qs = h.scale, ks = 1.0f;
  if (h.l2norm) {
    vf sq{}, sk{};
    for (int64_t i = 0; i < h.K; i += W) {
      vf a = X::load(q + i), b = X::load(k + i);
      sq = X::fma(a, a, sq);
      sk = X::fma(b, b, sk);
    }
    qs /= std::sqrt(X::hsum(sq) + 1e-6f);
    ks /= std::sqrt(X::hsum(sk) + 1e-6f);
  }
  vf qk{};
  for (int64_t i = 0; i < h.K; i += W) {
    vf a = X::load(q + i) * qs, b = X::load(k + i) * ks;
    X::store(qn + i, a);
    X::store(kn + i, b);
    qk = X::fma(a, b, qk);
  }
  return X::hsum(qk);
}

template <int W>
void exp_vec(const float* g, float* a, int64_t n) {
  for (int64_t i = 0; i < n; i += W) Vec<W>::store(a + i, Vec<W>::exp(Vec<W>::load(g + i)));
}

template <int W>
void mul_vec(const float* x, const float* y, float* out, int64_t n) {
  for (int64_t i = 0; i < n; i += W) Vec<W>::store(out + i, Vec<W>::load(x + i) * Vec<W>::load(y + i));
}

// dst[c][r] = src[r][c] for an R×C block (state layout changes: [V, K] <-> [K, V]).
inline void transpose(const float* src, float* dst, int64_t R, int64_t C) {
  constexpr int64_t B = 16;
  for (int64_t r0 = 0; r0 < R; r0 += B)
    for (int64_t c0 = 0; c0 < C; c0 += B)
      for (int64_t r = r0; r < std::min(R, r0 + B); ++r)
        for (int64_t c = c0; c < std::min(C, c0 + B); ++c) dst[c * R + r] = src[r * C + c];
}

// ================================================================================================
// Decode: one token, straight on the v-major state. Per row v (R rows at a time, so the 2R dot
// products give independent FMA chains): kv = Σ a_i S_iv k_i, qv = Σ a_i S_iv q'_i,
// δ = β (v - kv), o_v = qv + (q'·k) δ, S_iv <- a_i S_iv + k_i δ. One read and one write of the state.
// ================================================================================================

template <int W, DeltaDecay D, int R>
void step_rows(float* rows, int64_t K, const float* kk, const float* qq, const float* kn, const float* a,
               float alpha, float beta, float qk, const float* v, float* o) {
  using X = Vec<W>;
  using vf = typename X::type;
  vf ak[R] = {}, aq[R] = {};
  for (int64_t i = 0; i < K; i += W) {
    const vf kv = X::load(kk + i), qv = X::load(qq + i);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const vf s = X::load(rows + r * K + i);
      ak[r] = X::fma(s, kv, ak[r]);
      aq[r] = X::fma(s, qv, aq[r]);
    }
  }
  vf delta[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    const float d = beta * (v[r] - alpha * X::hsum(ak[r]));
    o[r] = alpha * X::hsum(aq[r]) + qk * d;
    delta[r] = X::set1(d);
  }
  const vf av = X::set1(alpha);
  for (int64_t i = 0; i < K; i += W) {
    const vf kv = X::load(kn + i);
    vf decay = av;
    if constexpr (D == DeltaDecay::PerKey) decay = X::load(a + i);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      vf s = X::load(rows + r * K + i);
      if constexpr (D != DeltaDecay::None) s = s * decay;
      X::store(rows + r * K + i, X::fma(kv, delta[r], s));
    }
  }
}

template <int W, DeltaDecay D>
void step_head(const HeadTask& h) {
  const int64_t K = h.K, V = h.V;
  float* kn = scratch(0, 5 * K);
  float *qn = kn + K, *a = kn + 2 * K, *ak = kn + 3 * K, *aq = kn + 4 * K;
  const float qk = prepare_qk<W>(h, 0, qn, kn);
  float alpha = 1.0f;
  const float *kk = kn, *qq = qn;
  if constexpr (D == DeltaDecay::Scalar) alpha = std::exp(h.g[0]);
  if constexpr (D == DeltaDecay::PerKey) {
    exp_vec<W>(h.g, a, K);
    mul_vec<W>(a, kn, ak, K);
    mul_vec<W>(a, qn, aq, K);
    kk = ak;
    qq = aq;
  }
  const float beta = h.beta[0];
  int64_t j = 0;
  for (; j + 4 <= V; j += 4)
    step_rows<W, D, 4>(h.state + j * K, K, kk, qq, kn, a, alpha, beta, qk, h.v + j, h.o + j);
  for (; j < V; ++j) step_rows<W, D, 1>(h.state + j * K, K, kk, qq, kn, a, alpha, beta, qk, h.v + j, h.o + j);
}

// ================================================================================================
// Recurrent prefill: the decode recurrence over all T tokens with the state in k-major scratch.
// Columns are independent given the token's k, q, decay and β, so a block of NV vectors of value
// channels ([K, NV·W], 16 KiB at K = 128, NV·W = 32: L1-resident) runs over a tile of tokens before
// the next block; the tile's prepared q', k, a⊙k, a⊙q (L2-resident) are shared by the blocks.
//
// Scalar decay (GDN) is applied lazily: the scratch holds S̃ with S = c·S̃, c the running product of
// α since the last rescale, so a token costs two dot products and one axpy per state element
// instead of also a multiply. When c falls below kRescaleBelow, S̃ is multiplied by c once and c
// restarts at 1, which keeps 1/c (the factor on the update) bounded by 2^60.
// ================================================================================================

constexpr int64_t kSweepTile = 32;       // tokens prepared at once
constexpr float kRescaleBelow = 0x1p-60f;

struct SweepTile {
  float *kn, *qn, *a, *ak, *aq;   // [n, K]: k, q', exp(g), a⊙k, a⊙q (the last three PerKey only)
  float *c, *rescale, *beta, *qk; // [n]: S = c·S̃ after token t's decay (Scalar); S̃ *= rescale first
  int64_t n;
};

// kv[cols] += Σ_i S̃[i, cols] (a⊙k)_i and qv[cols] += Σ_i S̃[i, cols] (a⊙q')_i for token t.
// Inlined by force: the accumulators must stay in registers (GCC kept them in memory otherwise).
#define LINFER_DELTA_INLINE __attribute__((always_inline)) inline

template <int W, DeltaDecay D, int NV>
LINFER_DELTA_INLINE void sweep_dots(const SweepTile& tile, int64_t t, const float* S, int64_t ld, int64_t K,
                typename Vec<W>::type* kv, typename Vec<W>::type* qv) {
  using X = Vec<W>;
  const float* kk = D == DeltaDecay::PerKey ? tile.ak + t * K : tile.kn + t * K;
  const float* qq = D == DeltaDecay::PerKey ? tile.aq + t * K : tile.qn + t * K;
  for (int64_t i = 0; i < K; ++i) {
    const typename X::type ks = X::set1(kk[i]), qs = X::set1(qq[i]);
    const float* s = S + i * ld;
#pragma GCC unroll 8
    for (int n = 0; n < NV; ++n) {
      const typename X::type x = X::load(s + n * W);
      kv[n] = X::fma(x, ks, kv[n]);
      qv[n] = X::fma(x, qs, qv[n]);
    }
  }
}

// S̃[i, cols] = a_i S̃[i, cols] + k_i δ[cols] for token t. (Fusing this with token t+1's dot products
// saves a load per element but spills registers at NV = 4; it measured slower on AVX2.)
template <int W, DeltaDecay D, int NV>
LINFER_DELTA_INLINE void sweep_update(const SweepTile& tile, int64_t t, float* S, int64_t ld, int64_t K,
                  const typename Vec<W>::type* delta) {
  using X = Vec<W>;
  using vf = typename X::type;
  const float* kn = tile.kn + t * K;
  const float* a = tile.a + t * K;
  for (int64_t i = 0; i < K; ++i) {
    const vf ks = X::set1(kn[i]);
    float* s = S + i * ld;
    if constexpr (D == DeltaDecay::PerKey) {
      const vf decay = X::set1(a[i]);
#pragma GCC unroll 8
      for (int n = 0; n < NV; ++n) X::store(s + n * W, X::fma(ks, delta[n], X::load(s + n * W) * decay));
    } else {
#pragma GCC unroll 8
      for (int n = 0; n < NV; ++n) X::store(s + n * W, X::fma(ks, delta[n], X::load(s + n * W)));
    }
  }
}

// Value channels [col, col + NV·W) over the tile's tokens; their state S is the block [K, NV·W].
template <int W, DeltaDecay D, int NV>
void sweep_block(const HeadTask& h, const SweepTile& tile, int64_t t0, float* S, int64_t col) {
  using X = Vec<W>;
  using vf = typename X::type;
  const int64_t K = h.K, ld = NV * W;
  for (int64_t t = 0; t < tile.n; ++t) {
    if (D == DeltaDecay::Scalar && tile.rescale[t] != 1.0f) {
      const vf f = X::set1(tile.rescale[t]);
      for (int64_t i = 0; i < K; ++i)
#pragma GCC unroll 8
        for (int n = 0; n < NV; ++n) X::store(S + i * ld + n * W, X::load(S + i * ld + n * W) * f);
    }
    vf kv[NV] = {}, qv[NV] = {};
    sweep_dots<W, D, NV>(tile, t, S, ld, K, kv, qv);
    const float c = D == DeltaDecay::Scalar ? tile.c[t] : 1.0f;
    const vf cv = X::set1(c), beta = X::set1(tile.beta[t]), qk = X::set1(tile.qk[t]);
    const float* vin = h.v + (t0 + t) * h.v_stride + col;
    float* out = h.o + (t0 + t) * h.o_stride + col;
    vf delta[NV];
#pragma GCC unroll 8
    for (int n = 0; n < NV; ++n) {
      if constexpr (D == DeltaDecay::Scalar) {
        kv[n] = kv[n] * cv;
        qv[n] = qv[n] * cv;
      }
      delta[n] = beta * (X::load(vin + n * W) - kv[n]);
      X::store(out + n * W, X::fma(qk, delta[n], qv[n]));
      if constexpr (D == DeltaDecay::Scalar) delta[n] = delta[n] * (1.0f / c);  // S̃ += k (δ/c)ᵀ
    }
    sweep_update<W, D, NV>(tile, t, S, ld, K, delta);
  }
}

template <int W, DeltaDecay D>
void recurrent_head(const HeadTask& h) {
  const int64_t K = h.K, V = h.V, TT = kSweepTile;
  float* S = scratch(0, K * V);
  float* buf = scratch(1, 5 * TT * K + 4 * TT);
  float* per_token = buf + 5 * TT * K;
  SweepTile tile{buf,       buf + TT * K,       buf + 2 * TT * K,   buf + 3 * TT * K, buf + 4 * TT * K,
                 per_token, per_token + TT, per_token + 2 * TT, per_token + 3 * TT, 0};
  // k-major scratch in column blocks: channels [col, col + w) at S + col·K as [K, w]. Contiguous
  // blocks, because rows of a [K, V] array at a 512-byte stride map to few L1 sets and thrash.
  auto block_width = [&](int64_t col) { return col + 4 * W <= V ? 4 * W : W; };
  for (int64_t col = 0, w; col < V; col += w) {
    w = block_width(col);
    for (int64_t j = 0; j < w; ++j)
      for (int64_t i = 0; i < K; ++i) S[col * K + i * w + j] = h.state[(col + j) * K + i];
  }
  float c = 1.0f;  // Scalar: S = c·S̃
  for (int64_t t0 = 0; t0 < h.T; t0 += TT) {
    tile.n = std::min(TT, h.T - t0);
    for (int64_t t = 0; t < tile.n; ++t) {
      tile.qk[t] = prepare_qk<W>(h, t0 + t, tile.qn + t * K, tile.kn + t * K);
      tile.beta[t] = h.beta[(t0 + t) * h.bg_stride];
      if constexpr (D == DeltaDecay::Scalar) {
        c *= std::exp(h.g[(t0 + t) * h.g_stride]);
        tile.rescale[t] = 1.0f;
        if (c < kRescaleBelow) {
          tile.rescale[t] = c;
          c = 1.0f;
        }
        tile.c[t] = c;
      }
      if constexpr (D == DeltaDecay::PerKey) {
        exp_vec<W>(h.g + (t0 + t) * h.g_stride, tile.a + t * K, K);
        mul_vec<W>(tile.a + t * K, tile.kn + t * K, tile.ak + t * K, K);
        mul_vec<W>(tile.a + t * K, tile.qn + t * K, tile.aq + t * K, K);
      }
    }
    for (int64_t col = 0; col < V; col += block_width(col)) {
      if (block_width(col) == 4 * W) sweep_block<W, D, 4>(h, tile, t0, S + col * K, col);
      else sweep_block<W, D, 1>(h, tile, t0, S + col * K, col);
    }
  }
  if (D == DeltaDecay::Scalar && c != 1.0f)
    for (int64_t i = 0; i < K * V; ++i) S[i] *= c;
  for (int64_t col = 0, w; col < V; col += w) {
    w = block_width(col);
    for (int64_t j = 0; j < w; ++j)
      for (int64_t i = 0; i < K; ++i) h.state[(col + j) * K + i] = S[col * K + i * w + j];
  }
}

// ================================================================================================
// Chunked prefill (UT transform). For a chunk of L tokens with state S0 at its start, Γ_r the decay
// from the chunk start through token r (a vector over keys for KDA) and Γ_{r/j} = Γ_r / Γ_j (r >= j):
//
//   A_kk[r][j] = β_r Σ_i k_ri k_ji Γ_{r/j,i}   (j < r)      A_qk[r][j] = Σ_i q'_ri k_ji Γ_{r/j,i}  (j <= r)
//   (I + A_kk) U = diag(β) (Vc - (K ⊙ Γ) S0)                  forward substitution, row by row
//   O  = (Q' ⊙ Γ) S0 + A_qk U
//   S1 = diag(Γ_{L-1}) S0 + (K ⊙ Γ_{L-1/r})ᵀ U
//
// Every decay factor is ≤ 1: for GDN exp of a non-positive difference of the chunk-local cumsum
// of g; for KDA a running product of exp(g) ≤ 1 (Γ_{r/j} = a_r ⊙ Γ_{r-1/j}), which is the same
// quantity without an exp per (r, j, i) and never forms exp of a positive sum.
// ================================================================================================

enum class GemmInit { Zero, Accumulate, ScaleRows };

// C[M, N] = (init) + A[M, Kd] · B[Kd, N]; N a multiple of W. ScaleRows: C = diag(row_scale) C + A B.
template <int W, int MR, int NV>
void gemm_tile(int64_t Kd, const float* A, int64_t lda, const float* B, int64_t ldb, float* C, int64_t ldc,
               GemmInit init, const float* row_scale) {
  using X = Vec<W>;
  using vf = typename X::type;
  vf acc[MR][NV];
#pragma GCC unroll 8
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 8
    for (int n = 0; n < NV; ++n) {
      if (init == GemmInit::Zero) acc[m][n] = X::set1(0.0f);
      else if (init == GemmInit::Accumulate) acc[m][n] = X::load(C + m * ldc + n * W);
      else acc[m][n] = X::load(C + m * ldc + n * W) * row_scale[m];
    }
  for (int64_t p = 0; p < Kd; ++p) {
    vf b[NV];
#pragma GCC unroll 8
    for (int n = 0; n < NV; ++n) b[n] = X::load(B + p * ldb + n * W);
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) {
      const vf am = X::set1(A[m * lda + p]);
#pragma GCC unroll 8
      for (int n = 0; n < NV; ++n) acc[m][n] = X::fma(am, b[n], acc[m][n]);
    }
  }
#pragma GCC unroll 8
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 8
    for (int n = 0; n < NV; ++n) X::store(C + m * ldc + n * W, acc[m][n]);
}

template <int W>
void gemm(int64_t M, int64_t N, int64_t Kd, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
          int64_t ldc, GemmInit init, const float* row_scale = nullptr) {
  constexpr int MR = W == 8 ? 6 : 1, NV = 2;  // 12 accumulators cover FMA latency
  int64_t n0 = 0;
  for (; n0 + NV * W <= N; n0 += NV * W) {
    int64_t m = 0;
    for (; m + MR <= M; m += MR)
      gemm_tile<W, MR, NV>(Kd, A + m * lda, lda, B + n0, ldb, C + m * ldc + n0, ldc, init,
                           row_scale ? row_scale + m : nullptr);
    for (; m < M; ++m)
      gemm_tile<W, 1, NV>(Kd, A + m * lda, lda, B + n0, ldb, C + m * ldc + n0, ldc, init,
                          row_scale ? row_scale + m : nullptr);
  }
  for (; n0 < N; n0 += W)
    for (int64_t m = 0; m < M; ++m)
      gemm_tile<W, 1, 1>(Kd, A + m * lda, lda, B + n0, ldb, C + m * ldc + n0, ldc, init,
                         row_scale ? row_scale + m : nullptr);
}

template <int W>
float dot(const float* x, const float* y, int64_t n) {
  using X = Vec<W>;
  typename X::type acc{};
  for (int64_t i = 0; i < n; i += W) acc = X::fma(X::load(x + i), X::load(y + i), acc);
  return X::hsum(acc);
}

// out[0, n) = base - Σ_j coef[j] · rows[j][0, n)   (rows at stride ld)
template <int W>
void combine_rows(const float* base, const float* coef, int64_t nrows, const float* rows, int64_t ld, float* out,
                  int64_t n, float sign) {
  using X = Vec<W>;
  for (int64_t c = 0; c < n; c += W) {
    typename X::type acc = X::load(base + c);
    for (int64_t j = 0; j < nrows; ++j) acc = X::fma(X::set1(sign * coef[j]), X::load(rows + j * ld + c), acc);
    X::store(out + c, acc);
  }
}

template <int W, DeltaDecay D>
void chunked_head(const HeadTask& h, int C) {
  using X = Vec<W>;
  using vf = typename X::type;
  const int64_t K = h.K, V = h.V;
  float* S = scratch(0, K * V);                        // [K, V] k-major state
  float* buf = scratch(1, C * (6 * K + 3 * V + 2 * C + 3) + 2 * K);
  float* kn = buf;                                     // [C, K] k
  float* a = kn + C * K;                               // [C, K] exp(g) (PerKey)
  float* kqd = a + C * K;                              // [2C, K] rows 0..L: k ⊙ Γ_r; L..2L: q' ⊙ Γ_r
  float* qn = kqd + 2 * C * K;                         // [C, K] q'
  float* kendT = qn + C * K;                           // [K, C] (k ⊙ Γ_{L-1/r})ᵀ
  float* ks0 = kendT + K * C;                          // [2C, V] (K ⊙ Γ) S0 ; (Q' ⊙ Γ) S0
  float* u = ks0 + 2 * C * V;                          // [C, V]
  float* akk = u + C * V;                              // [C, C]
  float* aqk = akk + C * C;                            // [C, C]
  float* beta = aqk + C * C;                           // [C]
  float* gcum = beta + C;                              // [C] chunk-local cumsum of g (Scalar)
  float* decay_end = gcum + C;                         // [K] Γ_{L-1}
  float* prod = decay_end + K;                         // [K] running product (PerKey)
  transpose(h.state, S, V, K);

  for (int64_t c0 = 0; c0 < h.T; c0 += C) {
    const int64_t L = std::min<int64_t>(C, h.T - c0);
    float* kd = kqd;
    float* qd = kqd + L * K;
    float g_acc = 0.0f;
    for (int64_t r = 0; r < L; ++r) {
      prepare_qk<W>(h, c0 + r, qn + r * K, kn + r * K);
      beta[r] = h.beta[(c0 + r) * h.bg_stride];
      if constexpr (D == DeltaDecay::Scalar) gcum[r] = g_acc += h.g[(c0 + r) * h.g_stride];
      if constexpr (D == DeltaDecay::PerKey) exp_vec<W>(h.g + (c0 + r) * h.g_stride, a + r * K, K);
    }

    // decayed copies of k and q: Γ_r from the chunk start, Γ_{L-1/r} to its end
    if constexpr (D == DeltaDecay::PerKey) {
      std::fill(prod, prod + K, 1.0f);
      for (int64_t r = 0; r < L; ++r) {
        mul_vec<W>(prod, a + r * K, prod, K);
        mul_vec<W>(prod, kn + r * K, kd + r * K, K);
        mul_vec<W>(prod, qn + r * K, qd + r * K, K);
      }
      std::copy(prod, prod + K, decay_end);
      std::fill(prod, prod + K, 1.0f);
      for (int64_t r = L - 1; r >= 0; --r) {
        for (int64_t i = 0; i < K; ++i) kendT[i * C + r] = kn[r * K + i] * prod[i];
        mul_vec<W>(prod, a + r * K, prod, K);
      }
    } else {
      const float gl = D == DeltaDecay::Scalar ? gcum[L - 1] : 0.0f;
      for (int64_t r = 0; r < L; ++r) {
        const float gr = D == DeltaDecay::Scalar ? gcum[r] : 0.0f;
        const vf from_start = X::set1(std::exp(gr));
        for (int64_t i = 0; i < K; i += W) {
          X::store(kd + r * K + i, X::load(kn + r * K + i) * from_start);
          X::store(qd + r * K + i, X::load(qn + r * K + i) * from_start);
        }
        const float to_end = std::exp(gl - gr);
        for (int64_t i = 0; i < K; ++i) kendT[i * C + r] = kn[r * K + i] * to_end;
      }
      std::fill(decay_end, decay_end + K, std::exp(gl));
    }

    // intra-chunk interactions A_kk (strictly lower) and A_qk (lower with diagonal)
    for (int64_t j = 0; j < L; ++j) {
      if constexpr (D == DeltaDecay::PerKey) {
        std::copy(kn + j * K, kn + (j + 1) * K, prod);  // k_j ⊙ Γ_{r/j}, advanced one row at a time
        for (int64_t r = j; r < L; ++r) {
          if (r > j) mul_vec<W>(prod, a + r * K, prod, K);
          vf sk{}, sq{};
          for (int64_t i = 0; i < K; i += W) {
            const vf p = X::load(prod + i);
            sk = X::fma(p, X::load(kn + r * K + i), sk);
            sq = X::fma(p, X::load(qn + r * K + i), sq);
          }
          aqk[r * C + j] = X::hsum(sq);
          akk[r * C + j] = beta[r] * X::hsum(sk);
        }
      } else {
        for (int64_t r = j; r < L; ++r) {
          const float d = D == DeltaDecay::Scalar ? std::exp(gcum[r] - gcum[j]) : 1.0f;
          aqk[r * C + j] = d * dot<W>(qn + r * K, kn + j * K, K);
          akk[r * C + j] = beta[r] * d * dot<W>(kn + r * K, kn + j * K, K);
        }
      }
    }

    // (K ⊙ Γ) S0 and (Q' ⊙ Γ) S0 in one pass over the state
    gemm<W>(2 * L, V, K, kqd, K, S, V, ks0, V, GemmInit::Zero);
    // U: forward substitution of (I + A_kk) U = diag(β) (Vc - (K ⊙ Γ) S0)
    for (int64_t r = 0; r < L; ++r) {
      const float* vin = h.v + (c0 + r) * h.v_stride;
      const vf br = X::set1(beta[r]);
      for (int64_t c = 0; c < V; c += W)
        X::store(u + r * V + c, br * (X::load(vin + c) - X::load(ks0 + r * V + c)));
      combine_rows<W>(u + r * V, akk + r * C, r, u, V, u + r * V, V, -1.0f);
    }
    // O = (Q' ⊙ Γ) S0 + A_qk U
    for (int64_t r = 0; r < L; ++r)
      combine_rows<W>(ks0 + (L + r) * V, aqk + r * C, r + 1, u, V, h.o + (c0 + r) * h.o_stride, V, 1.0f);
    // S1 = diag(Γ_{L-1}) S0 + (K ⊙ Γ_{L-1/r})ᵀ U
    gemm<W>(K, V, L, kendT, C, u, V, S, V, D == DeltaDecay::None ? GemmInit::Accumulate : GemmInit::ScaleRows,
            decay_end);
  }
  transpose(S, h.state, K, V);
}

// ------------------------------------------------------------------------------------------------

template <int W, DeltaDecay D>
constexpr Kernels kernels_for() {
  return Kernels{step_head<W, D>, recurrent_head<W, D>, chunked_head<W, D>};
}

// The kernel table of one vector width, indexed by DeltaDecay.
template <int W>
const Kernels* kernel_tables() {
  static const Kernels tables[3] = {kernels_for<W, DeltaDecay::None>(), kernels_for<W, DeltaDecay::Scalar>(),
                                    kernels_for<W, DeltaDecay::PerKey>()};
  return tables;
}

}  // namespace
}  // namespace linfer::kernels::delta_detail
