// The state pass of PrefillMath::Bf16 without the W / U step (Params::raw: bf16 inputs whose v rows, and for GDN /
// DeltaNet q's and k's too, TMA can copy: 16-byte aligned, strides and K, V multiples of 8 elements). The prepare pass
// then leaves T = (I + A_kk)^-1 (a bf16 [C][MB] tile) beside A_qk and the row factors instead of W and U: GDN ~19 KB
// per chunk and value head instead of ~83 (W, U, Kd and q's tile), and no W / U products. Per chunk, one block of 16
// warps per (sequence, value head, BV value columns), the state in mma accumulators of warps 0 .. 7 with a bf16 copy
// St; warps 8 .. 15 compute the outputs beside the recurrence's chain (Q, then O once V' is there):
//
//   P = k S, Q = q S         from St (GDN: k and q as they come, the norms and gates being row factors; KDA: the
//                            prepare pass's W operand β a_k ⊙ k ⊙ e^{G} and q ⊙ e^{G})
//   R = β ⊙ (v - a_k ⊙ P)    bf16, [C][BV] (KDA: β v - P)
//   V' = T R                 T unit lower triangular: 16-row tile m takes R's rows up to its own
//   O = a_q ⊙ Q + A_qk V'    written from registers
//   S <- e^{G_last} S + kᵀ (d ⊙ V')   (KDA: e^{G_last} per key channel, + Kdᵀ V')
//
// GDN's k tile serves both k S and the state update (d, the norm and the decay to the chunk's end, is a row factor
// of V'). GDN's q and k rows and every rule's v rows come by TMA (tensor_map.h: a box of 64 tokens per instruction,
// 128- and 64-byte swizzled rows that ldmatrix reads without conflicts; 16-byte cp.async pieces from every thread
// made the GDN pass 1.35 ms instead of 1.08 at 32K on an H100, 64 row-sized bulk copies an earlier one 2.3x slower),
// T, A_qk, the factors and KDA's tiles by bulk copies, all on one mbarrier per stage. A head's column blocks form
// a cluster (raw_cluster) where the device holds them all at once: everything of a stage but v is the same for
// them, and the cluster's lead block copies it into all of their shared memories with one multicast copy each, so
// that L2 sends it to the SMs once instead of once per column block (GDN: 49 of a stage's 53 KB).
#include <cstdlib>
#include <map>
#include <mutex>
#include <string_view>
#include <tuple>

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

// A stage (bytes, 1024-aligned: the swizzle's period): q's operand tile | k S's (Scalar: k, PerKey: W's operand
// β a_k ⊙ k ⊙ e^{G}) | the state update's (Scalar: the same k, PerKey: Kd) | v [C][64 B] | T [C][MB] | A_qk
// transposed [C][MB] (bf16) | the factors a_q, a_k, d, β [C] and the decay (float: Scalar e^{G_last} padded to 8,
// PerKey e^{G_last} per key channel [KT]). Scalar's q and k come by TMA ([2 boxes][C][128 B], swizzled), PerKey's
// three tiles are the prepare pass's ([C][KB], bulk copies); 3 stages for Scalar, 2 for PerKey (three of 75 KB do
// not fit).
constexpr int kBoxBytes = C * 128, kVBytes = C * 2 * BV, kMBytes = 2 * C * MB;
static_assert(BV == 32, "v's rows are one 64-byte swizzle span");
template <Rule kRule>
struct RawLayout {
  static constexpr bool kPerKey = kRule == Rule::PerKey;
  static constexpr int tile = kPerKey ? 2 * C * (kMaxK + 8) : 2 * kBoxBytes;  // bytes of a q / k operand tile
  static constexpr int q = 0, pk = tile, sk = kPerKey ? 2 * tile : tile, v = sk + tile, t = v + kVBytes;
  static constexpr int a = t + kMBytes, f = a + kMBytes;
  static constexpr int stage = (f + 4 * (kPerKey ? 4 * C + kMaxK : kScalarFactors) + 1023) / 1024 * 1024;
  static constexpr int stages = kPerKey ? 2 : 3;
  // 1024 bytes of room to align the stages, the stages, then St [BV][KB], R, V' and d ⊙ V' [C][VB] (bf16) each,
  // then two mbarriers per stage (full, empty)
  static int smem_bytes(int KB) { return 1024 + stages * stage + 2 * (BV * KB + 3 * C * VB) + 16 * stages; }
};

