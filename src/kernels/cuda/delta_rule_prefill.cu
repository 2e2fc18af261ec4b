// Chunked delta-rule prefill: see delta_rule_prefill.h for the algorithm and the two launches.
#include "kernels/cuda/delta_rule_prefill.h"

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/decode_common.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/delta_rule_prefill_bf16.cuh"
#include "kernels/cuda/mma.cuh"

namespace linfer::kernels::cuda {

namespace {

using namespace prefill;

// acc[u] += A · V' over k in [0, k_end) for this warp's two 8-column tiles of V' (columns col0 + 8u + gid,
// V' in shared memory as planes, row stride vs); A given by a_at(r, j) for rows r = gid, gid + 8 of the tile.
template <MmaMath M, class AAt>
__device__ inline void mma_rows_vn(float (&acc)[2][4], int k_end, AAt&& a_at, const uint32_t* vn_hi,
                                   const uint32_t* vn_lo, int vs, int col0) {
  const int gid = (threadIdx.x & 31) >> 2;
  float lo[2][4] = {};
  for (int k0 = 0; k0 < k_end; k0 += kMmaK<M>) {
    const FragA fa = frag_a<M>(a_at, k0);
#pragma unroll
    for (int u = 0; u < 2; ++u) {
      const int n = col0 + 8 * u + gid;
      mma<M>(acc[u], lo[u], fa, frag_b_planes<M>(vn_hi, vn_lo, [&](int j) { return j * vs + n; }, k0));
    }
  }
  fold<M>(acc, lo);
}

// acc[nt] += A · B over k in [0, kt), nt < n_tiles: A(r, k) = a_at(r, k) for 16 rows r, B(k, n) = bt_at(n, k) (B
// given transposed), n in 8-column tiles. kt is a multiple of 16. Tf32x3's small products go to lo (fold it
// into acc after), or to acc itself when lo is acc (fewer registers, dependency chains three times as long).
template <MmaMath M, int NT, class AAt, class BtAt>
__device__ inline void mma_rows_bt(float (&acc)[NT][4], float (&lo)[NT][4], AAt&& a_at, BtAt&& bt_at, int kt,
                                   int n_tiles) {
  const int gid = (threadIdx.x & 31) >> 2;
#pragma unroll 2
  for (int k0 = 0; k0 < kt; k0 += kMmaK<M>) {
    const FragA fa = frag_a<M>(a_at, k0);
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
      if (nt < n_tiles)
        mma<M>(acc[nt], lo[nt], fa, frag_b<M>([&](int k) { return bt_at(8 * nt + gid, k); }, k0));
  }
}

// Four elements of a q or k tile in shared memory (float32, or bf16 with bf16 inputs), as float32; one element.
__device__ inline float4 tile4(const float* t) { return *reinterpret_cast<const float4*>(t); }
__device__ inline float4 tile4(const bf16* t) { return bf16x4_to_float4(*reinterpret_cast<const uint2*>(t)); }
__device__ inline float tile1(const float* t) { return *t; }
__device__ inline float tile1(const bf16* t) { return __bfloat162float(*t); }

// PerKey: A_kk's and A_qk's dot products on the diagonal 16x16 blocks, element by element (a decay reference
// inside a block could overflow: per-token decay is unbounded): for row i and j <= i in i's block,
// sum_x k_{j,x} P_{ij,x} k_{i,x} (lanes < 16) or q_{i,x} (lanes >= 16), with P_ij = e^{G_i - G_j} built as the
// running product of the per-token decays a_t = e^{g_t} <= 1 (ab: a [C][QS]) down the block from row j: no exp
// per pair. Warp w: block b = w / 2, rows 16 b + 8 RH .. + 8 (RH = w & 1: the lower half runs the products
// through the upper half's rows first); lane: column j = 16 b + (lane & 15), and every other group of 4 channels
// (lane >> 4; the halves meet by a shuffle). Lanes whose j > i compute a value nobody uses. q and k: tiles of
// elements E (float or bf16) with row stride ld.
template <int RH, class E>
__device__ inline void diag_dots(const E* qb, const E* kb, int ld, const float* ab, int QS, int KT, float (&res)[8]) {
  const int lane = threadIdx.x & 31, jl = lane & 15, b0 = 16 * (threadIdx.x >> 6), xh = lane >> 4;
  float sq[8] = {}, sk[8] = {};
  for (int x = 4 * xh; x < KT; x += 8) {
    const float4 kj = tile4(kb + (b0 + jl) * ld + x);
    float4 P = make_float4(1.f, 1.f, 1.f, 1.f);
#pragma unroll
    for (int il = 0; il < 8 * RH + 8; ++il) {
      const float4 a = *reinterpret_cast<const float4*>(ab + (b0 + il) * QS + x);
      const bool start = il == jl;
      P.x = start ? 1.f : P.x * a.x, P.y = start ? 1.f : P.y * a.y;
      P.z = start ? 1.f : P.z * a.z, P.w = start ? 1.f : P.w * a.w;
      if (il >= 8 * RH) {
        const float4 qi = tile4(qb + (b0 + il) * ld + x);
        const float4 ki = tile4(kb + (b0 + il) * ld + x);
        const float t0 = kj.x * P.x, t1 = kj.y * P.y, t2 = kj.z * P.z, t3 = kj.w * P.w;
        float& q = sq[il - 8 * RH];
        float& k = sk[il - 8 * RH];
        q = fmaf(qi.x, t0, fmaf(qi.y, t1, fmaf(qi.z, t2, fmaf(qi.w, t3, q))));
        k = fmaf(ki.x, t0, fmaf(ki.y, t1, fmaf(ki.z, t2, fmaf(ki.w, t3, k))));
      }
    }
  }
#pragma unroll
  for (int r = 0; r < 8; ++r) {
    sq[r] += __shfl_xor_sync(0xffffffffu, sq[r], 16);
    sk[r] += __shfl_xor_sync(0xffffffffu, sk[r], 16);
    res[r] = xh ? sq[r] : sk[r];
  }
}

// The row of T's row tile 0 that holds row r of the inversion's block products: rows r and r + 1, which a warp
// writes at once, 4 rows apart (MS = 4 mod 32: 16 banks apart, no conflict).
__device__ inline int pb_row(int r) { return r & 1 ? 8 + (((r >> 1) + 4) & 7) : r >> 1; }

constexpr float kMidDecay = 20.f;  // PerKey: the largest e-fold a Gram product's decay factor may take (e^20)

// PerKey keeps G in log2 units (G log2(e)), so that each decay factor is one ex2: 2^x with results below 2^-126
// flushed to zero (MUFU alone; __expf adds four instructions per call for the denormal range)
constexpr float kLog2e = 1.4426950408889634f;
__device__ inline float exp2_ftz(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// A warp's share of chunk_prepare's Gram products: row tile mt, column tiles of 8 [n0, n0 + n).
struct GramPart {
  int mt, n0, n;
};

// chunk_prepare's shared memory: q and k (PerKey: and G) until the Gram products are done, then over them A_kk and
// A_qk in one [C][MS] tile and T in another (the inversion's block products in T's row tile 0, right of its
// diagonal block); then G (Scalar), beta and the norms. decay_operands (PerKey, bf16 inputs): q and k as bf16
// tiles [C][KB] in the first two [C][MS] tiles' places (KB = KT + 8 <= MS in floats' room: 2 KB <= 4 MS), the
// Gram products' B operands past them (row tile mt's 16 (mt + 1) rows from row gram_b_row(mt) of [kGramBRows][KB]
// bf16), then G; float32 tiles otherwise.
constexpr int kInversionFloats = 2 * C * MS;
constexpr int kGramBRows = 16 * (1 + 2 + 3 + 4);
__host__ __device__ inline int gram_b_row(int mt) { return 8 * mt * (mt + 1); }
__host__ __device__ inline int prepare_tiles(int KT, int QS, bool per_key, bool decay_operands) {
  if (decay_operands) return kInversionFloats + kGramBRows * (KT + 8) / 2 + C * QS;
  return max((per_key ? 3 : 2) * C * QS, kInversionFloats);
}

// One block per (chunk, value head): everything of a chunk that does not depend on the state. Scalar / None:
// 69 KB of shared memory (three blocks per SM); PerKey: 103 KB (two; 113 KB with bf16 inputs). In: the element
// type of q, k, v (bf16 with M = Bf16 only). With M = Bf16 q and k come in as bf16 tiles (PerKey: with bf16 inputs
// only, where that rounds nothing) and the Gram products take their fragments by ldmatrix; PerKey's decay goes
// into bf16 operand tiles built once (decay_operands above) where the chunk is not steep (below). With M = Bf16 it
// ends with the W / U step, unless Params::raw: then with T's bf16 tile for the state pass.
template <MmaMath M, Rule kRule, class In>
__global__ void __launch_bounds__(kThreads, kRule == Rule::PerKey ? 2 : 3) chunk_prepare(Params p) {
  pdl_enter();
  constexpr bool kPerKey = kRule == Rule::PerKey, kSsd = kRule == Rule::Ssd;
  extern __shared__ float4 sm4[];
  float* sm = reinterpret_cast<float*>(sm4);
  // kBf16Tiles: q and k as bf16 tiles [C][KB], zero past L and K, their Gram products by ldmatrix (PerKey: from the
  // decayed operands, kDecayOperands, unless the chunk is steep)
  constexpr bool kBf16Tiles = M == MmaMath::Bf16 && (!kPerKey || std::is_same_v<In, bf16>);
  constexpr bool kDecayOperands = kPerKey && kBf16Tiles;
  const int K = p.K, KT = p.KT, QS = p.QS, KB = KT + 8;
  float* qb = sm;              // [C][QS] q (float32 tiles)
  float* kb = qb + C * QS;     // [C][QS] k
  bf16* qh = reinterpret_cast<bf16*>(sm);           // [C][KB] q (bf16 tiles); PerKey: then q_i ⊙ e^{G_i - G_r}
  bf16* kh = reinterpret_cast<bf16*>(sm + C * MS);  // [C][KB] k, past A_kk / A_qk's tile: Ssd's W / U step finds it
                                                    // whole; PerKey: then k_i ⊙ e^{G_i - G_r}
  bf16* kg = reinterpret_cast<bf16*>(sm + kInversionFloats);  // [kGramBRows][KB] PerKey: k_j ⊙ e^{G_r - G_j}
  // [C][QS] PerKey: g, then G log2(e), G the chunk-local cumsum down each channel, then (steep chunks) e^{g}
  float* gb = kDecayOperands ? sm + kInversionFloats + kGramBRows * KB / 2 : kb + C * QS;
  using Tile = std::conditional_t<kBf16Tiles, bf16, float>;  // q's and k's tiles as the Gram products read them
  const Tile* qt = reinterpret_cast<const Tile*>(kBf16Tiles ? static_cast<void*>(qh) : qb);
  const Tile* kt = reinterpret_cast<const Tile*>(kBf16Tiles ? static_cast<void*>(kh) : kb);
  const int ld = kBf16Tiles ? KB : QS;
  float* akk = sm;             // [C][MS] A_kk strictly below the diagonal, A_qk transposed on and above it, over q
  float* tb = akk + C * MS;    // [C][MS] T: below the diagonal, and its diagonal 16x16 blocks whole (ones, zeros)
  float* pb = tb + 16;         // [3][16][16] the inversion's block products, in T's row tile 0 (rows by pb_row)
  float* gs = sm + prepare_tiles(KT, QS, kPerKey, kDecayOperands);  // [C] Scalar: G, the chunk-local cumsum of g
  float* bs = gs + C;          // [C] beta
  float* rq = bs + C;          // [C] scale / |q_i| (0 for padding rows)
  float* rk = rq + C;          // [C] 1 / |k_i|
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, gid = lane >> 2, tig = lane & 3;
  const int64_t chunk = blockIdx.x, hv = blockIdx.y;
  const Chunk here = chunk_at(p, chunk, hv);
  const int64_t h = here.h, tok0 = here.tok0;
  const int L = here.L;
  float* sc = p.scratch + (chunk * p.HV + hv) * p.sc_floats;

  if constexpr (kBf16Tiles) {
    const In* q = static_cast<const In*>(p.q) + tok0 * p.qs + h * K;
    const In* k = static_cast<const In*>(p.k) + tok0 * p.ks + h * K;
    bf16_tile(q, p.qs, L, K, KT, p.vec, p.qk_async, qh, KB);
    bf16_tile(k, p.ks, L, K, KT, p.vec, p.qk_async, kh, KB);
  } else {
    load_qk<kThreads, In>(p, h, tok0, L, qb, kb);
  }
  if constexpr (kPerKey)  // padding rows: g = 0, so G stays G_{L-1}
    load_tile<kThreads>(p.g + (tok0 * p.HV + hv) * K, int64_t(p.HV) * K, L, K, p.vec, gb, QS);
  {  // zero columns [K, KT) of the float32 tiles: q and k (unless bf16 tiles) and g, contiguous rows from ft
    float* const ft = kBf16Tiles ? gb : qb;
    const int rows = (kBf16Tiles ? 0 : 2 * C) + (kPerKey ? C : 0), pad = KT - K;
    for (int idx = tid; idx < rows * pad; idx += kThreads) ft[(idx / pad) * QS + K + idx % pad] = 0.f;
  }
  cp_async_commit();
  if (tid < C) {
    const int64_t t = tok0 + tid;
    if constexpr (kSsd) {  // padding rows: dt = 0, so g = 0 and beta = 0
      const float dt = tid < L ? detail::mamba2_dt(p.dt_raw[t * p.dts + hv], p.dt_bias[hv], p.dt_min, p.dt_max) : 0.f;
      bs[tid] = dt;
      gs[tid] = dt * -expf(p.A_log[hv]);
    } else {
      bs[tid] = tid < L ? p.beta[t * p.HV + hv] : 0.f;
      if constexpr (!kPerKey) gs[tid] = tid < L && p.g ? p.g[t * p.HV + hv] : 0.f;  // padding rows: g = 0
    }
  }
  cp_async_wait<0>();
  // Scalar with bf16 tiles: q's tile goes out as it is for the state pass's outputs, one bulk store from shared
  // memory (PerKey's q ⊙ e^{G} below), read before the Gram products' barrier, complete before the block exits
  constexpr bool kStoreQ = kRule == Rule::Scalar && kBf16Tiles;
  const bool store_q = kStoreQ && !p.raw;  // raw: the state pass reads q's rows itself
  if constexpr (kStoreQ) fence_proxy_async();
  __syncthreads();
  if (store_q && tid == 0) {
    bulk_store(p.bf.q + (chunk * p.HV + hv) * p.bf.k_size(), qh, 2u * C * KB);
    bulk_commit();
  }
  if constexpr (kPerKey) {  // G log2(e): inclusive scan of g log2(e) down each channel, a thread per channel and
    // half of 32 rows (KT <= 128: 2 KT <= kThreads), the upper half from the lower half's sum, which it adds up
    // itself; every load in flight before the first sum
    const int x = tid % KT, r0 = 32 * (tid / KT);
    const bool scans = tid < 2 * KT;
    float v[32], base = 0.f;
    if (scans) {
#pragma unroll
      for (int r = 0; r < 32; ++r) v[r] = gb[(r0 + r) * QS + x];
      if (r0) {
        float s[4] = {};
#pragma unroll
        for (int r = 0; r < 32; ++r) s[r & 3] += gb[r * QS + x];
        base = ((s[0] + s[1]) + (s[2] + s[3])) * kLog2e;
      }
    }
    __syncthreads();  // every g read before G goes over it
    if (scans)
#pragma unroll
      for (int r = 0; r < 32; ++r) gb[(r0 + r) * QS + x] = base = fmaf(v[r], kLog2e, base);
  } else if (warp == 0) {  // inclusive scan of the 64 gates, two per lane
    float a = gs[lane], b = gs[lane + 32];
    for (int d = 1; d < 32; d <<= 1) {
      const float ua = __shfl_up_sync(0xffffffffu, a, d), ub = __shfl_up_sync(0xffffffffu, b, d);
      if (lane >= d) a += ua, b += ub;
    }
    b += __shfl_sync(0xffffffffu, a, 31);
    gs[lane] = a;
    gs[lane + 32] = b;
  }
  {  // the q / k row norms: four threads per row, 4 columns at a time (x = 4 (tid & 3) + 16 i; the columns
     // [K, KT) are zero), then two shuffles
    static_assert(kThreads == 4 * C);
    const int r = tid >> 2;
    float sq = 0.f, sk = 0.f;
    for (int x = 4 * (tid & 3); x < KT; x += 16) {
      const float4 a = tile4(qt + r * ld + x), b = tile4(kt + r * ld + x);
      sq = fmaf(a.x, a.x, fmaf(a.y, a.y, fmaf(a.z, a.z, fmaf(a.w, a.w, sq))));
      sk = fmaf(b.x, b.x, fmaf(b.y, b.y, fmaf(b.z, b.z, fmaf(b.w, b.w, sk))));
    }
#pragma unroll
    for (int d = 1; d < 4; d <<= 1) {
      sq += __shfl_xor_sync(0xffffffffu, sq, d);
      sk += __shfl_xor_sync(0xffffffffu, sk, d);
    }
    if ((tid & 3) == 0) {
      rq[r] = r < L ? (p.l2norm ? 1.f / sqrtf(sq + 1e-6f) : 1.f) * p.scale : 0.f;
      rk[r] = r < L ? (p.l2norm ? 1.f / sqrtf(sk + 1e-6f) : 1.f) : 0.f;
    }
  }
  __syncthreads();

  // PerKey: a row tile's Gram products take the decay through its middle row r = 16 mt + 8 (factors e^{G_i - G_r}
  // and e^{G_r - G_j}, at most e^{kMidDecay}) unless some channel decays by more than kMidDecay over half a tile
  // (a factor could overflow, or a zero factor hide a term its partner scaled back up): then, for the whole chunk,
  // the off-diagonal blocks about their first row (factors <= 1) and the diagonal ones element by element.
  bool steep = false;
  if constexpr (kPerKey)
    steep = __syncthreads_or(tid < KT && [&] {
      for (int r = 0; r < C; r += 8)  // G_r - G_{r+8} bounds both factors of the tiles about rows r and r + 8
        if (gb[r * QS + tid] - gb[min(r + 8, C - 1) * QS + tid] > kMidDecay * kLog2e) return true;
      return false;
    }());
  if constexpr (kPerKey) {  // the state pass's decayed operands and the per-channel decay of the state
    auto at = [](const float* b, int i) { return *reinterpret_cast<const float4*>(b + i); };
    auto mul = [](float4 a, float4 b) { return make_float4(a.x * b.x, a.y * b.y, a.z * b.z, a.w * b.w); };
    auto exp4 = [](float4 a, float4 b) {  // e^{A - B} for a = A log2(e), b = B log2(e)
      return make_float4(exp2_ftz(a.x - b.x), exp2_ftz(a.y - b.y), exp2_ftz(a.z - b.z), exp2_ftz(a.w - b.w));
    };
    const Bf16Tiles& t = p.bf;
    const int64_t rec = chunk * p.HV + hv;
    for (int r = warp; r < C; r += kThreads / 32)  // a warp per row, 4 channels per lane
      for (int x = 4 * lane; x < KT; x += 128) {
        const float4 G = at(gb, r * QS + x), GL = at(gb, (C - 1) * QS + x), q = tile4(qt + r * ld + x),
                     k = tile4(kt + r * ld + x);
        const float4 eg = make_float4(exp2_ftz(G.x), exp2_ftz(G.y), exp2_ftz(G.z), exp2_ftz(G.w)), ed = exp4(GL, G);
        if constexpr (kDecayOperands)
          if (!steep) {  // the Gram products' operands about the row tiles' middle rows (below), built once: row r of
                         // tile t = r / 16 as A (q and k in place), as B of every row tile mt >= t
            const int t0 = r >> 4;
            const float4 ea = exp4(G, at(gb, (16 * t0 + 8) * QS + x));
            store4(qh + r * KB + x, 1.f, mul(q, ea));
            store4(kh + r * KB + x, 1.f, mul(k, ea));
            for (int mt = t0; mt < 4; ++mt)
              store4(kg + (gram_b_row(mt) + r) * KB + x, 1.f, mul(k, exp4(at(gb, (16 * mt + 8) * QS + x), G)));
          }
        if constexpr (float_decay_tiles(kRule, M)) {
          float* d = sc + m_floats(M) + p.nf + r * KT + x;  // q ⊙ e^G | k ⊙ e^G | k ⊙ e^{G_last - G}, [C][KT] each
          *reinterpret_cast<float4*>(d) = mul(q, eg);
          *reinterpret_cast<float4*>(d + C * KT) = mul(k, eg);
          *reinterpret_cast<float4*>(d + 2 * C * KT) = mul(k, ed);
        } else {  // the bf16 passes' tiles: the output pass's q, Kd, W's operand
          const int64_t off = rec * t.k_size() + r * t.KB + x;
          store4(t.q + off, 1.f, mul(q, eg));
          store4(t.kd + off, rk[r], mul(k, ed));
          store4(t.w + off, bs[r] * rk[r], mul(k, eg));
        }
      }
    if (tid < KT) sc[m_floats(M) + 4 * C + tid] = exp2f(gb[(C - 1) * QS + tid]);
    if constexpr (kDecayOperands) __syncthreads();  // the operand tiles are complete
  }

  // Gram products on the tensor cores: warps 0-3 K Kᵀ, warps 4-7 Q Kᵀ, 16 rows each, tiles left of the diagonal
  // and on it; then the decay mask and the norms. PerKey: the decay between rows i >= j of row tile mt goes
  // through a reference row r, (a_i ⊙ e^{G_i - G_r}) · (k_j ⊙ e^{G_r - G_j}) (never e^{G_i} e^{-G_j}: that
  // overflows): r = 16 mt + 8 where the chunk's decay allows (steep above), else r = 16 mt for the tiles left of
  // the diagonal (both factors <= 1) and the diagonal blocks element by element (diag_dots). Ssd: no A_kk, so
  // warps 0-3 skip their product.
  {
    const bool qk = warp >= 4;
    // Element (i, j <= i; k warps j < i) of a product as A_kk or A_qk (q warps, transposed over A_kk): the decay mask
    // (Scalar: masked before the exp, exponents <= 0) and the norms
    auto put = [&](int i, int j, float dot) {
      const float x = dot * (kPerKey ? 1.f : expf(gs[i] - gs[j])) * rk[j];
      if (qk) akk[j * MS + i] = x * rq[i];
      else if (j < i) akk[i * MS + j] = x * bs[i] * rk[i];
    };
    if (!(kPerKey && steep)) {
      // Row tile mt has 2 mt + 2 column tiles of 8 up to its diagonal; each warp of a group of four takes five:
      // tile 3's first five; its last three and tile 0's two; tile 2's first five; its last one and tile 1's four
      // (one row tile per warp left the warps of tile 0 idle at the barrier below for three quarters of the work)
      const int s4 = warp & 3, big = 3 - s4 / 2;
      const GramPart part[2] = {{big, s4 % 2 ? 5 : 0, s4 % 2 ? 2 * big - 3 : 5},
                                {3 - big, 0, s4 % 2 ? 8 - 2 * big : 0}};
      float acc0[5][4] = {}, acc1[4][4] = {};
      auto gram = [&](const GramPart& g, auto& acc) {
        if constexpr (kBf16Tiles) {  // B's 8-column tile nt: rows 8 (n0 + nt) .. + 7 of k (PerKey: of row tile mt's B
                                     // operand), by lanes 0-15
          const bf16* ar = a_rows(qk ? qh : kh, KB, 16 * g.mt);
          const bf16* b0 = kPerKey ? kg + gram_b_row(g.mt) * KB : kh;
          const bf16* br = b0 + (8 * g.n0 + (lane & 7)) * KB + 8 * ((lane >> 3) & 1);
          constexpr int NT = int(sizeof(acc) / sizeof(acc[0]));
          for (int k0 = 0; k0 < KT; k0 += 16) {
            uint32_t fa[4];
            ldmatrix_x4(fa, ar + k0, false);
#pragma unroll
            for (int nt = 0; nt < NT; ++nt)
              if (nt < g.n) {
                uint32_t fb[2];
                ldmatrix_x2(fb, br + nt * 8 * KB + k0);
                mma_bf16_raw(acc[nt], fa, fb);
              }
          }
        } else if constexpr (kPerKey) {  // the decay through the tile's middle row
          const float* a = (qk ? qb : kb) + 16 * g.mt * QS;  // the float32 tiles' row tile
          const float* gr = gb + (16 * g.mt + 8) * QS;
          mma_rows_bt<M>(
              acc, acc, [&](int r, int x) { return a[r * QS + x] * exp2_ftz(gb[(16 * g.mt + r) * QS + x] - gr[x]); },
              [&](int j, int x) { return kb[(j + 8 * g.n0) * QS + x] * exp2_ftz(gr[x] - gb[(j + 8 * g.n0) * QS + x]); },
              KT, g.n);
        } else {
          const float* a = (qk ? qb : kb) + 16 * g.mt * QS;
          mma_rows_bt<M>(
              acc, acc, [&](int r, int x) { return a[r * QS + x]; },
              [&](int j, int x) { return kb[(j + 8 * g.n0) * QS + x]; }, KT, g.n);
        }
      };
      auto store = [&](const GramPart& g, const auto& acc) {
#pragma unroll
        for (int nt = 0; nt < int(sizeof(acc) / sizeof(acc[0])); ++nt)
          if (nt < g.n)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
              const int i = 16 * g.mt + gid + 8 * (e >> 1), j = 8 * (g.n0 + nt) + 2 * tig + (e & 1);
              if (j <= i) put(i, j, acc[nt][e]);
            }
      };
      const bool works = !kSsd || qk;  // Ssd: no A_kk, so warps 0-3 skip their products
      if (works) {
        gram(part[0], acc0);
        if (part[1].n) gram(part[1], acc1);
      }
      if (store_q && tid == 0) bulk_wait_read<0>();
      __syncthreads();  // q, k (and G) are read: A_kk and A_qk go over them
      if (works) {
        store(part[0], acc0);
        store(part[1], acc1);
      }
    } else if constexpr (kPerKey) {  // steep: about the first row left of the diagonal, diagonal blocks apart
      const int mt = warp & 3;
      const Tile* a = (qk ? qt : kt) + 16 * mt * ld;
      const float* gr = gb + 16 * mt * QS;  // G of the reference row r
      float acc[8][4] = {}, diag[8];
      if (mt > 0)
        mma_rows_bt<M>(
            acc, acc, [&](int r, int x) { return tile1(a + r * ld + x) * exp2_ftz(gb[(16 * mt + r) * QS + x] - gr[x]); },
            [&](int j, int x) { return tile1(kt + j * ld + x) * exp2_ftz(gr[x] - gb[j * QS + x]); }, KT, 2 * mt);
      // G -> e^{g} in place, a thread per channel and half: the half's first row needs the G above it
      const int x = tid % KT, r0 = 32 * (tid / KT);
      float prev = tid < 2 * KT && r0 > 0 ? gb[(r0 - 1) * QS + x] : 0.f;
      __syncthreads();
      if (tid < 2 * KT)
        for (int r = r0; r < r0 + 32; ++r) {
          const float G = gb[r * QS + x];
          gb[r * QS + x] = exp2_ftz(G - prev);
          prev = G;
        }
      __syncthreads();
      if (warp & 1) diag_dots<1>(qt, kt, ld, gb, QS, KT, diag);
      else diag_dots<0>(qt, kt, ld, gb, QS, KT, diag);
      __syncthreads();  // q, k and G are read: A_kk and A_qk go over them
#pragma unroll
      for (int nt = 0; nt < 8; ++nt)
        if (nt < 2 * mt)
#pragma unroll
          for (int e = 0; e < 4; ++e) put(16 * mt + gid + 8 * (e >> 1), 8 * nt + 2 * tig + (e & 1), acc[nt][e]);
#pragma unroll
      for (int t = 0; t < 8; ++t) {
        const int i = 8 * warp + t, j = (i & ~15) + (lane & 15);
        if (lane < 16) {
          if (j < i) akk[i * MS + j] = diag[t] * bs[i] * rk[i] * rk[j];
        } else if (j <= i) {
          akk[j * MS + i] = diag[t] * rq[i] * rk[j];
        }
      }
    }
  }
  __syncthreads();

  // The W / U step's early tiles (bf16 inputs), copied while T is inverted: v_early, v's chunk tile [C][V] at the end
  // of the q / k tiles' space (free now); k_early (Scalar), k's chunk tile [C][KT] again, right past the
  // inversion's tiles (the Gram products' k tile is under T). Ssd: the Gram products' k tile is still whole.
  bf16* const v_early = reinterpret_cast<bf16*>(sm + prepare_tiles(KT, QS, kPerKey, kDecayOperands)) - C * p.V;
  bf16* const k_early = reinterpret_cast<bf16*>(sm + kInversionFloats);
  if constexpr (std::is_same_v<In, bf16> && !kSsd) {
    if (p.v_early)
      copy_tile_bf16(static_cast<const bf16*>(p.v) + tok0 * p.vs + hv * p.V, p.vs, L, p.V, p.V, v_early, p.V);
    if (kRule == Rule::Scalar && p.k_early)
      copy_tile_bf16(static_cast<const bf16*>(p.k) + tok0 * p.ks + h * K, p.ks, L, K, KT, k_early, KT);
    cp_async_commit();
  }

  // T = (I + A_kk)^-1 by 16x16 blocks: the four diagonal blocks by forward substitution (a thread per column),
  // then T_ij = -T_ii sum_{j <= m < i} A_im T_mj, one block distance at a time. Ssd: T = I, never read.
  if (!kSsd && tid < C) {
    const int o = 16 * (tid >> 4), c = tid & 15;
    float x[16];
#pragma unroll
    for (int r = 0; r < 16; ++r) {
      float s = 0.f;
#pragma unroll
      for (int j = 0; j < r; ++j) s = fmaf(akk[(o + r) * MS + o + j], x[j], s);
      x[r] = r == c ? 1.f : -s;  // zero above c: the sum meets only zeros there
      tb[(o + r) * MS + o + c] = x[r];
    }
  }
  __syncthreads();
  for (int d = 1; d < (kSsd ? 1 : 4); ++d) {
    for (int e = tid; e < (4 - d) * 256; e += kThreads) {
      const int i = d + (e >> 8), j = i - d, r = (e >> 4) & 15, c = e & 15;
      const float* arow = akk + (16 * i + r) * MS;
      float s = 0.f;
#pragma unroll
      for (int m = 0; m < 16; ++m) s = fmaf(arow[16 * j + m], tb[(16 * j + m) * MS + 16 * j + c], s);
      for (int b = j + 1; b < i; ++b)  // T below its diagonal blocks: distances < d, done
#pragma unroll
        for (int m = 0; m < 16; ++m) s = fmaf(arow[16 * b + m], tb[(16 * b + m) * MS + 16 * j + c], s);
      pb[(e >> 8) * 16 + pb_row(r) * MS + c] = s;
    }
    __syncthreads();
    for (int e = tid; e < (4 - d) * 256; e += kThreads) {
      const int i = d + (e >> 8), j = i - d, r = (e >> 4) & 15, c = e & 15;
      float s = 0.f;
#pragma unroll
      for (int m = 0; m < 16; ++m)
        s = fmaf(tb[(16 * i + r) * MS + 16 * i + m], pb[(e >> 8) * 16 + pb_row(m) * MS + c], s);
      tb[(16 * i + r) * MS + 16 * j + c] = -s;
    }
    __syncthreads();
  }

  if (tid < C) {
    const float eg = kPerKey ? 1.f : expf(gs[tid]), ed = kPerKey ? 1.f : expf(gs[C - 1] - gs[tid]);
    sc[m_floats(M) + tid] = rq[tid] * eg;
    sc[m_floats(M) + C + tid] = rk[tid] * eg;
    sc[m_floats(M) + 2 * C + tid] = rk[tid] * ed;
    sc[m_floats(M) + 3 * C + tid] = bs[tid];
  } else if (!kPerKey && tid < C + 8) {
    sc[m_floats(M) + 4 * C + tid - C] = tid == C ? expf(gs[C - 1]) : 0.f;
  }
  if constexpr (M == MmaMath::Bf16) {  // M as bf16: A_qk to the state (Ssd: output) pass, T to the W / U step (raw:
                                       // to the state pass)
    MPieces pieces;
    m_pieces<false>(akk, pieces);
    put_m_pieces(pieces, p.bf.a + (chunk * p.HV + hv) * Bf16Tiles::a_size());
    if constexpr (!kSsd) m_pieces<true>(tb, pieces);
    if (p.raw) return put_m_pieces(pieces, p.bf.tm + (chunk * p.HV + hv) * Bf16Tiles::a_size());
    __syncthreads();  // the factors are in the scratch, and shared memory is free
    EarlyTiles early;
    if constexpr (std::is_same_v<In, bf16>) {
      if constexpr (kSsd) early.k = kh, early.k_ld = KB;
      else if (kRule == Rule::Scalar && p.k_early) early.k = k_early, early.k_ld = KT;
      if (p.v_early) early.v = v_early;
    }
    wu_step<kRule, In>(p, chunk, hv, here, sm4, early, pieces);
    if (store_q && tid == 0) bulk_wait<0>();
  } else {
    for (int idx = tid; idx < C * C / 4; idx += kThreads) {  // M: T below the diagonal, A_qk transposed on and above
      const int r = idx >> 4, c = 4 * (idx & 15);
      const float4 a = *reinterpret_cast<const float4*>(akk + r * MS + c);
      const float4 t = *reinterpret_cast<const float4*>(tb + r * MS + c);
      *reinterpret_cast<float4*>(sc + r * C + c) =
          make_float4(c >= r ? a.x : t.x, c + 1 >= r ? a.y : t.y, c + 2 >= r ? a.z : t.z, c + 3 >= r ? a.w : t.w);
    }
  }
}

// One block per (sequence, value head, BV value columns), walking the sequence's chunks; the next chunk's
// inputs stream into the other half of a double buffer (cp.async) while this one is computed. 16 warps: warp w
// works on row tile w & 7 (of the state, or of k then q) and value columns [16 h, 16 h + 16), h = w >> 3.
// PerKey: q and k are the scratch's decayed tiles (q ⊙ e^G, k ⊙ e^G), and k ⊙ e^{G_last - G}, which only the
// state update needs, comes into k's place once phase A is done with it (no room for a third tile per stage);
// the state decays by e^{G_last} per channel (row). Ssd: no k S (the k warps idle in phase A), V' = dt v,
// and the output adds D v.
template <MmaMath M, Rule kRule>
__global__ void __launch_bounds__(kStateThreads, 1) chunk_state_pass(Params p) {
  pdl_enter();
  constexpr bool kPerKey = kRule == Rule::PerKey, kSsd = kRule == Rule::Ssd;
  extern __shared__ float4 sm4[];
  float* sm = reinterpret_cast<float*>(sm4);
  const int K = p.K, V = p.V, KT = p.KT, QS = p.QS;
  const int stage_floats = 2 * C * QS + C * VS + C * MS + p.nf;  // q | k | v | M | factors
  // The state tile [BV][QS], St[c][x] = state[hv][v0 + c][x], and V' [C][VS] as B operands: stored split
  // (tf32_split: hi and lo planes), once by the warp that computes them rather than by every warp that reads
  // them. V' goes over the chunk's q tile (done with after phase A) where that is large enough.
  uint32_t* St_hi = reinterpret_cast<uint32_t*>(sm + 2 * stage_floats);
  uint32_t* St_lo = St_hi + BV * QS;
  const bool vn_in_q = QS >= 2 * VS;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, gid = lane >> 2, tig = lane & 3;
  const int rt = warp & 7, half = warp >> 3;  // row tile; value columns 8 nt, nt in {2 half, 2 half + 1}
  const int64_t seq = blockIdx.x, hv = blockIdx.y, h = hv / p.group;
  const int v0 = int(blockIdx.z) * BV;
  float* st = p.state.base + int64_t(p.slots[seq]) * p.state.slot_stride + hv * int64_t(V) * K;
  const int64_t ch0 = p.seq_chunk0[seq], ch1 = p.seq_chunk0[seq + 1], off0 = p.offsets[seq], off1 = p.offsets[seq + 1];

  auto prefetch = [&](int64_t ch, int s) {
    float* qb = sm + s * stage_floats;
    const int64_t tok0 = off0 + C * (ch - ch0);
    load_stage<kStateThreads, kPerKey>(p, ch, h, hv, tok0, int(min(int64_t(C), off1 - tok0)), v0, qb);
    if (!kPerKey && vn_in_q)  // V' of two chunks ago went over q's zero columns [K, KT)
      for (int idx = tid; idx < C * (KT - K); idx += kStateThreads) qb[idx / (KT - K) * QS + K + idx % (KT - K)] = 0.f;
    cp_async_commit();
  };
  if (ch0 < ch1) prefetch(ch0, 0);
  if constexpr (!kPerKey) {  // columns [K, KT) of q and k in both stages stay zero: cp.async never writes them
    const int pad = KT - K;   // (PerKey: it copies the scratch's zeros there)
    for (int idx = tid; idx < 4 * C * pad; idx += kStateThreads) {
      const int row = idx / pad, s = row / (2 * C);
      sm[s * stage_floats + (row % (2 * C)) * QS + K + idx % pad] = 0.f;
    }
  }
  float* St = reinterpret_cast<float*>(St_hi);  // plain float32 at the start and the end
  for (int idx = tid; idx < BV * KT; idx += kStateThreads) {
    const int c = idx / KT, x = idx % KT;
    St[c * QS + x] = x < K && v0 + c < V ? st[int64_t(v0 + c) * K + x] : 0.f;
  }
  __syncthreads();
  // Warp w keeps state rows [16 rt, 16 rt + 16) x its 16 value columns in registers as mma accumulators (when
  // those rows exist); each element of the tile belongs to one thread, which alone reads and writes it in St.
  const bool owns_s = rt < KT / 16;
  auto s_at = [&](int u, int e) {
    return (8 * (2 * half + u) + 2 * tig + (e & 1)) * QS + 16 * rt + gid + 8 * (e >> 1);
  };
  float sacc[2][4];
#pragma unroll
  for (int u = 0; u < 2; ++u)
#pragma unroll
    for (int e = 0; e < 4; ++e) sacc[u][e] = owns_s ? St[s_at(u, e)] : 0.f;
  auto store_state_split = [&] {
#pragma unroll
    for (int u = 0; u < 2; ++u)
#pragma unroll
      for (int e = 0; e < 4; ++e) plane_split<M>(sacc[u][e], St_hi[s_at(u, e)], St_lo[s_at(u, e)]);
  };
  if (owns_s) store_state_split();
  // q row tile of warps 4-7 and 12-15 (phase A's q S, phase C's output): warps w and w + 8 share a scheduler
  // and take tiles m and 3 - m, so that A_qk's triangle costs every scheduler the same
  const int mq = half ? 7 - rt : rt - 4;
  const float skip = kSsd && p.D ? p.D[hv] : 0.f;

  for (int64_t ch = ch0; ch < ch1; ++ch) {
    const int s = int((ch - ch0) & 1);
    const int64_t tok0 = off0 + C * (ch - ch0);
    const int L = int(min(int64_t(C), off1 - tok0));
    if (ch + 1 < ch1) {
      prefetch(ch + 1, s ^ 1);
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();  // this chunk's inputs and the state tile are in place
    float* qb = sm + s * stage_floats;
    float* kb = qb + C * QS;
    float* vb = kb + C * QS;  // v, then Y = beta (v - a_k (k S)) in place
    const float* mb = vb + C * VS;
    const float* fa_q = mb + C * MS;
    const float *fa_k = fa_q + C, *fd = fa_q + 2 * C, *fbeta = fa_q + 3 * C;
    const float* decay = fa_q + 4 * C;  // e^{G_last}: [0] (Scalar), per key channel (PerKey)
    uint32_t* Vn_hi = vn_in_q ? reinterpret_cast<uint32_t*>(qb) : St_lo + BV * QS;
    uint32_t* Vn_lo = Vn_hi + C * VS;

    // A: warps with rt < 4 Y = beta (v - a_k (k S)) for k rows 16 rt, the others the inter-chunk output
    // a_q (q S) for q rows 16 mq; 16 rows x 16 columns each
    float oacc[2][4] = {};
    if (!kSsd || rt >= 4) {
      const bool is_k = rt < 4;
      const int mt = is_k ? rt : mq, r0 = 16 * mt + gid, r1 = r0 + 8;
      const float* a = (is_k ? kb : qb) + 16 * mt * QS;
      float acc[2][4] = {}, lo[2][4] = {};
#pragma unroll 2
      for (int k0 = 0; k0 < KT; k0 += kMmaK<M>) {
        const FragA fa = frag_a<M>([&](int r, int x) { return a[r * QS + x]; }, k0);
#pragma unroll
        for (int u = 0; u < 2; ++u) {
          const int n = (8 * (2 * half + u) + gid) * QS;
          mma<M>(acc[u], lo[u], fa, frag_b_planes<M>(St_hi, St_lo, [&](int x) { return n + x; }, k0));
        }
      }
      fold<M>(acc, lo);
      if (is_k) {
#pragma unroll
        for (int u = 0; u < 2; ++u)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int r = e < 2 ? r0 : r1;
            float& y = vb[r * VS + 8 * (2 * half + u) + 2 * tig + (e & 1)];
            y = fbeta[r] * (y - fa_k[r] * acc[u][e]);
          }
      } else {
#pragma unroll
        for (int u = 0; u < 2; ++u)
#pragma unroll
          for (int e = 0; e < 4; ++e) oacc[u][e] = fa_q[e < 2 ? r0 : r1] * acc[u][e];
      }
    }
    __syncthreads();
    if constexpr (kPerKey) {  // k ⊙ e^{G_last - G} into k's place, for phase C
      load_tile<kStateThreads>(p.scratch + (ch * p.HV + hv) * p.sc_floats + m_floats(M) + p.nf + 2 * C * KT, KT, C, KT,
                               true, kb, QS);
      cp_async_commit();
    }

    // B: V' = T Y (T unit lower triangular), warp: 16 rows x 8 columns (column tile w >> 2); the four warps of
    // a scheduler take the four row tiles (T's triangle makes the lower tiles dearer). Ssd: V' = beta v.
    if constexpr (kSsd) {
      const int nt = warp >> 2, i0 = 16 * (warp & 3) + gid;
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int i = i0 + 8 * (e >> 1), at = i * VS + 8 * nt + 2 * tig + (e & 1);
        plane_split<M>(fbeta[i] * vb[at], Vn_hi[at], Vn_lo[at]);
      }
    } else {
      const int nt = warp >> 2, mt = (warp + nt) & 3, i0 = 16 * mt + gid, i1 = i0 + 8, n = 8 * nt + gid;
      float acc[1][4] = {}, lo[1][4] = {};
      for (int k0 = 0; k0 < 16 * (mt + 1); k0 += kMmaK<M>)
        mma<M>(acc[0], lo[0], frag_a<M>([&](int r, int j) { return t_at(mb, 16 * mt + r, j); }, k0),
               frag_b<M>([&](int j) { return vb[j * VS + n]; }, k0));
      fold<M>(acc, lo);
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int at = (e < 2 ? i0 : i1) * VS + 8 * nt + 2 * tig + (e & 1);
        plane_split<M>(acc[0][e], Vn_hi[at], Vn_lo[at]);
      }
    }
    if constexpr (kPerKey) cp_async_wait<0>();  // (the next chunk's prefetch too: issued before phase A)
    __syncthreads();

