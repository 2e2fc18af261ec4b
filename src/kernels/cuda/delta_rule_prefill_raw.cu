// The state pass of PrefillMath::Bf16 for GDN / DeltaNet (Rule::Scalar) when q, k and v are bf16 rows it can copy as
// they are (Params::raw: 16-byte aligned, strides and K, V multiples of 8 elements). The prepare pass then leaves
// only T = (I + A_kk)^-1 and A_qk (bf16 [C][MB] tiles) and the row factors: ~19 KB per chunk and value head instead
// of the W / U step's ~83 (W, U, Kd and q's tile), and no W / U products. Per chunk, one block of 8 warps per
// (sequence, value head, BV value columns), the state in mma accumulators with a bf16 copy St:
//
//   P = k S, Q = q S         from the same fragments of S (k and q as they come: the norms and gates are row factors)
//   R = β ⊙ (v - a_k ⊙ P)    bf16, [C][BV]
//   V' = T R                 T unit lower triangular: 16-row tile m takes R's rows up to its own
//   O = a_q ⊙ Q + A_qk V'    written from registers
//   S <- e^{G_last} S + kᵀ (d ⊙ V')
//
// k's tile serves both k S and the state update (d, the norm and the decay to the chunk's end, is a row factor of
// V'). A chunk's q, k and v rows come by TMA (tensor_map.h: a box of 64 rows per instruction, 128- and 64-byte
// swizzled rows that ldmatrix reads without conflicts; 16-byte cp.async pieces from every thread made this pass
// 1.5x slower, 64 row-sized bulk copies an earlier one 2.3x), T, A_qk and the factors by bulk copies, all on one
// mbarrier per stage, two chunks ahead (3 stages of 56 KB: one block per SM).
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/delta_rule_prefill_bf16.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/tensor_map.h"