// Byte offsets in a stage's tiles as TMA's swizzle lays them out: element (r, x) of q's or k's (16-byte piece
// (x / 8) % 8 of a 128-byte row at piece ^ (r % 8)); element (r, c) of v's (piece c / 8 of a 64-byte row at
// piece ^ ((r / 2) % 4))
__device__ inline int qk_at(int r, int x) {
  return (x >> 6) * kBoxBytes + r * 128 + ((((x >> 3) & 7) ^ (r & 7)) << 4) + 2 * (x & 7);
}
__device__ inline int v_at(int r, int c) { return r * 64 + ((((c >> 3) & 3) ^ ((r >> 1) & 3)) << 4) + 2 * (c & 7); }
// Element (r, x) of a q / k operand tile at `at`: TMA's swizzled rows (Scalar) or the prepare pass's rows of stride
// KB (PerKey)
template <Rule kRule>
__device__ inline const uint8_t* operand_at(const uint8_t* at, int r, int x, int KB) {
  if constexpr (kRule == Rule::PerKey) return at + 2 * (r * KB + x);
  else return at + qk_at(r, x);
}

// A barrier of the `threads` threads (whole warps) that name `id` (1 .. 15; __syncthreads is 0)
__device__ inline void named_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;" ::"r"(id), "r"(threads) : "memory");
}

// Threads of a state-pass block: warps 0 .. 7 walk the recurrence (k S, R, V' = T R, the state update: the chain
// each chunk waits for), warps 8 .. 15 the outputs beside them (q S, then A_qk V' once V' is there), on the same
// [16][16] tiles of the chunk's [C][BV] products
constexpr int kRawThreads = 2 * kThreads, kChainWarps = kThreads / 32;