    // C: S <- e^{G_last} S + (K ⊙ d)ᵀ V' (this warp's state rows and columns), and the q warps:
    // O = a_q (q S) + A_qk V'
    if (owns_s) {
      const int m0 = 16 * rt + gid;
#pragma unroll
      for (int u = 0; u < 2; ++u)
#pragma unroll
        for (int e = 0; e < 4; ++e) sacc[u][e] *= decay[kPerKey ? m0 + 8 * (e >> 1) : 0];
      mma_rows_vn<M>(sacc, L,  // rows >= L of V' and d are zero
                     [&](int r, int j) { return kb[j * QS + 16 * rt + r] * fd[j]; }, Vn_hi, Vn_lo, VS, 16 * half);
      store_state_split();
    }
    if (rt >= 4) {
      const int i0 = 16 * mq + gid, i1 = i0 + 8;
      mma_rows_vn<M>(oacc, 16 * (mq + 1), [&](int r, int j) { return aqk_at(mb, 16 * mq + r, j); }, Vn_hi, Vn_lo,
                     VS, 16 * half);
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int i = e < 2 ? i0 : i1;
        if (i >= L) continue;
        float* out = p.o + (tok0 + i) * p.HV * V + hv * V;
#pragma unroll
        for (int u = 0; u < 2; ++u) {
          const int cl = 8 * (2 * half + u) + 2 * tig + (e & 1), c = v0 + cl;
          if (c < V) out[c] = kSsd ? oacc[u][e] + skip * vb[i * VS + cl] : oacc[u][e];
        }
      }
    }
    __syncthreads();  // done with this stage (the next prefetch overwrites it) and St is complete
  }
  if (owns_s)
