#pragma once
// What the chunked prefill's launches share (delta_rule_prefill.h has the algorithm): the chunk and tile
// constants, the scratch layout, the launch parameters and the loads of a chunk's inputs into shared memory.
// delta_rule_prefill.cu holds the prepare pass, the state pass for every PrefillMath and the entry points;
// delta_rule_prefill_bf16.cu the passes that follow the prepare pass in the bf16 mode where the rule allows.

#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "kernels/cuda/mma.cuh"
#include "kernels/cuda/slot_pool.h"

namespace linfer::kernels::cuda::prefill {

constexpr int C = 64;                // chunk length
constexpr int kThreads = 256;        // chunk_prepare: 8 warps
constexpr int kStateThreads = 512;   // chunk_state_pass: 16 warps, 4 per scheduler, to hide the mma latency
constexpr int BV = 32;         // value columns per state-pass block
constexpr int kMaxK = 128, kMaxV = 256;
// Row strides in shared memory, chosen so that the mma fragment loads hit 32 distinct banks: row-major A
// tiles and transposed B tiles need a stride = 4 (mod 32), row-major B tiles one = 8 (mod 32).
constexpr int MS = C + 4;   // [C][C] tiles
constexpr int VS = BV + 8;  // [C][BV] tiles
// Scratch of one (chunk, value head), written by chunk_prepare, read by chunk_state_pass (every part 16-byte
// aligned):
//   M [C][C]: T = (I + A_kk)^-1 strictly below the diagonal (its unit diagonal implied), A_qk transposed on and
//             above it (M[j][i] = A_qk[i][j], j <= i); absent with PrefillMath::Bf16 (m_floats: A_qk goes to
//             Bf16Tiles as bf16, T straight to the W / U step)
//   factors [nf]: a_q [C], a_k [C], d [C], beta [C], then the state's decay over the chunk:
//     Scalar / None  a_q = scale e^{G_i} / |q_i|, a_k = e^{G_i} / |k_i|, d = e^{G_last - G_i} / |k_i|; e^{G_last}
//                    padded to 8 floats (nf = 4 C + 8)
//     PerKey         a_q = scale / |q_i|, a_k = d = 1 / |k_i| (the decay is per channel, in the tiles below);
//                    e^{G_last,x} [KT] (nf = 4 C + KT)
//   PerKey only, [C][KT] each, zero beyond K and past the sequence: q ⊙ e^{G}, k ⊙ e^{G}, k ⊙ e^{G_last - G}
//                    (every exponent <= 0), the state pass's operands in place of q and k (PrefillMath::Bf16
//                    writes them as bf16 tiles into Bf16Tiles instead: no float32 copies)
constexpr int kScalarFactors = 4 * C + 8;

// The recurrence a launch runs: the delta rule with a scalar (or no) decay, with a decay per key channel, or
// Mamba2's SSD (scalar decay, no delta correction: T = I, V' = dt x, gates from the raw dt, the D x skip).
enum class Rule { Scalar, PerKey, Ssd };

// Whether the scratch holds PerKey's three decayed [C][KT] operands as float32 (after M and the factors): with every
// arithmetic but bf16, whose passes take them as bf16 tiles (Bf16Tiles below) instead.
__host__ __device__ constexpr bool float_decay_tiles(Rule rule, MmaMath m) {
  return rule == Rule::PerKey && m != MmaMath::Bf16;
}

// PrefillMath::Bf16 (delta_rule_prefill_bf16.cu): the bf16 intermediates, each
// [n_chunks][HV] records of the sizes below (bf16 elements), in one allocation starting at kd. Row strides are
// odd multiples of 16 bytes (ldmatrix's eight rows in distinct banks), the same in global and shared memory, so
// that a chunk's tiles are contiguous copies.
constexpr int VB = BV + 8;  // row stride of the bf16 [C][BV] tiles (80 bytes)
constexpr int MB = C + 8;   // of the bf16 [C][C] tiles (144 bytes); [.][K] tiles: KB = KT + 8
struct Bf16Tiles {
  int KB, nvb;          // row stride of [.][K] tiles; value-column blocks of BV
  __nv_bfloat16* kd;    // [C][KB] Kd = d ⊙ k (PerKey: d ⊙ k ⊙ e^{G_last - G})
  __nv_bfloat16* u;     // [nvb][C][VB] U, block b holding columns [b BV, b BV + BV), zero past V
  __nv_bfloat16* h;     // [nvb][BV][KB] Ssd: the state at the chunk's start, transposed: h[b][c][x] = S[x][b BV + c]
  __nv_bfloat16* w;     // [C][KB] W (not Ssd; PerKey: β a_k ⊙ k ⊙ e^{G} until the W / U step makes it W)
  __nv_bfloat16* q;     // [C][KB] q (PerKey: q ⊙ e^{G}; not Ssd: its output pass reads C itself)
  __nv_bfloat16* a;     // [C][MB] A_qk transposed, a[j][i] = A_qk(i, j), zero below the diagonal (columns past C
                        // unwritten): the state pass's (Ssd: the output pass's), in place of the scratch's float32 M;
                        // first in the one allocation holding them all, so its start
  __nv_bfloat16* tm;    // [C][MB] Params::raw only: T, unit lower triangular (columns past C unwritten), in place of
                        // kd, u, w and q, which that state pass does without
  __host__ __device__ int64_t k_size() const { return int64_t(C) * KB; }
  __host__ __device__ static constexpr int64_t a_size() { return int64_t(C) * MB; }
  __host__ __device__ int64_t v_size() const { return int64_t(nvb) * C * VB; }
  __host__ __device__ int64_t h_size() const { return int64_t(nvb) * BV * KB; }
};

// Floats of M at the start of each (chunk, value head) of the scratch: C C, none with MmaMath::Bf16
__host__ __device__ constexpr int m_floats(MmaMath m) { return m == MmaMath::Bf16 ? 0 : C * C; }

struct Params {
  int H, HV, K, V, group;
  int KT, QS;  // K rounded up to 16 (zero-padded); row stride of the q / k tiles and of the state tile
  int nf;      // factor floats per (chunk, value head) in the scratch, after M
  int64_t sc_floats;  // scratch floats per (chunk, value head)
  float scale;
  bool l2norm, vec;  // vec: q, k, v rows aligned to 4 elements (cp.async of 16 bytes, bf16 loads of 8), else by one
  bool v_early;      // bf16 inputs: chunk_prepare copies v's chunk tile into shared memory (cp.async) right after
                     // its Gram products, and its W / U step reads it there (v_tile_fits in delta_rule_prefill.cu)
  bool k_early;      // the same for k's chunk tile (Scalar, qk_async; k_tile_fits)
  bool qk_async;     // bf16 inputs with q and k rows 16-byte aligned (pointers, strides and K multiples of 8
                     // elements): chunk_prepare (PrefillMath::Bf16 but PerKey) and the output pass (Scalar, Ssd)
                     // copy their bf16 tiles by cp.async
  bool raw;          // bf16 inputs, v's rows 16-byte aligned (V, its stride multiples of 8; Scalar: q's and k's too,
                     // qk_async): the state pass reads v (Scalar: q, k, v) as they are and computes V' = T R itself
                     // (delta_rule_prefill_raw.cu), and chunk_prepare leaves T instead of running the W / U step
  const void *q, *k, *v;      // float, or bf16 (the In of the kernels; PrefillMath::Bf16 only)
  const float *beta, *g;      // g: Scalar [T, HV], PerKey [T, HV, K], null for None
  int64_t qs, ks, vs;
  int64_t tokens;             // offsets[n]: the packed tokens
  const int64_t* offsets;     // [n + 1]
  const int64_t* seq_chunk0;  // [n + 1] first chunk of each sequence
  const int64_t* chunk_seq;   // [n_chunks]
  float* scratch;             // [n_chunks][HV][sc_floats]
  float* o;
  SlotPool state;
  const int32_t* slots;
  Bf16Tiles bf;  // PrefillMath::Bf16: written by chunk_prepare (PerKey's decayed tiles) and its W / U step
  // Ssd: g = dt · -exp(A_log), beta = dt with dt = clamp(softplus(dt_raw + dt_bias), dt_min, dt_max); o += D v
  const float *dt_raw, *A_log, *dt_bias, *D;  // dt_raw [T] rows of stride dts; the others [HV], D may be null
  int64_t dts;
  float dt_min, dt_max;
};

struct Chunk {  // a chunk's place: its sequence's head h, first token and length
  int64_t h, tok0;
  int L;
};
__device__ inline Chunk chunk_at(const Params& p, int64_t chunk, int64_t hv) {
  const int64_t seq = p.chunk_seq[chunk], tok0 = p.offsets[seq] + C * (chunk - p.seq_chunk0[seq]);
  return {hv / p.group, tok0, int(min(int64_t(C), p.offsets[seq + 1] - tok0))};
}

// The packed M tile's element M[r][c] as T(r, c) (T below the diagonal, its unit diagonal implied) and as
// A_qk(c, r) (A_qk transposed on and above the diagonal), for a value already loaded; then T(i, j) and
// A_qk(i, j) out of the tile in shared memory (row stride MS), loading only inside the triangles.
__device__ inline float t_of(float m_rc, int r, int c) { return r > c ? m_rc : r == c ? 1.f : 0.f; }
__device__ inline float aqk_of(float m_rc, int r, int c) { return r <= c ? m_rc : 0.f; }
__device__ inline float t_at(const float* m, int i, int j) { return i > j ? m[i * MS + j] : t_of(0.f, i, j); }
__device__ inline float aqk_at(const float* m, int i, int j) { return j <= i ? m[j * MS + i] : 0.f; }

// Rows [0, L) of a [C][n] tile (row r at src + r * stride, 1 <= L <= C, n <= 128) into dst (row stride QS),
// cp.async of 16 bytes when vec (n, stride and src multiples of 4 floats), else of 4; rows >= L zero-filled (their
// copies read row L - 1, which is mapped). A warp per row; kN threads. The source advances by a pointer step per
// row: no 64-bit products in the loop.
template <int kN>
__device__ void load_tile(const float* src, int64_t stride, int L, int n, bool vec, float* dst, int QS) {
  constexpr int kW = kN / 32;
  static_assert(C % kW == 0);
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  const float* s = src + min(w, L - 1) * stride;
  float* d = dst + w * QS;
  if (vec) {
    if (4 * lane >= n) return;
    s += 4 * lane, d += 4 * lane;
#pragma unroll
    for (int i = 0; i < C / kW; ++i, d += kW * QS) {  // row w + i kW
      cp_async16(d, s, w + i * kW < L);
      if (w + (i + 1) * kW < L) s += kW * stride;
    }
  } else {
    for (int i = 0; i < C / kW; ++i, d += kW * QS) {
      for (int x = lane; x < n; x += 32) cp_async4(d + x, s + x, w + i * kW < L);
      if (w + (i + 1) * kW < L) s += kW * stride;
    }
  }
}

// The same from bf16 rows (vec: n, stride and src multiples of 4 elements, 8-byte loads), widened to float32 with
// ordinary loads and stores, in two steps so that a caller can have several tiles' loads in flight before the first
// store: rows_bf16 loads this thread's pieces of every row, widen_rows stores them.
template <int kN>
struct Bf16Rows {
  uint2 x[C / (kN / 32)];  // rows w + i kN / 32 (w the warp), elements 4 lane .. + 3
};
template <int kN>
__device__ Bf16Rows<kN> rows_bf16(const __nv_bfloat16* src, int64_t stride, int L, int n) {
  constexpr int kW = kN / 32;
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  Bf16Rows<kN> t;
#pragma unroll
  for (int i = 0; i < C / kW; ++i) {
    const int r = w + i * kW;
    t.x[i] = r < L && 4 * lane < n ? __ldg(reinterpret_cast<const uint2*>(src + r * stride + 4 * lane))
                                   : make_uint2(0u, 0u);
  }
  return t;
}
template <int kN>
__device__ void widen_rows(const Bf16Rows<kN>& t, int n, float* dst, int QS) {
  constexpr int kW = kN / 32;
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  if (4 * lane >= n) return;
#pragma unroll
  for (int i = 0; i < C / kW; ++i)
    *reinterpret_cast<float4*>(dst + (w + i * kW) * QS + 4 * lane) = bf16x4_to_float4(t.x[i]);
}
template <int kN>
__device__ void load_tile(const __nv_bfloat16* src, int64_t stride, int L, int n, bool vec, float* dst, int QS) {
  if (vec) return widen_rows<kN>(rows_bf16<kN>(src, stride, L, n), n, dst, QS);
  constexpr int kW = kN / 32;
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  for (int i = 0; i < C / kW; ++i) {
    const int r = w + i * kW;
    for (int x = lane; x < n; x += 32) dst[r * QS + x] = r < L ? __bfloat162float(src[r * stride + x]) : 0.f;
  }
}

// Rows [0, L) of a chunk's q and k (head h) into qb, kb [C][QS] (columns [0, K)); rows >= L zero-filled. In: the
// inputs' element type (float: cp.async, not committed; bf16: widened on the way).
template <int kN, class In>
__device__ void load_qk(const Params& p, int64_t h, int64_t tok0, int L, float* qb, float* kb) {
  const In* q = static_cast<const In*>(p.q) + tok0 * p.qs + h * p.K;
  const In* k = static_cast<const In*>(p.k) + tok0 * p.ks + h * p.K;
  if constexpr (std::is_same_v<In, __nv_bfloat16>)
    if (p.vec) {  // both tiles' loads in flight before the first store: one wait for DRAM, not two
      const Bf16Rows<kN> a = rows_bf16<kN>(q, p.qs, L, p.K), b = rows_bf16<kN>(k, p.ks, L, p.K);
      widen_rows<kN>(a, p.K, qb, p.QS);
      widen_rows<kN>(b, p.K, kb, p.QS);
      return;
    }
  load_tile<kN>(q, p.qs, L, p.K, p.vec, qb, p.QS);
  load_tile<kN>(k, p.ks, L, p.K, p.vec, kb, p.QS);
}

// A chunk's inputs for the state pass (value head hv, q / k head h) into one stage of shared memory, as cp.async
// copies (not committed):
// q and k [C][QS] (PerKey: the scratch's decayed tiles; otherwise rows >= L zero-filled, columns [K, KT) left
// as they are), v [C][VS] (BV columns from v0, zero past V and L), M [C][MS] and the factors after it.
template <int kN, bool kPerKey>
__device__ void load_stage(const Params& p, int64_t ch, int64_t h, int64_t hv, int64_t tok0, int L, int v0, float* qb) {
  const int tid = threadIdx.x, KT = p.KT, QS = p.QS, V = p.V;
  float* vb = qb + 2 * C * QS;
  float* mb = vb + C * VS;
  const float* sc = p.scratch + (ch * p.HV + hv) * p.sc_floats;
  if constexpr (kPerKey) {  // whole tiles, zero-padded already
    load_tile<kN>(sc + C * C + p.nf, KT, C, KT, true, qb, QS);
    load_tile<kN>(sc + C * C + p.nf + C * KT, KT, C, KT, true, qb + C * QS, QS);
  } else {
    load_qk<kN, float>(p, h, tok0, L, qb, qb + C * QS);
  }
  static_assert(BV == 32 && kN % BV == 0);
  const int shift = p.vec ? 3 : 5, c = (p.vec ? 4 : 1) * (tid & ((1 << shift) - 1));  // BV / 4 or BV threads a row
  for (int r = tid >> shift; r < C; r += kN >> shift) {
    const bool ok = r < L && v0 + c < V;
    const float* src = static_cast<const float*>(p.v) + (tok0 + (ok ? r : 0)) * p.vs + hv * V + v0 + (ok ? c : 0);
    if (p.vec) cp_async16(vb + r * VS + c, src, ok);
    else cp_async4(vb + r * VS + c, src, ok);
  }
  for (int r = tid >> 4; r < C; r += kN / 16)
    cp_async16(mb + r * MS + 4 * (tid & 15), sc + r * C + 4 * (tid & 15), true);
  if (tid < p.nf / 4) cp_async16(mb + C * MS + 4 * tid, sc + C * C + 4 * tid, true);
}

// PrefillMath::Bf16: chunk_prepare<Bf16, rule> ends with the W / U step (delta_rule_prefill_bf16.cuh) into p.bf,
// allocated by bf16_tiles on the stream; then launch_bf16_passes runs the state pass, which walks the chunks and
// (but Ssd) writes the outputs too, Ssd's output pass over all chunks at once, and frees p.bf. n sequences,
// n_chunks chunks.
Bf16Tiles bf16_tiles(const Params& p, Rule rule, int64_t n_chunks, cudaStream_t stream);
size_t wu_smem(const Params& p, Rule rule);  // shared memory the W / U step needs
template <class In>  // the element type of q, k, v: float or bf16
void launch_bf16_passes(const Params& p, Rule rule, int64_t n, int64_t n_chunks, cudaStream_t stream);
// Params::raw's state pass (delta_rule_prefill_raw.cu; Scalar or PerKey), n sequences
template <Rule kRule>
void launch_state_pass_raw(const Params& p, int64_t n, cudaStream_t stream);

}  // namespace linfer::kernels::cuda::prefill