template <Rule kRule>
__global__ void __launch_bounds__(kRawThreads, 1)
    chunk_state_pass_raw(Params p, Bf16Tiles t, const __grid_constant__ RawMaps maps, unsigned cl) {
  pdl_enter();
  using Lay = RawLayout<kRule>;
  constexpr bool kPerKey = kRule == Rule::PerKey;
  constexpr int kStages = Lay::stages;
  extern __shared__ float4 sm4[];
  uint8_t* sm = reinterpret_cast<uint8_t*>(sm4);
  sm += (1024 - smem_u32(sm) % 1024) % 1024;
  const int K = p.K, V = p.V, KT = p.KT, KB = t.KB;
  bf16* St = reinterpret_cast<bf16*>(sm + kStages * Lay::stage);
  bf16* Rt = St + BV * KB;
  bf16* Vn = Rt + C * VB;
  bf16* Vd = Vn + C * VB;                                     // Scalar: d ⊙ V' (PerKey's d is in Kd)
  uint64_t* full = reinterpret_cast<uint64_t*>(Vd + C * VB);  // [kStages]: stage s has landed
  uint64_t* empty = full + kStages;  // [kStages] (the cluster's lead block's): every block is done with stage s
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, gid = lane >> 2, tig = lane & 3;
  const int64_t seq = blockIdx.x, hv = blockIdx.y, h = hv / p.group;
  const int v0 = int(blockIdx.z) * BV, vn = min(BV, V - v0);
  float* st = p.state.base + int64_t(p.slots[seq]) * p.state.slot_stride + hv * int64_t(V) * K;
  const int64_t ch0 = p.seq_chunk0[seq], ch1 = p.seq_chunk0[seq + 1], off0 = p.offsets[seq], off1 = p.offsets[seq + 1];
  const int boxes = KT > 64 ? 2 : 1;

  // A cluster of cl blocks (a head's column blocks, cl > 1) shares a chunk's tiles but v: its lead block's thread 0
  // copies them into every block's stage at once (multicast), once every block is done with the stage
  const bool lead = cl == 1 || cooperative_groups::this_cluster().block_rank() == 0;
  const uint16_t everyone = cl > 1 ? uint16_t((1u << cl) - 1u) : 0;  // multicast mask (0: this block alone)
  auto prefetch = [&](int64_t ch, int s) {  // thread 0: chunk ch into stage s (rows past the sequence: zeroed below)
    uint8_t* d = sm + s * Lay::stage;
    const int tok0 = int(off0 + C * (ch - ch0)), n_in = int(ch - ch0);
    const int64_t rec = ch * p.HV + hv;
    const unsigned fbytes = 4u * p.nf, kbytes = 2u * C * KB;
    mbar_arrive_expect_tx(&full[s], (kPerKey ? 3 * kbytes : 2u * boxes * kBoxBytes) + kVBytes + 2 * kMBytes + fbytes);
    tensor_load_3d(d + Lay::v, &maps.v, v0, int(hv), tok0, &full[s]);
    if (!lead) return;
    if (cl > 1 && n_in >= kStages) mbar_wait(&empty[s], unsigned(n_in / kStages - 1) & 1u, true);
    if constexpr (kPerKey) {
      bulk_load(d + Lay::q, t.q + rec * t.k_size(), kbytes, &full[s], everyone);
      bulk_load(d + Lay::pk, t.w + rec * t.k_size(), kbytes, &full[s], everyone);
      bulk_load(d + Lay::sk, t.kd + rec * t.k_size(), kbytes, &full[s], everyone);
    } else {
      for (int b = 0; b < boxes; ++b) {
        tensor_load_3d(d + Lay::q + b * kBoxBytes, &maps.q, 64 * b, int(h), tok0, &full[s], everyone);
        tensor_load_3d(d + Lay::pk + b * kBoxBytes, &maps.k, 64 * b, int(h), tok0, &full[s], everyone);
      }
    }
    bulk_load(d + Lay::t, t.tm + rec * t.a_size(), kMBytes, &full[s], everyone);
    bulk_load(d + Lay::a, t.a + rec * t.a_size(), kMBytes, &full[s], everyone);
    bulk_load(d + Lay::f, p.scratch + rec * p.sc_floats, fbytes, &full[s], everyone);
  };
  start_stages<kStages>(full, ch0, ch1, prefetch, empty, cl);

  StateTile S;
  S.load(st + int64_t(v0) * K, K, KT, vn);
  const bool chain = warp < kChainWarps;
  const int m0 = 16 * (warp & 3), n0 = 16 * ((warp >> 2) & 1);  // this warp's tile of P, R and V' (chain) or Q, O
  for (int i = tid; i < BV * KB; i += kRawThreads) St[i] = __float2bfloat16_rn(0.f);  // rows past K, padding
  __syncthreads();
  if (S.owns) S.to_bf16(St, KB);
  __syncthreads();
  // ldmatrix rows of this lane: A fragments of rows m0 .. + 16 (row ra, columns ca + k0); the state update's,
  // transposed (rows rt + k0 of the tile, columns ct)
  const int ra = m0 + (lane & 7) + ((lane >> 3) & 1) * 8, ca = (lane >> 4) * 8;
  const int rt = (lane & 7) + (lane >> 4) * 8, ct = 16 * warp + ((lane >> 3) & 1) * 8;

  for (int64_t ch = ch0; ch < ch1; ++ch) {
    const int n_in = int(ch - ch0), i = n_in % kStages;  // chunks before this one
    uint8_t* cur = sm + i * Lay::stage;
    const float* f = reinterpret_cast<const float*>(cur + Lay::f);  // a_q [C], a_k [C], d [C], β [C], the decay
    const int64_t tok0 = off0 + C * (ch - ch0);
    const int L = int(min(int64_t(C), off1 - tok0));
    if (tid == 0 && ch + kStages - 1 < ch1) prefetch(ch + kStages - 1, (i + kStages - 1) % kStages);
    mbar_wait(&full[i], unsigned(n_in / kStages) & 1u);
    if (L < C) {  // a sequence's last chunk: the rows TMA brought past it (the next sequence's) to zero in k (Scalar)
                  // and v, so that nothing of them reaches this state (q's only reach outputs that are not stored)
      constexpr int kPieces = kPerKey ? 4 : 20;  // 16-byte pieces per row: [k's 16 (Scalar)] v's 4
      for (int idx = tid; idx < (C - L) * kPieces; idx += kRawThreads) {
        const int r = L + idx / kPieces, piece = idx % kPieces + (kPerKey ? 16 : 0);  // k's 0 .. 15, v's 16 .. 19
        uint8_t* at = piece < 16 ? cur + Lay::sk + (piece >> 3) * kBoxBytes + r * 128 + 16 * (piece & 7)
                                 : cur + Lay::v + r * 64 + 16 * (piece - 16);
        *reinterpret_cast<uint4*>(at) = make_uint4(0u, 0u, 0u, 0u);
      }
      fence_proxy_async();  // before TMA writes this stage again
      __syncthreads();
    }

    float acc[2][4] = {};  // chain: P, then R; outputs: q S, then O
    {
      const bf16* br = b_rows(St, KB, n0);
      const uint8_t* at = cur + (chain ? Lay::pk : Lay::q);
#pragma unroll
      for (int k0 = 0; k0 < kMaxK; k0 += 16)
        if (k0 < KT) {
          uint32_t fa[4], fb[4];
          ldmatrix_x4(fb, br + k0, false);
          ldmatrix_x4(fa, operand_at<kRule>(at, ra, ca + k0, KB), false);
          mma2(acc, fa, fb);
        }
    }
    if (chain) {
#pragma unroll
      for (int j = 0; j < 2; ++j)  // R = β v - P (PerKey: P = (β a_k ⊙ k ⊙ e^G) S) or β (v - a_k P) (Scalar: P = k S)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int r = m0 + gid + 8 * e, c = n0 + 8 * j + 2 * tig;
          const float2 vv = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(cur + Lay::v + v_at(r, c)));
          const float ak = f[C + r], beta = f[3 * C + r];
#pragma unroll
          for (int x = 0; x < 2; ++x) {
            float& a = acc[j][2 * e + x];
            a = kPerKey ? beta * (x ? vv.y : vv.x) - a : beta * ((x ? vv.y : vv.x) - ak * a);
          }
        }
      store_pairs(acc, Rt, VB, m0, n0);
      named_sync(1 + (warp >> 2), kThreads / 2);  // R's columns n0 .. + 16 are complete (the warps that share n0)
      float vacc[2][4] = {};
      t_times(reinterpret_cast<const bf16*>(cur + Lay::t), Rt, VB, m0, n0, vacc);
      store_pairs(vacc, Vn, VB, m0, n0);
      if constexpr (!kPerKey) {
#pragma unroll
        for (int u = 0; u < 2; ++u)
#pragma unroll
          for (int e = 0; e < 4; ++e) vacc[u][e] *= f[2 * C + m0 + gid + 8 * (e >> 1)];
        store_pairs(vacc, Vd, VB, m0, n0);
      }
    }
    __syncthreads();  // V' is complete
    if (S.owns) {  // S <- e^{G_last} S + kᵀ (d ⊙ V') (PerKey: e^{G_last} per state row, the key channel; + Kdᵀ V')
      S.for_each([&](float& a, int x, int) { a *= f[4 * C + (kPerKey ? x : 0)]; });
      const bf16* vb = kPerKey ? Vn : Vd;
      S.add_product([&](int k0) { return operand_at<kRule>(cur + Lay::sk, rt + k0, ct, KB); }, vb, L);
      S.to_bf16(St, KB);
    } else if (!chain) {  // O = a_q ⊙ (q S) + A_qk V', rows m0 .. + 16 and columns n0 .. + 16 of the block's
#pragma unroll
      for (int u = 0; u < 2; ++u)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[u][e] *= f[m0 + gid + 8 * (e >> 1)];
      aqk_times(reinterpret_cast<const bf16*>(cur + Lay::a), Vn, m0, n0, acc);
      store_outputs(p, acc, tok0, L, hv, v0 + n0, m0);
    }
    __syncthreads();  // St is complete; this stage is free for the copies issued at the next chunk's start
    if (cl > 1 && tid == 0 && ch + kStages < ch1) mbar_arrive_remote(&empty[i], 0);
  }
  if (cl > 1) cooperative_groups::this_cluster().sync();  // no block leaves while the lead may wait on its arrivals
  S.store(st + int64_t(v0) * K, K, vn);
}

}  // namespace