#pragma unroll
    for (int u = 0; u < 2; ++u)
#pragma unroll
      for (int e = 0; e < 4; ++e) St[s_at(u, e)] = sacc[u][e];
  __syncthreads();
  for (int idx = tid; idx < BV * K; idx += kStateThreads) {
    const int c = idx / K, x = idx % K;
    if (v0 + c < V) st[int64_t(v0 + c) * K + x] = St[c * QS + x];
  }
}

bool aligned(const void* ptr, uintptr_t bytes) { return reinterpret_cast<uintptr_t>(ptr) % bytes == 0; }
bool aligned16(const void* ptr) { return aligned(ptr, 16); }

// chunk_prepare's tiles (floats) for a rule, with bf16 inputs (PerKey: decay_operands) or not
int prepare_tiles(const Params& p, Rule rule, bool bf16_in) {
  return prepare_tiles(p.KT, p.QS, rule == Rule::PerKey, rule == Rule::PerKey && bf16_in);
}
size_t prepare_smem(const Params& p, Rule rule, bool bf16_in) {
  return sizeof(float) * (prepare_tiles(p, rule, bf16_in) + 4 * C);
}

// Whether chunk_prepare's v_early tile (the last C V bf16 of the q / k tiles' space) lies past what the Gram
// products leave there (A_kk, M, the inversion's blocks) and past what the W / U step writes before it reads v (T,
// its k and v operands, its factors).
bool v_tile_fits(const Params& p, Rule rule) {
  const int at = 4 * prepare_tiles(p, rule, true) - 2 * C * p.V;  // bytes
  return at >= 4 * kInversionFloats && at >= wu_operand_bytes(p.KT + 8, (p.V + BV - 1) / BV);
}
// Whether chunk_prepare's k_early tile (C KT bf16 right past the inversion's tiles) ends before v_early's tile (or
// the q / k tiles' end) and starts past what the W / U step writes before it reads k (T, the factors, its k operand).
bool k_tile_fits(const Params& p) {
  const int at = 4 * kInversionFloats, end = 4 * prepare_tiles(p, Rule::Scalar, true) - (p.v_early ? 2 * C * p.V : 0);
  return at + 2 * C * p.KT <= end && wu_t_k_bytes(p.KT + 8) <= at;
}
size_t state_smem(const Params& p) {
  return sizeof(float) *
         (2 * (2 * C * p.QS + C * VS + C * MS + p.nf) + 2 * BV * p.QS + (p.QS >= 2 * VS ? 0 : 2 * C * VS));
}

