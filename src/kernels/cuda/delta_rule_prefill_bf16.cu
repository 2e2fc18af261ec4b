// The chunked prefill of PrefillMath::Bf16 (delta_rule_prefill.h has the algorithm): two launches (Ssd: three)
// that leave the sequential walk over the chunks only the products it cannot do without. PerKey (KDA) takes the
// prepare pass's decayed tiles for k and q (k ⊙ e^{G} into W, k ⊙ e^{G_last - G} into Kd, q ⊙ e^{G} for the
// outputs) and decays the state per key channel.
//
//   prepare  chunk_prepare (delta_rule_prefill.cu), one block per (chunk, value head), all chunks at once; at its
//            end the W / U step (delta_rule_prefill_bf16.cuh): with T = (I + A_kk)^-1, W = T (β a_k ⊙ k) [C][K],
//            U = T (β ⊙ v) [C][V] and Kd = d ⊙ k [C][K], bf16 (Ssd: T = I, so U = dt ⊙ x and no W); q's tile
//            and A_qk too
//            (bf16 rows TMA can copy, Params::raw: no W / U step, T goes to the state pass of
//            delta_rule_prefill_raw.cu, which reads v (GDN / DeltaNet: q, k and v) as it is)
//   state    one block of 8 warps per (sequence, value head, BV value columns) walking the chunks: V' = U - W S,
//            the chunk's outputs O = a_q ⊙ (q S) + A_qk V' from the S and V' it holds (q S beside W S, from the
//            same fragments of S), then S <- e^{G_last} S + Kdᵀ V'. The state lives in the mma accumulators
//            (warp w: rows 16 w .. + 16, all BV columns) with a bf16 copy in shared memory for the products; the
//            tiles of the chunks two ahead stream in by bulk copies meanwhile, already laid out as shared memory
//            wants them. Ssd (V' = U) stores the state at each chunk's start instead (bf16, H), and its outputs
//            take a launch of their own:
//   output   Ssd: one block per (chunk, value head, 2 BV value columns), all chunks at once:
//            O = a_q ⊙ (C S) + A U + D x
//
// Every product is one bf16 mma with float32 accumulation and every fragment one ldmatrix; the intermediates
// (W, Kd, U, q and A_qk, ~95 KB per chunk and value head at K = V = 128: Bf16Tiles) live in one device
// allocation for the call. The outputs in the state pass (2026-12-07, H100, 32K tokens): GDN 2.59 -> 2.23 ms,
// KDA 3.12 -> 2.71 (an output pass read H and V' back, 1.8 GB at 32K).
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/delta_rule_prefill_bf16.cuh"
#include "kernels/cuda/launch.cuh"

