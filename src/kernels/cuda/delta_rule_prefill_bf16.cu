// The chunked prefill's state pass for PrefillMath::Bf16 with bf16 operand tiles (rules Scalar / None and Ssd;
// delta_rule_prefill.h has the algorithm). Same blocks, warps and products as chunk_state_pass in
// delta_rule_prefill.cu, but every operand a product reads is stored once in shared memory as bf16, so that
// each fragment is one ldmatrix (no per-element loads and conversions at every use: the float32 tiles made
// the bf16 products as slow as one TF32 product, H200 2026-12-03):
//
//   staging   the next chunk's q, k, v, M and factors, float32, streaming in by cp.async while this one runs
//   working   q, k [C][KT] bf16, T and A_qk (transposed, zeros outside their triangles) [C][C] bf16, v and the
//             factors float32: converted from the staging area once per chunk
//   state     float32 in the mma accumulators of its owners, with a bf16 copy St [BV][KT] for phase A
//   Y, V', d ⊙ V'  [C][BV] bf16, written by the warps that compute them
//
// The state update (k ⊙ d)ᵀ V' is computed as kᵀ (d ⊙ V'), so that k's tile serves as it is (transposed by
// ldmatrix). Row strides are odd multiples of 16 bytes: ldmatrix's eight rows fall in distinct banks.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/delta_rule_prefill_impl.cuh"
#include "kernels/cuda/launch.cuh"