template <MmaMath M, Rule kRule, class In>
void launch(const Params& p_in, int64_t n, int64_t n_chunks, cudaStream_t stream) {
  constexpr bool kBf16Passes = M == MmaMath::Bf16;
  Params p = p_in;
  if constexpr (std::is_same_v<In, bf16>) {
    const bool v_async = aligned16(p.v) && p.vs % 8 == 0 && p.V % 8 == 0;
    p.qk_async = aligned16(p.q) && aligned16(p.k) && p.qs % 8 == 0 && p.ks % 8 == 0 && p.K % 8 == 0;
    p.raw = (kRule == Rule::PerKey || (kRule == Rule::Scalar && p.qk_async)) && v_async && p.tokens <= INT32_MAX;
    p.v_early = kRule != Rule::Ssd && !p.raw && v_async && v_tile_fits(p, kRule);
    p.k_early = kRule == Rule::Scalar && !p.raw && p.qk_async && k_tile_fits(p);
  }
  if constexpr (kBf16Passes) p.bf = bf16_tiles(p, kRule, n_chunks, stream);
  const size_t smem1 =
      std::max(prepare_smem(p, kRule, std::is_same_v<In, bf16>), kBf16Passes && !p.raw ? wu_smem(p, kRule) : 0);
  cuda_check(cudaFuncSetAttribute(chunk_prepare<M, kRule, In>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  int(smem1)),
             "chunk_prepare shared memory");
  launch_kernel("chunk_prepare", {dim3(unsigned(n_chunks), unsigned(p.HV)), kThreads, smem1, stream},
                chunk_prepare<M, kRule, In>, p);
  if constexpr (kBf16Passes) {
    launch_bf16_passes<In>(p, kRule, n, n_chunks, stream);
  } else {
    const size_t smem2 = state_smem(p);
    cuda_check(cudaFuncSetAttribute(chunk_state_pass<M, kRule>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    int(smem2)),
               "chunk_state_pass shared memory");
    launch_kernel("chunk_state_pass",
                  {dim3(unsigned(n), unsigned(p.HV), unsigned((p.V + BV - 1) / BV)), kStateThreads, smem2, stream},
                  chunk_state_pass<M, kRule>, p);
  }
}