namespace linfer::kernels::cuda::prefill {

namespace {

// Shared memory of the state pass: kStages stages of [W | Kd | U | e^{G_last}: 16 bytes, PerKey KT floats | q |
// A_qk transposed | a_q: C floats] (Ssd: [Kd | U | e^{G_last}]), the state's bf16 copy St [BV][KB] and V' [C][VB]
// (bf16 elements), then one mbarrier per stage. Each stage arrives by bulk copies (one thread issues them; the
// tiles are contiguous in global memory and laid out as shared memory wants them), kStages - 1 chunks ahead of
// the one computed: 3 stages where one block has the SM (211 KB at K = 128, PerKey), 2 where two blocks share it
// (Ssd, where the grid has more blocks than SMs; three would not fit twice).
__host__ __device__ constexpr int state_stages(int min_blocks) { return min_blocks == 1 ? 3 : 2; }
__host__ __device__ inline int decay_elems(Rule rule, int KB) { return rule == Rule::PerKey ? 2 * (KB - 8) : 8; }
__host__ __device__ inline int stage_recurrence_elems(Rule rule, int KB) {  // W, Kd, U, decay: up to q
  return (rule == Rule::Ssd ? 1 : 2) * C * KB + C * VB + decay_elems(rule, KB);
}
__host__ __device__ inline int stage_elems(Rule rule, int KB) {
  return stage_recurrence_elems(rule, KB) + (rule == Rule::Ssd ? 0 : C * KB + C * MB + 2 * C);
}
__host__ __device__ inline int state_smem_bytes(Rule rule, int KB, int stages) {
  return 2 * (stages * stage_elems(rule, KB) + BV * KB + C * VB) + 8 * stages;
}

// kMinBlocks: blocks per SM the registers must allow (1: up to 255 registers; 2: 128, so that a grid of more
// blocks than SMs runs in one round; Ssd only).
template <Rule kRule, int kMinBlocks>
__global__ void __launch_bounds__(kThreads, kMinBlocks) chunk_state_pass_bf16(Params p, Bf16Tiles t) {
  pdl_enter();
  constexpr bool kSsd = kRule == Rule::Ssd, kPerKey = kRule == Rule::PerKey;
  static_assert(kSsd || kMinBlocks == 1);
  constexpr int kStages = state_stages(kMinBlocks);
  extern __shared__ float4 sm4[];
  bf16* sm = reinterpret_cast<bf16*>(sm4);
  const int K = p.K, V = p.V, KT = p.KT, KB = t.KB, se = stage_elems(kRule, KB);
  const int wk = kSsd ? 0 : C * KB;  // where Kd starts in a stage
  const int wq = stage_recurrence_elems(kRule, KB), wa = wq + C * KB, wf = wa + C * MB;  // q, A_qk, a_q (not Ssd)
  bf16* St = sm + kStages * se;
  bf16* Vn = St + BV * KB;
  uint64_t* full = reinterpret_cast<uint64_t*>(Vn + C * VB);  // [kStages]: stage s has landed
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, gid = lane >> 2, tig = lane & 3;
  const int64_t seq = blockIdx.x, hv = blockIdx.y;
  const int b = int(blockIdx.z), v0 = b * BV;
  float* st = p.state.base + int64_t(p.slots[seq]) * p.state.slot_stride + hv * int64_t(V) * K;
  const int64_t ch0 = p.seq_chunk0[seq], ch1 = p.seq_chunk0[seq + 1], off0 = p.offsets[seq], off1 = p.offsets[seq + 1];

  auto prefetch = [&](int64_t ch, int s) {  // thread 0: chunk ch's tiles into stage s
    bf16* d = sm + s * se;
    const int64_t rec = ch * p.HV + hv;
    const unsigned kbytes = 2u * C * KB, vbytes = 2u * C * VB, dbytes = 2u * decay_elems(kRule, KB);
    const unsigned abytes = 2u * C * MB, fbytes = 4u * C;
    const float* f = p.scratch + rec * p.sc_floats + m_floats(MmaMath::Bf16);  // a_q, ..., the decay at 4 C
    mbar_arrive_expect_tx(&full[s], kSsd ? kbytes + vbytes + dbytes : 3 * kbytes + vbytes + dbytes + abytes + fbytes);
    if constexpr (!kSsd) bulk_load(d, t.w + rec * t.k_size(), kbytes, &full[s]);
    bulk_load(d + wk, t.kd + rec * t.k_size(), kbytes, &full[s]);
    bulk_load(d + wk + C * KB, t.u + rec * t.v_size() + b * C * VB, vbytes, &full[s]);
    bulk_load(d + wk + C * KB + C * VB, f + 4 * C, dbytes, &full[s]);
    if constexpr (!kSsd) {  // q's tile, written by the prepare pass (one 17 KB copy: its 64 rows straight from the
                            // input as 64 bulk copies made the pass 2.3x slower, H100 2026-12-07)
      bulk_load(d + wq, t.q + rec * t.k_size(), kbytes, &full[s]);
      bulk_load(d + wa, t.a + rec * t.a_size(), abytes, &full[s]);
      bulk_load(d + wf, f, fbytes, &full[s]);
    }
  };
  start_stages<kStages>(full, ch0, ch1, prefetch);

  StateTile S;  // Ssd: its bulk store of H reads St, so each conversion is followed by fence_proxy_async
  S.load(st + int64_t(v0) * K, K, KT, V - v0);
  const int m0 = 16 * (warp & 3), n0 = 16 * (warp >> 2);  // this warp's V' and O tile (not Ssd): rows, columns
  for (int i = tid; i < BV * KB; i += kThreads) St[i] = __float2bfloat16_rn(0.f);  // rows past K, padding
  __syncthreads();
  if (S.owns) S.to_bf16(St, KB);
  fence_proxy_async();
  __syncthreads();

  for (int64_t ch = ch0; ch < ch1; ++ch) {
    const int n_in = int(ch - ch0), i = n_in % kStages;  // chunks before this one
    const bf16* cur = sm + i * se;
    const int64_t rec = ch * p.HV + hv;
    const int L = int(min(int64_t(C), off1 - (off0 + C * (ch - ch0))));
    if (tid == 0) {
      if (ch + kStages - 1 < ch1) prefetch(ch + kStages - 1, (i + kStages - 1) % kStages);  // chunk ch - 1's stage
      if constexpr (kSsd) {
        bulk_store(t.h + rec * t.h_size() + b * BV * KB, St, 2u * BV * KB);  // H: the state at the chunk's start
        bulk_commit();
      }
    }
    mbar_wait(&full[i], unsigned(n_in / kStages) & 1u);
    const bf16* vn = cur + wk + C * KB;  // Ssd: V' = U
    float oacc[2][4] = {};               // q S, then O (not Ssd)
    if constexpr (!kSsd) {  // V' = U - W S and q S, from the same fragments of S
      const bf16 *ar = a_rows(cur, KB, m0), *br = b_rows(St, KB, n0), *qr = a_rows(cur + wq, KB, m0);
      float acc[2][4] = {};
#pragma unroll
      for (int k0 = 0; k0 < kMaxK; k0 += 16)
        if (k0 < KT) {
          uint32_t fa[4], fb[4];
          ldmatrix_x4(fa, ar + k0, false);
          ldmatrix_x4(fb, br + k0, false);
          mma2(acc, fa, fb);
          ldmatrix_x4(fa, qr + k0, false);
          mma2(oacc, fa, fb);
        }
      const bf16* u = cur + wk + C * KB;
#pragma unroll
      for (int j = 0; j < 2; ++j)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int r = m0 + gid + 8 * e, c = n0 + 8 * j + 2 * tig;
          const float2 uu = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(u + r * VB + c));
          acc[j][2 * e] = uu.x - acc[j][2 * e];
          acc[j][2 * e + 1] = uu.y - acc[j][2 * e + 1];
        }
      store_pairs(acc, Vn, VB, m0, n0);
      vn = Vn;
    }
    if (kSsd && tid == 0) bulk_wait_read<0>();  // H is out of St, which the update below overwrites
    __syncthreads();
    if (S.owns) {  // S <- e^{G_last} S + Kdᵀ V' (PerKey: e^{G_last} per state row, the key channel)
      const float* decay = reinterpret_cast<const float*>(cur + wk + C * KB + C * VB);
      S.for_each([&](float& a, int x, int) { a *= decay[kPerKey ? x : 0]; });
      const bf16* ar = a_cols(cur + wk, KB, 16 * warp);  // Kdᵀ
      S.add_product([&](int k0) { return ar + k0 * KB; }, vn, L);
      S.to_bf16(St, KB);
      if constexpr (kSsd) fence_proxy_async();
    }
    if constexpr (!kSsd) {  // O = a_q ⊙ (q S) + A_qk V', rows m0 .. + 16 and columns n0 .. + 16 of the block's
      const float* fq = reinterpret_cast<const float*>(cur + wf);
#pragma unroll
      for (int u = 0; u < 2; ++u)
#pragma unroll
        for (int e = 0; e < 4; ++e) oacc[u][e] *= fq[m0 + gid + 8 * (e >> 1)];
      aqk_times(cur + wa, Vn, m0, n0, oacc);
      store_outputs(p, oacc, off0 + C * (ch - ch0), L, hv, v0 + n0, m0);
    }
    __syncthreads();  // St is complete; this stage is free for the copies issued at the next chunk's start
  }
  if (tid == 0) bulk_wait<0>();
  S.store(st + int64_t(v0) * K, K, V - v0);
}