namespace linfer::kernels::cuda::prefill {

namespace {

using bf16 = __nv_bfloat16;

constexpr int VB = BV + 8;  // row stride of the bf16 [C][BV] tiles (80 bytes)
constexpr int MB = C + 8;   // of the bf16 [C][C] tiles (144 bytes); q, k and St: KB = KT + 8
static_assert(kStateThreads == C * C / 8, "M is converted by a thread per 8 elements");

// Byte offsets in shared memory.
struct Layout {
  int stage;      // float32: q | k [C][QS] | v [C][VS] | M [C][MS] | factors [nf] (load_stage's stage)
  int qk;         // bf16 q [C][KB] then k [C][KB]
  int v, f;       // float32 v [C][VS], factors [nf]
  int t, a;       // bf16 [C][MB]: T, and At[j][i] = A_qk(i, j)
  int s;          // bf16 St [BV][KB]
  int y, vn, vd;  // bf16 [C][VB]: Y, V', d ⊙ V'
  int total;
};

__host__ __device__ inline Layout layout(int QS, int KT, int nf) {
  const int KB = KT + 8;
  Layout l{};
  int o = 0;
  auto take = [&](int& at, int bytes) { at = o, o += bytes; };  // every size a multiple of 16 bytes
  take(l.stage, 4 * (2 * C * QS + C * VS + C * MS + nf));
  take(l.qk, 2 * 2 * C * KB);
  take(l.v, 4 * C * VS);
  take(l.f, 4 * nf);
  take(l.t, 2 * C * MB);
  take(l.a, 2 * C * MB);
  take(l.s, 2 * BV * KB);
  take(l.y, 2 * C * VB);
  take(l.vn, 2 * C * VB);
  take(l.vd, 2 * C * VB);
  l.total = o;
  return l;
}

__device__ inline void mma2(float (&acc)[2][4], const uint32_t (&a)[4], const uint32_t (&b)[4]) {
  const uint32_t b0[2] = {b[0], b[1]}, b1[2] = {b[2], b[3]};
  mma_bf16_raw(acc[0], a, b0);
  mma_bf16_raw(acc[1], a, b1);
}

// One block of 16 warps per (sequence, value head, BV value columns), as chunk_state_pass: warp w owns state
// rows [16 (w & 7), +16) x columns [16 (w >> 3), +16); in phase A warps with w & 7 < 4 compute k S, the others q S.
template <Rule kRule>
__global__ void __launch_bounds__(kStateThreads, 1) chunk_state_pass_bf16(Params p) {
  pdl_enter();
  constexpr bool kSsd = kRule == Rule::Ssd;
  extern __shared__ float4 sm4[];
  char* sm = reinterpret_cast<char*>(sm4);
  const int K = p.K, V = p.V, KT = p.KT, QS = p.QS, KB = KT + 8;
  const Layout l = layout(QS, KT, p.nf);
  float* stage = reinterpret_cast<float*>(sm + l.stage);
  bf16* qb = reinterpret_cast<bf16*>(sm + l.qk);
  bf16* kb = qb + C * KB;
  float* vw = reinterpret_cast<float*>(sm + l.v);
  float* fw = reinterpret_cast<float*>(sm + l.f);
  bf16 *tb = reinterpret_cast<bf16*>(sm + l.t), *ab = reinterpret_cast<bf16*>(sm + l.a);
  bf16* sb = reinterpret_cast<bf16*>(sm + l.s);
  bf16 *yb = reinterpret_cast<bf16*>(sm + l.y), *vnb = reinterpret_cast<bf16*>(sm + l.vn),
       *vdb = reinterpret_cast<bf16*>(sm + l.vd);
  const float *fa_q = fw, *fa_k = fw + C, *fd = fw + 2 * C, *fbeta = fw + 3 * C;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, gid = lane >> 2, tig = lane & 3, mat = lane >> 3;
  const int rt = warp & 7, half = warp >> 3;
  const int64_t seq = blockIdx.x, hv = blockIdx.y, h = hv / p.group;
  const int v0 = int(blockIdx.z) * BV;
  float* st = p.state.base + int64_t(p.slots[seq]) * p.state.slot_stride + hv * int64_t(V) * K;
  const int64_t ch0 = p.seq_chunk0[seq], ch1 = p.seq_chunk0[seq + 1], off0 = p.offsets[seq], off1 = p.offsets[seq + 1];

  auto prefetch = [&](int64_t ch) {
    const int64_t tok0 = off0 + C * (ch - ch0);
    load_stage<kStateThreads, false>(p, ch, h, hv, tok0, int(min(int64_t(C), off1 - tok0)), v0, stage);
    cp_async_commit();
  };
  if (ch0 < ch1) prefetch(ch0);
  const int pad = KT - K;  // columns [K, KT) of the staged q and k stay zero: cp.async never writes them
  for (int idx = tid; idx < 2 * C * pad; idx += kStateThreads) stage[idx / pad * QS + K + idx % pad] = 0.f;

  // This thread's state elements: rows x(e) = 16 rt + gid + 8 (e >> 1), columns c(u, e) = 16 half + 8 u + 2 tig +
  // (e & 1), where those rows exist
  const bool owns_s = rt < KT / 16;
  auto xs = [&](int e) { return 16 * rt + gid + 8 * (e >> 1); };
  auto cs = [&](int u, int e) { return 16 * half + 8 * u + 2 * tig + (e & 1); };
  float sacc[2][4];
#pragma unroll
  for (int u = 0; u < 2; ++u)
#pragma unroll
    for (int e = 0; e < 4; ++e)
      sacc[u][e] = owns_s && xs(e) < K && v0 + cs(u, e) < V ? st[int64_t(v0 + cs(u, e)) * K + xs(e)] : 0.f;
  auto store_state_bf16 = [&] {
#pragma unroll
    for (int u = 0; u < 2; ++u)
#pragma unroll
      for (int e = 0; e < 4; ++e) sb[cs(u, e) * KB + xs(e)] = __float2bfloat16_rn(sacc[u][e]);
  };
  if (owns_s) store_state_bf16();
  const int mq = half ? 7 - rt : rt - 4;  // q row tile of warps 4-7 and 12-15 (as chunk_state_pass)
  const float skip = kSsd && p.D ? p.D[hv] : 0.f;

  for (int64_t ch = ch0; ch < ch1; ++ch) {
    const int64_t tok0 = off0 + C * (ch - ch0);
    const int L = int(min(int64_t(C), off1 - tok0));
    cp_async_wait<0>();
    __syncthreads();  // the chunk is staged, and the last one is done with the working tiles
    {
      const float* ms = stage + 2 * C * QS + C * VS;
      const int x = 8 * (lane & 15);  // q, k: a half warp per row, 8 columns per lane
      if (x < KT)
#pragma unroll
        for (int i = 0; i < 2 * C / (2 * kStateThreads / 32); ++i) {
          const int r = 2 * warp + (lane >> 4) + i * (2 * kStateThreads / 32);
          const float4 a = *reinterpret_cast<const float4*>(stage + r * QS + x),
                       b = *reinterpret_cast<const float4*>(stage + r * QS + x + 4);
          *reinterpret_cast<uint4*>(qb + r * KB + x) =
              make_uint4(bf16_pair(a.x, a.y), bf16_pair(a.z, a.w), bf16_pair(b.x, b.y), bf16_pair(b.z, b.w));
        }
      {  // M (r, c): T below the diagonal, A_qk(c, r) on and above it; a thread per 8 elements
        const int r = tid >> 3, c = 8 * (tid & 7);
        const float4 m0 = *reinterpret_cast<const float4*>(ms + r * MS + c),
                     m1 = *reinterpret_cast<const float4*>(ms + r * MS + c + 4);
        const float m[8] = {m0.x, m0.y, m0.z, m0.w, m1.x, m1.y, m1.z, m1.w};
        float t[8], a[8];
#pragma unroll
        for (int i = 0; i < 8; ++i) {
          t[i] = r > c + i ? m[i] : r == c + i ? 1.f : 0.f;
          a[i] = r <= c + i ? m[i] : 0.f;
        }
        *reinterpret_cast<uint4*>(tb + r * MB + c) =
            make_uint4(bf16_pair(t[0], t[1]), bf16_pair(t[2], t[3]), bf16_pair(t[4], t[5]), bf16_pair(t[6], t[7]));
        *reinterpret_cast<uint4*>(ab + r * MB + c) =
            make_uint4(bf16_pair(a[0], a[1]), bf16_pair(a[2], a[3]), bf16_pair(a[4], a[5]), bf16_pair(a[6], a[7]));
      }
      const float* vs = stage + 2 * C * QS;
      for (int idx = tid; idx < C * BV / 4; idx += kStateThreads) {
        const int at = idx / (BV / 4) * VS + 4 * (idx % (BV / 4));
        *reinterpret_cast<float4*>(vw + at) = *reinterpret_cast<const float4*>(vs + at);
      }
      for (int idx = tid; idx < p.nf; idx += kStateThreads) fw[idx] = ms[C * MS + idx];
    }
    __syncthreads();
    if (ch + 1 < ch1) prefetch(ch + 1);

    // A: Y = beta (v - a_k (k S)) for k rows 16 rt (rt < 4), a_q (q S) for q rows 16 mq (the others)
    float oacc[2][4] = {};
    if (!kSsd || rt >= 4) {
      const bool is_k = rt < 4;
      const int m0 = 16 * (is_k ? rt : mq);
      const bf16* arow = (is_k ? kb : qb) + (m0 + (lane & 7) + (mat & 1) * 8) * KB + (mat >> 1) * 8;
      const bf16* brow = sb + (16 * half + (lane & 7) + (mat >> 1) * 8) * KB + (mat & 1) * 8;
      float acc[2][4] = {};
#pragma unroll
      for (int k0 = 0; k0 < kMaxK; k0 += 16)
        if (k0 < KT) {
          uint32_t fa[4], fb[4];
          ldmatrix_x4(fa, arow + k0, false);
          ldmatrix_x4(fb, brow + k0, false);
          mma2(acc, fa, fb);
        }
#pragma unroll
      for (int u = 0; u < 2; ++u)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int r = m0 + gid + 8 * h, c = 16 * half + 8 * u + 2 * tig;
          if (is_k) {
            const float y0 = fbeta[r] * (vw[r * VS + c] - fa_k[r] * acc[u][2 * h]),
                        y1 = fbeta[r] * (vw[r * VS + c + 1] - fa_k[r] * acc[u][2 * h + 1]);
            *reinterpret_cast<uint32_t*>(yb + r * VB + c) = bf16_pair(y0, y1);
          } else {
            oacc[u][2 * h] = fa_q[r] * acc[u][2 * h];
            oacc[u][2 * h + 1] = fa_q[r] * acc[u][2 * h + 1];
          }
        }
    }
    __syncthreads();

    // B: V' = T Y (Ssd: beta v), warp: 16 rows x 8 columns, stored with d ⊙ V' beside it
    {
      const int nt = warp >> 2, mt = (warp + nt) & 3;
      float acc[4] = {};
      if constexpr (kSsd) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int i = 16 * mt + gid + 8 * (e >> 1);
          acc[e] = fbeta[i] * vw[i * VS + 8 * nt + 2 * tig + (e & 1)];
        }
      } else {
        const bf16* arow = tb + (16 * mt + (lane & 7) + (mat & 1) * 8) * MB + (mat >> 1) * 8;
        const bf16* brow = yb + ((lane & 7) + (mat & 1) * 8) * VB + 8 * nt;
#pragma unroll
        for (int k0 = 0; k0 < C; k0 += 16)
          if (k0 <= 16 * mt) {
            uint32_t fa[4], fb[2];
            ldmatrix_x4(fa, arow + k0, false);
            ldmatrix_x2_trans(fb, brow + k0 * VB);
            mma_bf16_raw(acc, fa, fb);
          }
      }
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int r = 16 * mt + gid + 8 * h, c = 8 * nt + 2 * tig;
        *reinterpret_cast<uint32_t*>(vnb + r * VB + c) = bf16_pair(acc[2 * h], acc[2 * h + 1]);
        *reinterpret_cast<uint32_t*>(vdb + r * VB + c) = bf16_pair(fd[r] * acc[2 * h], fd[r] * acc[2 * h + 1]);
      }
    }
    __syncthreads();

    // C: S <- e^{G_last} S + kᵀ (d ⊙ V') for the owners; O = a_q (q S) + A_qk V' for the q warps. A and B from
    // [k][m] and [k][n] tiles: ldmatrix .trans, tiles (m | n 0-7, k 0-7), (m 8-15, k 0-7), (m 0-7, k 8-15), ...
    const int ta = (lane & 7) + (mat >> 1) * 8, tb_row = (lane & 7) + (mat & 1) * 8;
    const bf16* brow_d = vdb + tb_row * VB + 16 * half + (mat >> 1) * 8;
    if (owns_s) {
      const float decay = fw[4 * C];
#pragma unroll
      for (int u = 0; u < 2; ++u)
#pragma unroll
        for (int e = 0; e < 4; ++e) sacc[u][e] *= decay;
      const bf16* arow = kb + ta * KB + 16 * rt + (mat & 1) * 8;
#pragma unroll
      for (int k0 = 0; k0 < C; k0 += 16)
        if (k0 < L) {  // rows >= L of k and of d ⊙ V' are zero
          uint32_t fa[4], fb[4];
          ldmatrix_x4(fa, arow + k0 * KB, true);
          ldmatrix_x4(fb, brow_d + k0 * VB, true);
          mma2(sacc, fa, fb);
        }
      store_state_bf16();  // read again only in the next chunk's phase A, after two barriers
    }
    if (rt >= 4) {
      const bf16* arow = ab + ta * MB + 16 * mq + (mat & 1) * 8;
      const bf16* brow = vnb + tb_row * VB + 16 * half + (mat >> 1) * 8;
#pragma unroll
      for (int k0 = 0; k0 < C; k0 += 16)
        if (k0 <= 16 * mq) {
          uint32_t fa[4], fb[4];
          ldmatrix_x4(fa, arow + k0 * MB, true);
          ldmatrix_x4(fb, brow + k0 * VB, true);
          mma2(oacc, fa, fb);
        }
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int i = 16 * mq + gid + 8 * (e >> 1);
        if (i >= L) continue;
        float* out = p.o + (tok0 + i) * p.HV * V + hv * V;
#pragma unroll
        for (int u = 0; u < 2; ++u) {
          const int c = cs(u, e);
          if (v0 + c < V) out[v0 + c] = kSsd ? oacc[u][e] + skip * vw[i * VS + c] : oacc[u][e];
        }
      }
    }
  }
  if (owns_s)
#pragma unroll
    for (int u = 0; u < 2; ++u)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        if (xs(e) < K && v0 + cs(u, e) < V) st[int64_t(v0 + cs(u, e)) * K + xs(e)] = sacc[u][e];
}

template <Rule kRule>
void launch_rule(const Params& p, int64_t n, cudaStream_t stream) {
  const size_t smem = size_t(layout(p.QS, p.KT, p.nf).total);
  cuda_check(cudaFuncSetAttribute(chunk_state_pass_bf16<kRule>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  int(smem)),
             "chunk_state_pass_bf16 shared memory");
  launch_kernel("chunk_state_pass_bf16",
                {dim3(unsigned(n), unsigned(p.HV), unsigned((p.V + BV - 1) / BV)), kStateThreads, smem, stream},
                chunk_state_pass_bf16<kRule>, p);
}

}  // namespace

void launch_bf16_state_pass(const Params& p, Rule rule, int64_t n, cudaStream_t stream) {
  if (rule == Rule::Ssd) launch_rule<Rule::Ssd>(p, n, stream);
  else launch_rule<Rule::Scalar>(p, n, stream);
}

}  // namespace linfer::kernels::cuda::prefill