// bf16 inputs: PrefillMath::Bf16 only (the entry points pass no other)
template <Rule kRule>
void launch(const Params& p, int64_t n, int64_t n_chunks, PrefillMath math, bool bf16_in, cudaStream_t stream) {
  if (bf16_in) return launch<MmaMath::Bf16, kRule, bf16>(p, n, n_chunks, stream);
  switch (math) {
    case MmaMath::Tf32: launch<MmaMath::Tf32, kRule, float>(p, n, n_chunks, stream); break;
    case MmaMath::Tf32x3: launch<MmaMath::Tf32x3, kRule, float>(p, n, n_chunks, stream); break;
    case MmaMath::Bf16: launch<MmaMath::Bf16, kRule, float>(p, n, n_chunks, stream); break;
  }
}


// What both entry points share: the chunk table (host, checked before the device is touched), then, once p holds
// the shape and the inputs, the scratch and the two launches.
struct ChunkTable {
  std::vector<int64_t> table;  // [offsets | seq_chunk0 | chunk_seq]
  int64_t n = 0, n_chunks = 0;
};

ChunkTable chunk_table(std::span<const int64_t> offsets, const char* what) {
  LINFER_CUDA_CHECK(!offsets.empty() && offsets[0] == 0, what, ": offsets must start at 0");
  ChunkTable t;
  t.n = int64_t(offsets.size()) - 1;
  const int64_t n = t.n;
  t.table.assign(2 * (n + 1), 0);
  std::copy(offsets.begin(), offsets.end(), t.table.begin());
  for (int64_t i = 0; i < n; ++i) {
    LINFER_CUDA_CHECK(offsets[i + 1] >= offsets[i], what, ": offsets decrease at sequence ", i);
    t.table[n + 1 + i + 1] = t.table[n + 1 + i] + (offsets[i + 1] - offsets[i] + C - 1) / C;
  }
  t.n_chunks = t.table[2 * n + 1];
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = t.table[n + 1 + i]; c < t.table[n + 1 + i + 1]; ++c) t.table.push_back(i);
  return t;
}