// The cluster size for a state pass of this shape: a head's column blocks (grid z, up to 8) as one cluster where the
// device can hold as many of its blocks at once as without clusters (every block of a grid of one wave; else 90 %
// of one block per SM), else 1. LINFER_RAW_CLUSTER=0: no clusters.
unsigned raw_cluster(const LaunchShape& shape, const void* kernel) {
  const unsigned cl = shape.grid.z;
  static const bool off = [] {
    const char* e = std::getenv("LINFER_RAW_CLUSTER");
    return e && std::string_view(e) == "0";
  }();
  if (off || cl < 2 || cl > 8) return 1;
  int device = 0;
  cuda_check(cudaGetDevice(&device), "cudaGetDevice");
  struct Fit {
    int clusters, sms;  // clusters of cl blocks the device holds at once; its SMs
  };
  static std::mutex mu;
  static std::map<std::tuple<int, size_t, unsigned>, Fit> known;  // (device, shared memory, cluster) -> its Fit
  Fit fit{};
  {
    std::lock_guard lock(mu);
    const auto key = std::make_tuple(device, shape.smem, cl);
    if (auto it = known.find(key); it != known.end()) {
      fit = it->second;
    } else {
      cudaLaunchConfig_t cfg{};
      cfg.gridDim = shape.grid, cfg.blockDim = shape.block, cfg.dynamicSmemBytes = shape.smem;
      cudaLaunchAttribute attr{};
      attr.id = cudaLaunchAttributeClusterDimension;
      attr.val.clusterDim.x = 1, attr.val.clusterDim.y = 1, attr.val.clusterDim.z = cl;
      cfg.attrs = &attr, cfg.numAttrs = 1;
      if (cudaOccupancyMaxActiveClusters(&fit.clusters, kernel, &cfg) != cudaSuccess)
        fit.clusters = 0, (void)cudaGetLastError();
      cuda_check(cudaDeviceGetAttribute(&fit.sms, cudaDevAttrMultiProcessorCount, device), "multiprocessor count");
      known.emplace(key, fit);
    }
  }
  const int64_t blocks = int64_t(shape.grid.x) * shape.grid.y * shape.grid.z, held = int64_t(fit.clusters) * cl;
  return (blocks <= fit.sms ? held >= blocks : 10 * held >= 9 * int64_t(fit.sms)) ? cl : 1;
}