namespace linfer::kernels::cuda::prefill {

namespace {

// The input rows' tensor maps (built by launch_state_pass_raw): q and k in boxes of 64 columns x 64 tokens of one
// head (128-byte rows, 128-byte swizzle), v in boxes of the block's BV columns x 64 tokens (64-byte rows and swizzle)
struct RawMaps {
  CUtensorMap q, k, v;
};

constexpr int kRawStages = 3;
// A stage (bytes, 1024-aligned: the swizzle's period): q [2 boxes][C][128 B] | k (the same) | v [C][64 B] | T [C][MB]
// | A_qk transposed [C][MB] (bf16) | the factors a_q, a_k, d, β [C] and e^{G_last} padded to 8 (float)
constexpr int kBoxBytes = C * 128, kQkBytes = 2 * kBoxBytes, kVBytes = C * 2 * BV, kMBytes = 2 * C * MB;
constexpr int kSq = 0, kSk = kQkBytes, kSv = 2 * kQkBytes, kSt = kSv + kVBytes, kSa = kSt + kMBytes, kSf = kSa + kMBytes;
constexpr int kStageBytes = (kSf + 4 * kScalarFactors + 1023) / 1024 * 1024;
static_assert(BV == 32, "v's rows are one 64-byte swizzle span");
// 1024 bytes of room to align the stages, the stages, then St [BV][KB], R, V' and d ⊙ V' [C][VB] (bf16) each, then an
// mbarrier per stage
__host__ __device__ inline int raw_smem_bytes(int KB) {
  return 1024 + kRawStages * kStageBytes + 2 * (BV * KB + 3 * C * VB) + 8 * kRawStages;
}

// Byte offsets in a stage's tiles as TMA's swizzle lays them out: element (r, x) of q's or k's (16-byte piece
// (x / 8) % 8 of a 128-byte row at piece ^ (r % 8)); element (r, c) of v's (piece c / 8 of a 64-byte row at
// piece ^ ((r / 2) % 4))
__device__ inline int qk_at(int r, int x) {
  return (x >> 6) * kBoxBytes + r * 128 + ((((x >> 3) & 7) ^ (r & 7)) << 4) + 2 * (x & 7);
}
__device__ inline int v_at(int r, int c) { return r * 64 + ((((c >> 3) & 3) ^ ((r >> 1) & 3)) << 4) + 2 * (c & 7); }

// A barrier of the `threads` threads (whole warps) that name `id` (1 .. 15; __syncthreads is 0)
__device__ inline void named_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;" ::"r"(id), "r"(threads) : "memory");
}

__global__ void __launch_bounds__(kThreads, 1)
    chunk_state_pass_raw(Params p, Bf16Tiles t, const __grid_constant__ RawMaps maps) {
  pdl_enter();
  extern __shared__ float4 sm4[];
  uint8_t* sm = reinterpret_cast<uint8_t*>(sm4);
  sm += (1024 - smem_u32(sm) % 1024) % 1024;
  const int K = p.K, V = p.V, KT = p.KT, KB = t.KB;
  bf16* St = reinterpret_cast<bf16*>(sm + kRawStages * kStageBytes);
  bf16* Rt = St + BV * KB;
  bf16* Vn = Rt + C * VB;
  bf16* Vd = Vn + C * VB;
  uint64_t* full = reinterpret_cast<uint64_t*>(Vd + C * VB);  // [kRawStages]: stage s has landed
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, gid = lane >> 2, tig = lane & 3;
  const int64_t seq = blockIdx.x, hv = blockIdx.y, h = hv / p.group;
  const int v0 = int(blockIdx.z) * BV, vn = min(BV, V - v0);
  float* st = p.state.base + int64_t(p.slots[seq]) * p.state.slot_stride + hv * int64_t(V) * K;
  const int64_t ch0 = p.seq_chunk0[seq], ch1 = p.seq_chunk0[seq + 1], off0 = p.offsets[seq], off1 = p.offsets[seq + 1];
  const int boxes = KT > 64 ? 2 : 1;

  auto prefetch = [&](int64_t ch, int s) {  // thread 0: chunk ch into stage s (rows past the sequence: zeroed below)
    uint8_t* d = sm + s * kStageBytes;
    const int tok0 = int(off0 + C * (ch - ch0));
    const int64_t rec = ch * p.HV + hv;
    const unsigned fbytes = 4u * kScalarFactors;
    mbar_arrive_expect_tx(&full[s], 2 * boxes * kBoxBytes + kVBytes + 2 * kMBytes + fbytes);
    for (int b = 0; b < boxes; ++b) {
      tensor_load_3d(d + kSq + b * kBoxBytes, &maps.q, 64 * b, int(h), tok0, &full[s]);
      tensor_load_3d(d + kSk + b * kBoxBytes, &maps.k, 64 * b, int(h), tok0, &full[s]);
    }
    tensor_load_3d(d + kSv, &maps.v, v0, int(hv), tok0, &full[s]);
    bulk_load(d + kSt, t.tm + rec * t.a_size(), kMBytes, &full[s]);
    bulk_load(d + kSa, t.a + rec * t.a_size(), kMBytes, &full[s]);
    bulk_load(d + kSf, p.scratch + rec * p.sc_floats, fbytes, &full[s]);
  };
  if (tid == 0) {
    for (int s = 0; s < kRawStages; ++s) mbar_init(&full[s], 1);
    mbar_init_fence();
  }
  __syncthreads();
  if (tid == 0)
    for (int i = 0; i < kRawStages - 1 && ch0 + i < ch1; ++i) prefetch(ch0 + i, i);

  // This thread's state elements: rows x = 16 warp + gid + 8 (e >> 1), columns c = 16 g + 8 u + 2 tig + (e & 1)
  const bool owns_s = warp < KT / 16;
  const int m0 = 16 * (warp & 3), n0 = 16 * (warp >> 2);  // this warp's tile of P, Q, R, V' and O
  auto xs = [&](int e) { return 16 * warp + gid + 8 * (e >> 1); };
  auto cs = [&](int g, int u, int e) { return 16 * g + 8 * u + 2 * tig + (e & 1); };
  float sacc[2][2][4];
#pragma unroll
  for (int g = 0; g < 2; ++g)
#pragma unroll
    for (int u = 0; u < 2; ++u)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        sacc[g][u][e] = owns_s && xs(e) < K && cs(g, u, e) < vn ? st[int64_t(v0 + cs(g, u, e)) * K + xs(e)] : 0.f;
  auto store_state_bf16 = [&] {
#pragma unroll
    for (int g = 0; g < 2; ++g)
#pragma unroll
      for (int u = 0; u < 2; ++u)
#pragma unroll
        for (int e = 0; e < 4; ++e) St[cs(g, u, e) * KB + xs(e)] = __float2bfloat16_rn(sacc[g][u][e]);
  };
  for (int i = tid; i < BV * KB; i += kThreads) St[i] = __float2bfloat16_rn(0.f);  // rows past K, padding
  __syncthreads();
  if (owns_s) store_state_bf16();
  __syncthreads();
  // ldmatrix rows of this lane: A fragments of rows m0 .. + 16 (row ra, columns ca + k0); kᵀ's A fragments (rows of
  // k: rt + k0, columns ct)
  const int ra = m0 + (lane & 7) + ((lane >> 3) & 1) * 8, ca = (lane >> 4) * 8;
  const int rt = (lane & 7) + (lane >> 4) * 8, ct = 16 * warp + ((lane >> 3) & 1) * 8;

  for (int64_t ch = ch0; ch < ch1; ++ch) {
    const int n_in = int(ch - ch0), i = n_in % kRawStages;  // chunks before this one
    uint8_t* cur = sm + i * kStageBytes;
    const float* f = reinterpret_cast<const float*>(cur + kSf);  // a_q [C], a_k [C], d [C], β [C], e^{G_last}
    const int64_t tok0 = off0 + C * (ch - ch0);
    const int L = int(min(int64_t(C), off1 - tok0));
    if (tid == 0 && ch + kRawStages - 1 < ch1) prefetch(ch + kRawStages - 1, (i + kRawStages - 1) % kRawStages);
    mbar_wait(&full[i], unsigned(n_in / kRawStages) & 1u);
    if (L < C) {  // a sequence's last chunk: rows past it (the next sequence's) to zero in k and v, so that nothing
                  // of them reaches this state (q's only reach outputs that are not stored)
      for (int idx = tid; idx < (C - L) * 20; idx += kThreads) {  // 16 pieces of k's rows, 4 of v's
        const int r = L + idx / 20, piece = idx % 20;
        uint8_t* at = piece < 16 ? cur + kSk + (piece >> 3) * kBoxBytes + r * 128 + 16 * (piece & 7)
                                 : cur + kSv + r * 64 + 16 * (piece - 16);
        *reinterpret_cast<uint4*>(at) = make_uint4(0u, 0u, 0u, 0u);
      }
      fence_proxy_async();  // before TMA writes this stage again
      __syncthreads();
    }

    float pacc[2][4] = {}, oacc[2][4] = {};  // k S, then R; q S, then O
    {
      const bf16* br = b_rows(St, KB, n0);
#pragma unroll
      for (int k0 = 0; k0 < kMaxK; k0 += 16)
        if (k0 < KT) {
          uint32_t fa[4], fb[4];
          ldmatrix_x4(fb, br + k0, false);
          ldmatrix_x4(fa, cur + kSk + qk_at(ra, ca + k0), false);
          mma2(pacc, fa, fb);
          ldmatrix_x4(fa, cur + kSq + qk_at(ra, ca + k0), false);
          mma2(oacc, fa, fb);
        }
    }
#pragma unroll
    for (int j = 0; j < 2; ++j)  // R = β (v - a_k P): zero in rows past L (β = 0 there)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int r = m0 + gid + 8 * e, c = n0 + 8 * j + 2 * tig;
        const float2 vv = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(cur + kSv + v_at(r, c)));
        const float ak = f[C + r], beta = f[3 * C + r];
        pacc[j][2 * e] = beta * (vv.x - ak * pacc[j][2 * e]);
        pacc[j][2 * e + 1] = beta * (vv.y - ak * pacc[j][2 * e + 1]);
      }
    store_pairs(pacc, Rt, VB, m0, n0);
    named_sync(1 + (warp >> 2), kThreads / 2);  // R's columns n0 .. + 16 are complete (the warps that share n0)
    {
      float vacc[2][4] = {};
      t_times(reinterpret_cast<const bf16*>(cur + kSt), Rt, VB, m0, n0, vacc);
      store_pairs(vacc, Vn, VB, m0, n0);
#pragma unroll
      for (int u = 0; u < 2; ++u)
#pragma unroll
        for (int e = 0; e < 4; ++e) vacc[u][e] *= f[2 * C + m0 + gid + 8 * (e >> 1)];
      store_pairs(vacc, Vd, VB, m0, n0);
    }
    __syncthreads();
    if (owns_s) {  // S <- e^{G_last} S + kᵀ (d ⊙ V')
      const float decay = f[4 * C];
#pragma unroll
      for (int g = 0; g < 2; ++g)
#pragma unroll
        for (int u = 0; u < 2; ++u)
#pragma unroll
          for (int e = 0; e < 4; ++e) sacc[g][u][e] *= decay;
#pragma unroll
      for (int k0 = 0; k0 < C; k0 += 16)
        if (k0 < L) {  // rows >= L of k and V' are zero
          uint32_t fa[4];
          ldmatrix_x4(fa, cur + kSk + qk_at(rt + k0, ct), true);
#pragma unroll
          for (int g = 0; g < 2; ++g) {
            uint32_t fb[4];
            ldmatrix_x4(fb, b_cols(Vd, VB, 16 * g) + k0 * VB, true);
            mma2(sacc[g], fa, fb);
          }
        }
      store_state_bf16();
    }
    {  // O = a_q ⊙ (q S) + A_qk V', rows m0 .. + 16 and columns n0 .. + 16 of the block's
#pragma unroll
      for (int u = 0; u < 2; ++u)
#pragma unroll
        for (int e = 0; e < 4; ++e) oacc[u][e] *= f[m0 + gid + 8 * (e >> 1)];
      const bf16 *ar = a_cols(reinterpret_cast<const bf16*>(cur + kSa), MB, m0), *br = b_cols(Vn, VB, n0);
      for (int k0 = 0; k0 <= m0; k0 += 16) {  // A_qk is zero right of the diagonal
        uint32_t fa[4], fb[4];
        ldmatrix_x4(fa, ar + k0 * MB, true);
        ldmatrix_x4(fb, br + k0 * VB, true);
        mma2(oacc, fa, fb);
      }
      store_outputs(p, oacc, tok0, L, hv, v0 + n0, m0);
    }
    __syncthreads();  // St is complete; this stage is free for the copies issued at the next chunk's start
  }
  if (owns_s)