void run(Params p, Rule rule, const ChunkTable& t, PrefillMath math, bool bf16_in, cudaStream_t stream) {
  const int64_t n = t.n;
  p.KT = (p.K + 15) / 16 * 16;
  p.QS = (p.KT + 31) / 32 * 32 + 4;
  const bool per_key = rule == Rule::PerKey;
  p.nf = per_key ? 4 * C + p.KT : kScalarFactors;
  p.sc_floats = m_floats(bf16_in ? MmaMath::Bf16 : math) + p.nf + (float_decay_tiles(rule, math) ? 3 * C * p.KT : 0);
  int64_t* d_table = nullptr;
  cuda_check(cudaMallocAsync(reinterpret_cast<void**>(&d_table), t.table.size() * sizeof(int64_t), stream),
             "cudaMallocAsync (chunked prefill chunk table)");
  // pageable source: staged before the call returns, so the table may go out of scope
  cuda_check(cudaMemcpyAsync(d_table, t.table.data(), t.table.size() * sizeof(int64_t), cudaMemcpyHostToDevice,
                             stream),
             "upload of the chunk table");
  cuda_check(cudaMallocAsync(reinterpret_cast<void**>(&p.scratch),
                             size_t(t.n_chunks * p.HV * p.sc_floats) * sizeof(float), stream),
             "cudaMallocAsync (chunked prefill scratch)");
  p.offsets = d_table, p.seq_chunk0 = d_table + n + 1, p.chunk_seq = d_table + 2 * (n + 1);
  p.tokens = t.table[n];
  switch (rule) {
    case Rule::Scalar: launch<Rule::Scalar>(p, n, t.n_chunks, math, bf16_in, stream); break;
    case Rule::PerKey: launch<Rule::PerKey>(p, n, t.n_chunks, math, bf16_in, stream); break;
    case Rule::Ssd: launch<Rule::Ssd>(p, n, t.n_chunks, math, bf16_in, stream); break;
  }
  cuda_check(cudaFreeAsync(p.scratch, stream), "cudaFreeAsync (chunked prefill scratch)");
  cuda_check(cudaFreeAsync(d_table, stream), "cudaFreeAsync (chunked prefill chunk table)");
}

}  // namespace