// Shared memory of Ssd's output pass: C's tile [C][KB], A transposed [C][MB], H of two column blocks [2 BV][KB],
// U (= V') of them [2][C][VB] (bf16 elements), then a_q [C] and x of the two blocks [C][XS] (float), which
// streams in with H and U for the D x skip instead of being read element by element after the products.
constexpr int XS = 2 * BV + 4;
__host__ __device__ inline int output_smem_bytes(int KB) {
  return 2 * (C * KB + C * MB + 2 * BV * KB + 2 * C * VB) + 4 * C + 4 * C * XS;
}

template <class In>
__global__ void __launch_bounds__(kThreads, 4) chunk_output_ssd(Params p, Bf16Tiles t) {
  pdl_enter();
  extern __shared__ float4 sm4[];
  const int KB = t.KB, KT = p.KT, V = p.V;
  bf16* qb = reinterpret_cast<bf16*>(sm4);
  bf16* ab = qb + C * KB;
  bf16* hs = ab + C * MB;
  bf16* vs = hs + 2 * BV * KB;
  float* fq = reinterpret_cast<float*>(vs + 2 * C * VB);
  float* xs = fq + C;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, gid = lane >> 2, tig = lane & 3;
  const int nz = (t.nvb + 1) / 2;  // the column pairs of a chunk are neighbours in the grid: q and M once from DRAM
  const int64_t chunk = blockIdx.x / nz, hv = blockIdx.y, rec = chunk * p.HV + hv;
  const int b0 = 2 * int(blockIdx.x % nz), nb = min(2, t.nvb - b0);
  const Chunk c = chunk_at(p, chunk, hv);
  const float* sc = p.scratch + rec * p.sc_floats;
  copy_async(hs, t.h + rec * t.h_size() + b0 * BV * KB, nb * BV * KB / 8);
  copy_async(vs, t.u + rec * t.v_size() + b0 * C * VB, nb * C * VB / 8);
  load_tile<kThreads>(static_cast<const In*>(p.v) + c.tok0 * p.vs + hv * V + b0 * BV, p.vs, c.L,
                      min(2 * BV, V - b0 * BV), p.vec, xs, XS);
  copy_async(ab, t.a + rec * t.a_size(), C * MB / 8);
  const In* q = static_cast<const In*>(p.q) + c.tok0 * p.qs + c.h * p.K;
  bf16_tile(q, p.qs, c.L, p.K, KT, p.vec, p.qk_async, qb, KB);
  cp_async_commit();
  if (tid < C) fq[tid] = sc[m_floats(MmaMath::Bf16) + tid];
  cp_async_wait<0>();
  __syncthreads();
  const int hb = warp >> 2, m0 = 16 * (warp & 3);  // column block b0 + hb, rows m0 .. + 16
  if (hb >= nb) return;
  float acc[2][2][4] = {};
  {
    const bf16* ar = a_rows(qb, KB, m0);
#pragma unroll
    for (int k0 = 0; k0 < kMaxK; k0 += 16)
      if (k0 < KT) {
        uint32_t fa[4];
        ldmatrix_x4(fa, ar + k0, false);
#pragma unroll
        for (int g = 0; g < 2; ++g) {
          uint32_t fb[4];
          ldmatrix_x4(fb, b_rows(hs + hb * BV * KB, KB, 16 * g) + k0, false);
          mma2(acc[g], fa, fb);
        }
      }
  }
#pragma unroll
  for (int g = 0; g < 2; ++g)
#pragma unroll
    for (int u = 0; u < 2; ++u)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[g][u][e] *= fq[m0 + gid + 8 * (e >> 1)];
  {
    const bf16* ar = a_cols(ab, MB, m0);
    for (int k0 = 0; k0 <= m0; k0 += 16) {
      uint32_t fa[4];
      ldmatrix_x4(fa, ar + k0 * MB, true);
#pragma unroll
      for (int g = 0; g < 2; ++g) {
        uint32_t fb[4];
        ldmatrix_x4(fb, b_cols(vs + hb * C * VB, VB, 16 * g) + k0 * VB, true);
        mma2(acc[g], fa, fb);
      }
    }
  }
  const float skip = p.D ? p.D[hv] : 0.f;
#pragma unroll
  for (int g = 0; g < 2; ++g) {
#pragma unroll
    for (int u = 0; u < 2; ++u)  // + D x (x's tile holds both column blocks)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        acc[g][u][e] += skip * xs[(m0 + gid + 8 * (e >> 1)) * XS + hb * BV + 16 * g + 8 * u + 2 * tig + (e & 1)];
    store_outputs(p, acc[g], c.tok0, c.L, hv, (b0 + hb) * BV + 16 * g, m0);
  }
}