template <Rule kRule>
void launch_state_pass_raw(const Params& p, int64_t n, cudaStream_t stream) {
  RawMaps maps{};
  if constexpr (kRule == Rule::Scalar) {
    maps.q = bf16_rows_map(p.q, p.tokens, p.H, p.K, p.qs, 64, C, CU_TENSOR_MAP_SWIZZLE_128B);
    maps.k = bf16_rows_map(p.k, p.tokens, p.H, p.K, p.ks, 64, C, CU_TENSOR_MAP_SWIZZLE_128B);
  }
  maps.v = bf16_rows_map(p.v, p.tokens, p.HV, p.V, p.vs, BV, C, CU_TENSOR_MAP_SWIZZLE_64B);
  const size_t smem = RawLayout<kRule>::smem_bytes(p.bf.KB);
  cuda_check(cudaFuncSetAttribute(chunk_state_pass_raw<kRule>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)),
             "chunk_state_pass_raw shared memory");
  LaunchShape shape{dim3(unsigned(n), unsigned(p.HV), unsigned(p.bf.nvb)), kRawThreads, smem, stream};
  const unsigned cl = raw_cluster(shape, reinterpret_cast<const void*>(chunk_state_pass_raw<kRule>));
  shape.cluster = dim3(1, 1, cl);
  launch_kernel("chunk_state_pass_raw", shape, chunk_state_pass_raw<kRule>, p, p.bf, maps, cl);
}
template void launch_state_pass_raw<Rule::Scalar>(const Params&, int64_t, cudaStream_t);
template void launch_state_pass_raw<Rule::PerKey>(const Params&, int64_t, cudaStream_t);

}  // namespace linfer::kernels::cuda::prefill