bool delta_rule_prefill_supported(const DeltaRuleShape& s) {
  return s.K > 0 && s.K <= kMaxK && s.K % 4 == 0 && s.V > 0 && s.V <= kMaxV && s.H > 0 && s.HV % s.H == 0;
}

namespace {

// The entry points' checks and parameters, for float (In = float) or bf16 (In = __nv_bfloat16) inputs: the
// delta rule's q, k, v; Mamba2's C, B, x in those roles. vec: rows aligned to 4 elements (16-byte cp.async of
// float rows, 8-byte loads of bf16 ones) and every stride a multiple of 4.
template <class In>
void set_inputs(Params& p, const In* q, const In* k, const In* v, int64_t qs, int64_t ks, int64_t vs) {
  p.q = q, p.k = k, p.v = v, p.qs = qs, p.ks = ks, p.vs = vs;
  const uintptr_t a = 4 * sizeof(In);
  p.vec = aligned(q, a) && aligned(k, a) && aligned(v, a) && qs % 4 == 0 && ks % 4 == 0 && vs % 4 == 0 && p.V % 4 == 0;
}

template <class In>
void delta_rule_run(const DeltaRuleShape& s, const In* q, const In* k, const In* v, const float* beta, const float* g,
                    int64_t qs, int64_t ks, int64_t vs, std::span<const int64_t> offsets, SlotPool state,
                    const int32_t* slots, float* o, cudaStream_t stream, PrefillMath math) {
  LINFER_CUDA_CHECK(delta_rule_prefill_supported(s), "cuda delta_rule_prefill: unsupported shape H = ", s.H,
                    ", HV = ", s.HV, ", K = ", s.K, ", V = ", s.V, " (needs K <= ", kMaxK,
                    " and a multiple of 4, V <= ", kMaxV, ", HV a multiple of H)");
  const ChunkTable t = chunk_table(offsets, "cuda delta_rule_prefill");
  if (t.n_chunks == 0) return;
  LINFER_CUDA_CHECK(q && k && v && beta && o && slots && state.base && (s.decay == DeltaDecay::None || g),
                    "cuda delta_rule_prefill: q, k, v, beta, (g,) o, slots and the state pool must be given");
  Params p{};
  p.H = int(s.H), p.HV = int(s.HV), p.K = int(s.K), p.V = int(s.V), p.group = int(s.HV / s.H);
  p.scale = delta_rule_scale(s);
  p.l2norm = s.l2norm_qk;
  p.beta = beta;
  p.g = s.decay == DeltaDecay::None ? nullptr : g;
  set_inputs(p, q, k, v, qs ? qs : s.H * s.K, ks ? ks : s.H * s.K, vs ? vs : s.HV * s.V);
  p.vec = p.vec && (s.decay != DeltaDecay::PerKey || aligned16(p.g));
  p.o = o, p.state = state, p.slots = slots;
  run(p, s.decay == DeltaDecay::PerKey ? Rule::PerKey : Rule::Scalar, t, math, std::is_same_v<In, bf16>, stream);
}

template <class In>
void mamba2_run(const Mamba2Dims& d, const Mamba2Params& params, const In* x, const float* dt, const In* B,
                const In* Cm, int64_t xs, int64_t dts, int64_t Bs, int64_t Cs, std::span<const int64_t> offsets,
                SlotPool state, const int32_t* slots, float* y, cudaStream_t stream, PrefillMath math) {
  LINFER_CUDA_CHECK(mamba2_prefill_supported(d), "cuda mamba2_prefill: unsupported shape H = ", d.H, ", P = ", d.P,
                    ", N = ", d.N, ", G = ", d.G, " (needs N <= ", kMaxK, " and a multiple of 4, P <= ", kMaxV,
                    ", H a multiple of G)");
  const ChunkTable t = chunk_table(offsets, "cuda mamba2_prefill");
  if (t.n_chunks == 0) return;
  LINFER_CUDA_CHECK(x && dt && B && Cm && params.A_log && params.dt_bias && y && slots && state.base,
                    "cuda mamba2_prefill: x, dt, B, C, A_log, dt_bias, y, slots and the state pool must be given");
  Params p{};  // the delta rule's roles: q = C, k = B, v = x, value heads = heads, q / k heads = groups
  p.H = int(d.G), p.HV = int(d.H), p.K = int(d.N), p.V = int(d.P), p.group = int(d.H / d.G);
  p.scale = 1.f;
  p.l2norm = false;
  set_inputs(p, Cm, B, x, Cs ? Cs : d.G * d.N, Bs ? Bs : d.G * d.N, xs ? xs : d.H * d.P);
  p.dt_raw = dt, p.dts = dts ? dts : d.H;
  p.A_log = params.A_log, p.dt_bias = params.dt_bias, p.D = params.D;
  p.dt_min = params.dt_min, p.dt_max = params.dt_max;
  p.o = y, p.state = state, p.slots = slots;
  run(p, Rule::Ssd, t, math, std::is_same_v<In, bf16>, stream);
}

}  // namespace