// The tiles go to the kernels as an argument of their own beside p (which holds them too): read through p.bf
// the state pass took 78 registers instead of 138 and 1.37 ms instead of 1.09 (ncu, H200, GDN 32K).
template <class Kernel>
void launch_pass(const char* name, Kernel kernel, dim3 grid, size_t smem, cudaStream_t stream, const Params& p) {
  cuda_check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)), name);
  launch_kernel(name, {grid, kThreads, smem, stream}, kernel, p, p.bf);
}

template <Rule kRule, class In>
void launch_rule(const Params& p, int64_t n, int64_t n_chunks, cudaStream_t stream) {
  const Bf16Tiles& t = p.bf;
  const unsigned hv = unsigned(p.HV);
  const dim3 grid(unsigned(n), hv, unsigned(t.nvb));
  if constexpr (kRule != Rule::Ssd) {
    // One block per SM, also where the grid has more blocks than SMs (64 sequences of 512: GDN as fast as two
    // blocks per SM with a separate output pass, KDA 5 % faster; H100, 2026-12-07)
    if (p.raw)
      launch_state_pass_raw<kRule>(p, n, stream);
    else
      launch_pass("chunk_state_pass_bf16", chunk_state_pass_bf16<kRule, 1>, grid,
                  state_smem_bytes(kRule, t.KB, state_stages(1)), stream, p);
  } else {
    // One block per SM unless the grid has more blocks than SMs (mamba2-2.7b: 80 heads x 2): then two, with fewer
    // registers (H200, T = 32K: 80 heads 5.18 -> 4.74 ms)
    int device = 0, sms = 0;
    cuda_check(cudaGetDevice(&device), "cudaGetDevice");
    cuda_check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device), "SM count");
    if (int64_t(n) * p.HV * t.nvb > sms)
      launch_pass("chunk_state_pass_bf16", chunk_state_pass_bf16<kRule, 2>, grid,
                  state_smem_bytes(kRule, t.KB, state_stages(2)), stream, p);
    else
      launch_pass("chunk_state_pass_bf16", chunk_state_pass_bf16<kRule, 1>, grid,
                  state_smem_bytes(kRule, t.KB, state_stages(1)), stream, p);
    launch_pass("chunk_output_ssd", chunk_output_ssd<In>, dim3(unsigned(n_chunks * ((t.nvb + 1) / 2)), hv),
                output_smem_bytes(t.KB), stream, p);
  }
  cuda_check(cudaFreeAsync(t.a, stream), "cudaFreeAsync (bf16 chunked prefill tiles)");  // the allocation's start
}

}  // namespace