#pragma unroll
    for (int g = 0; g < 2; ++g)
#pragma unroll
      for (int u = 0; u < 2; ++u)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          if (xs(e) < K && cs(g, u, e) < vn) st[int64_t(v0 + cs(g, u, e)) * K + xs(e)] = sacc[g][u][e];
}

}  // namespace

void launch_state_pass_raw(const Params& p, int64_t n, cudaStream_t stream) {
  const RawMaps maps{bf16_rows_map(p.q, p.tokens, p.H, p.K, p.qs, 64, C, CU_TENSOR_MAP_SWIZZLE_128B),
                     bf16_rows_map(p.k, p.tokens, p.H, p.K, p.ks, 64, C, CU_TENSOR_MAP_SWIZZLE_128B),
                     bf16_rows_map(p.v, p.tokens, p.HV, p.V, p.vs, BV, C, CU_TENSOR_MAP_SWIZZLE_64B)};
  const size_t smem = raw_smem_bytes(p.bf.KB);
  cuda_check(cudaFuncSetAttribute(chunk_state_pass_raw, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)),
             "chunk_state_pass_raw shared memory");
  launch_kernel("chunk_state_pass_raw", {dim3(unsigned(n), unsigned(p.HV), unsigned(p.bf.nvb)), kThreads, smem, stream},
                chunk_state_pass_raw, p, p.bf, maps);
}

}  // namespace linfer::kernels::cuda::prefill