void delta_rule_prefill(const DeltaRuleShape& s, const DeltaRuleInputs& in, std::span<const int64_t> offsets,
                        SlotPool state, const int32_t* slots, float* o, cudaStream_t stream, PrefillMath math) {
  delta_rule_run(s, in.q, in.k, in.v, in.beta, in.g, in.q_stride, in.k_stride, in.v_stride, offsets, state, slots,
                 o, stream, math);
}

void delta_rule_prefill(const DeltaRuleShape& s, const DeltaRuleInputsBf16& in, std::span<const int64_t> offsets,
                        SlotPool state, const int32_t* slots, float* o, cudaStream_t stream) {
  delta_rule_run(s, in.q, in.k, in.v, in.beta, in.g, in.q_stride, in.k_stride, in.v_stride, offsets, state, slots,
                 o, stream, PrefillMath::Bf16);
}

bool mamba2_prefill_supported(const Mamba2Dims& d) {
  return d.N > 0 && d.N <= kMaxK && d.N % 4 == 0 && d.P > 0 && d.P <= kMaxV && d.G > 0 && d.H % d.G == 0;
}

void mamba2_prefill(const Mamba2Dims& d, const Mamba2Params& params, const Mamba2Inputs& in,
                    std::span<const int64_t> offsets, SlotPool state, const int32_t* slots, float* y,
                    cudaStream_t stream, PrefillMath math) {
  mamba2_run(d, params, in.x, in.dt, in.B, in.C, in.x_stride, in.dt_stride, in.B_stride, in.C_stride, offsets, state,
             slots, y, stream, math);
}

void mamba2_prefill(const Mamba2Dims& d, const Mamba2Params& params, const Mamba2InputsBf16& in,
                    std::span<const int64_t> offsets, SlotPool state, const int32_t* slots, float* y,
                    cudaStream_t stream) {
  mamba2_run(d, params, in.x, in.dt, in.B, in.C, in.x_stride, in.dt_stride, in.B_stride, in.C_stride, offsets, state,
             slots, y, stream, PrefillMath::Bf16);
}

}  // namespace linfer::kernels::cuda