Bf16Tiles bf16_tiles(const Params& p, Rule rule, int64_t n_chunks, cudaStream_t stream) {
  const bool ssd = rule == Rule::Ssd;
  Bf16Tiles t{};
  t.KB = p.KT + 8;
  t.nvb = (p.V + BV - 1) / BV;
  const int64_t recs = n_chunks * p.HV;
  const bool per_key_tiles = rule == Rule::PerKey;  // PerKey's q ⊙ e^{G}, Kd and W (raw: W's operand)
  const int64_t per_rec = p.raw ? 2 * t.a_size() + (per_key_tiles ? 3 * t.k_size() : 0)  // A_qk, T (, q, Kd, W)
                          : ssd ? t.k_size() + t.v_size() + t.a_size() + t.h_size()      // Kd, U, A, H
                                : 3 * t.k_size() + t.v_size() + t.a_size();              // Kd, W, q, U, A_qk
  bf16* at = nullptr;
  cuda_check(cudaMallocAsync(reinterpret_cast<void**>(&at), size_t(recs * per_rec) * sizeof(bf16), stream),
             "cudaMallocAsync (bf16 chunked prefill tiles)");
  auto take = [&](bf16*& ptr, int64_t size) { ptr = at, at += recs * size; };
  take(t.a, t.a_size());  // first: the allocation's start, which launch_rule frees
  if (p.raw) take(t.tm, t.a_size());
  if (p.raw && !per_key_tiles) return t;
  take(t.kd, t.k_size());
  if (!p.raw) take(t.u, t.v_size());
  if (ssd) {
    take(t.h, t.h_size());
  } else {
    take(t.w, t.k_size());
    take(t.q, t.k_size());
  }
  return t;
}

size_t wu_smem(const Params& p, Rule rule) {
  return rule == Rule::Ssd ? 0 : wu_smem_bytes(p.KT + 8, (p.V + BV - 1) / BV);
}

template <class In>
void launch_bf16_passes(const Params& p, Rule rule, int64_t n, int64_t n_chunks, cudaStream_t stream) {
  switch (rule) {
    case Rule::Scalar: launch_rule<Rule::Scalar, In>(p, n, n_chunks, stream); break;
    case Rule::PerKey: launch_rule<Rule::PerKey, In>(p, n, n_chunks, stream); break;
    case Rule::Ssd: launch_rule<Rule::Ssd, In>(p, n, n_chunks, stream); break;
  }
}
template void launch_bf16_passes<float>(const Params&, Rule, int64_t, int64_t, cudaStream_t);
template void launch_bf16_passes<bf16>(const Params&, Rule, int64_t, int64_t, cudaStream_t);

}  // namespace linfer::kernels::cuda::prefill
