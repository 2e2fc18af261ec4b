#pragma once
// Device code shared by the decode kernels (included by .cu files only).
//
// State rows: a decode kernel streams a [rows, K] float32 state once per token. Each row is owned by a
// team of 8 consecutive lanes; lane l holds the key channels (c * 8 + l) * 4 + {0..3} for c < NV4, so
// the 8 lanes of a team read 128 contiguous bytes per chunk and a warp reads 4 rows at once. A thread
// holds RPT rows of a tile, all loaded before any is used (RPT * NV4 16-byte loads in flight).

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/slot_pool.h"

namespace linfer::kernels::cuda::detail {

constexpr int kTeam = 8;        // lanes per state row
constexpr int kMaxThreads = 512;  // block size cap of the decode kernels (__launch_bounds__)

// Rows per thread per tile for NV4 chunks per lane: 32 state floats per thread whatever K is, so
// registers stay under the 128 per thread that __launch_bounds__(512) allows.
__host__ __device__ constexpr int rows_per_thread(int nv4) { return nv4 >= 8 ? 1 : 8 / nv4; }

// Blocks per SM to reserve registers for (__launch_bounds__): two, so one block's loads are in flight
// while the other computes, unless K > 128 (NV4 = 8), where 64 registers per thread spill heavily.
__host__ __device__ constexpr int min_blocks(int nv4) { return nv4 >= 8 ? 1 : 2; }

// Threads for a block streaming `rows` state rows: one team per RPT rows, whole warps, within [lo, 512].
__host__ __device__ constexpr int block_threads(int rows, int rpt, int lo) {
  const int t = ((rows + rpt - 1) / rpt * kTeam + 31) / 32 * 32;
  return t < lo ? lo : t > kMaxThreads ? kMaxThreads : t;
}

// The device's SM count (132 where it cannot be read).
inline int sm_count() {
  static const int sms = [] {
    int dev = 0, n = 0;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev);
    return n > 0 ? n : 132;
  }();
  return sms;
}

// Blocks per head for a decode call of `blocks` (sequence, head) pairs with `rows` state rows each: 2 when
// the grid would fill less than half of the SMs (and each half keeps >= 32 rows), else 1. Measured on an
// H200 (docs/gpu.md, split sweep): at 32 heads x 128, B = 1, 2 blocks per head took 5.3 us against 5.9 for
// one; 4 and 8 were no better, and any split lost from B = 8 on (duplicated input work, more blocks).
inline int pick_split(int64_t blocks, int rows) { return 2 * blocks <= sm_count() && rows >= 64 ? 2 : 1; }

// Whether a decode kernel's blocks start their state's fetch into L2 before pdl_enter() (launch.cuh), for a grid
// of `blocks` blocks that reserve registers for `per_sm` blocks per SM (min_blocks): yes when the grid takes
// at most one block per SM, so that its blocks find room beside the kernel before and the fetch overlaps it,
// and when it takes several waves; not when it fills the device in one wave: then every block starts when the
// kernel before has ended, and the prefetch only doubles the requests for the state it loads at once. H200, 32
// heads x 128 x 128 (docs/gpu.md): with it B = 1 -1.0 us (of 4.3-5.0), B = 64 and 256 -1 to -4 %, B = 8 (one
// wave) +5 to +9 %.
inline bool fills_one_wave(int64_t blocks, int per_sm) {
  return blocks > sm_count() && blocks <= int64_t(per_sm) * sm_count();
}
inline bool prefetch_state(int64_t blocks, int per_sm) { return !fills_one_wave(blocks, per_sm); }

// How a decode kernel's 16-byte state accesses treat L2: plainly; stores marked evict-first (st.global.cs);
// loads and stores evict-first (ld / st.global.cs). Each row is read once and written once per call. H100,
// 2026-12-07, 32 heads x 128 x 128, state from HBM (docs/benchmarks.md, *State accesses evict-first*): the
// delta rule with both evict-first takes 4-6 % less time where its grid fills the device in one wave (B = 8)
// and 2-3 % more from B = 64 on; Mamba2 / GLA with evict-first stores 3-9 % less at every B.
enum class StateCache { Plain, StreamStores, Stream };

// 16-byte state accesses need K % 4 == 0 and every slot's tensor 16-byte aligned.
inline bool vec4_ok(int64_t K, const SlotPool& p) {
  return K % 4 == 0 && reinterpret_cast<uintptr_t>(p.base) % 16 == 0 && p.slot_stride % 4 == 0;
}

__device__ __forceinline__ float softplus(float x) { return x > 20.0f ? x : log1pf(expf(x)); }  // torch's threshold
// Mamba2's step size from the raw projection (decode and chunked prefill): clamp(softplus(raw + bias), lo, hi)
__device__ __forceinline__ float mamba2_dt(float raw, float bias, float lo, float hi) {
  return fminf(fmaxf(softplus(raw + bias), lo), hi);
}
__device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }
__device__ __forceinline__ float silu(float x) { return x * sigmoid(x); }

// Sum over the 8 lanes of a team. Every lane of the warp must call it (full-mask shuffles).
__device__ __forceinline__ float team_sum(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 4);
  x += __shfl_xor_sync(0xffffffffu, x, 2);
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  return x;
}

__device__ __forceinline__ float warp_sum(float x) {
  for (int m = 16; m > 0; m >>= 1) x += __shfl_xor_sync(0xffffffffu, x, m);
  return x;
}

__device__ __forceinline__ float warp_max(float x) {
  for (int m = 16; m > 0; m >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, m));
  return x;
}

// Key channels covered by a team (every shared key-channel vector is padded with zeros to this).
__host__ __device__ constexpr int padded_keys(int nv4) { return nv4 * kTeam * 4; }

// First key channel of chunk c held by team lane l.
__device__ __forceinline__ int key_of(int c, int lane) { return (c * kTeam + lane) * 4; }

// One lane's share of a state row (NV4 chunks of 4 key channels). VEC4 uses 16-byte accesses and needs
// K % 4 == 0 and a 16-byte-aligned pool, with the cache policy CACHE; otherwise channels are accessed one by
// one (any K), plainly.
template <int NV4, bool VEC4, StateCache CACHE = StateCache::Plain>
struct RowSlice {
  float4 c[NV4];

  __device__ __forceinline__ static float4 load4(const float* at) {
    if constexpr (CACHE == StateCache::Stream) return __ldcs(reinterpret_cast<const float4*>(at));
    else return *reinterpret_cast<const float4*>(at);
  }
  __device__ __forceinline__ static void store4(float* at, float4 x) {
    if constexpr (CACHE == StateCache::Plain) *reinterpret_cast<float4*>(at) = x;
    else __stcs(reinterpret_cast<float4*>(at), x);
  }

  __device__ __forceinline__ void load(const float* row, int K, int lane) {
#pragma unroll
    for (int i = 0; i < NV4; ++i) {
      const int k0 = key_of(i, lane);
      if constexpr (VEC4) {
        c[i] = k0 < K ? load4(row + k0) : make_float4(0.f, 0.f, 0.f, 0.f);
      } else {
        c[i].x = k0 < K ? row[k0] : 0.f;
        c[i].y = k0 + 1 < K ? row[k0 + 1] : 0.f;
        c[i].z = k0 + 2 < K ? row[k0 + 2] : 0.f;
        c[i].w = k0 + 3 < K ? row[k0 + 3] : 0.f;
      }
    }
  }

  __device__ __forceinline__ void store(float* row, int K, int lane) const {
#pragma unroll
    for (int i = 0; i < NV4; ++i) {
      const int k0 = key_of(i, lane);
      if constexpr (VEC4) {
        if (k0 < K) store4(row + k0, c[i]);
      } else {
        if (k0 < K) row[k0] = c[i].x;
        if (k0 + 1 < K) row[k0 + 1] = c[i].y;
        if (k0 + 2 < K) row[k0 + 2] = c[i].z;
        if (k0 + 3 < K) row[k0 + 3] = c[i].w;
      }
    }
  }

  // Operations with a key-channel vector (q, k, decays) in shared memory, zero-padded to
  // padded_keys(NV4) floats and 16-byte aligned, so it is read with float4 loads and no bounds checks.
  __device__ __forceinline__ static float4 chunk(const float* x, int i, int lane) {
    return reinterpret_cast<const float4*>(x)[i * kTeam + lane];
  }
  __device__ __forceinline__ float dot(const float* x, int lane) const {
    float s = 0.f;
#pragma unroll
    for (int i = 0; i < NV4; ++i) {
      const float4 y = chunk(x, i, lane);
      s += c[i].x * y.x + c[i].y * y.y + c[i].z * y.z + c[i].w * y.w;
    }
    return s;
  }
  __device__ __forceinline__ void mul(const float* x, int lane) {
#pragma unroll
    for (int i = 0; i < NV4; ++i) {
      const float4 y = chunk(x, i, lane);
      c[i].x *= y.x, c[i].y *= y.y, c[i].z *= y.z, c[i].w *= y.w;
    }
  }
  __device__ __forceinline__ void scale(float a) {
#pragma unroll
    for (int i = 0; i < NV4; ++i) c[i].x *= a, c[i].y *= a, c[i].z *= a, c[i].w *= a;
  }
  // this += a * x
  __device__ __forceinline__ void axpy(float a, const float* x, int lane) {
#pragma unroll
    for (int i = 0; i < NV4; ++i) {
      const float4 y = chunk(x, i, lane);
      c[i].x += a * y.x, c[i].y += a * y.y, c[i].z += a * y.z, c[i].w += a * y.w;
    }
  }
};

// The rows a thread owns in a tile starting at `first`: first + i * teams + team, i < RPT (a warp's
// four teams take four consecutive rows).
struct TileRows {
  int team, lane, teams;
  __device__ TileRows() : team(threadIdx.x / kTeam), lane(threadIdx.x % kTeam), teams(blockDim.x / kTeam) {}
  __device__ __forceinline__ int row(int first, int i) const { return first + i * teams + team; }
};

// One channel of a causal depthwise conv at one token (same maths as kernels/reference/conv1d.h):
// y = act(bias + Σ_j w[j] · window_j), window = [the last W-1 inputs, oldest first] ++ x; afterwards the
// window drops its oldest value and appends x. load() issues every load of the channel at once (window,
// weights), so a thread's conv costs one memory round trip; the register arrays have a fixed size
// (W <= kMaxConvW) and are indexed by unrolled loops only.
constexpr int kMaxConvW = 4;
struct ConvTap {
  float win[kMaxConvW - 1], w[kMaxConvW];

  __device__ __forceinline__ void load(const float* window, const float* weights, int W) {
#pragma unroll
    for (int j = 0; j < kMaxConvW - 1; ++j) win[j] = j < W - 1 ? window[j] : 0.f;
#pragma unroll
    for (int j = 0; j < kMaxConvW; ++j) w[j] = j < W ? weights[j] : 0.f;
  }
  __device__ __forceinline__ float out(float x, float bias, int W, bool act) const {
    float acc = bias;
#pragma unroll
    for (int j = 0; j < kMaxConvW - 1; ++j) acc += w[j] * win[j];  // win[j] = 0 for j >= W-1
#pragma unroll
    for (int j = 0; j < kMaxConvW; ++j)
      if (j == W - 1) acc += w[j] * x;
    return act ? silu(acc) : acc;
  }
  // The window after this token, [win[1..W-2], x], into `window` (global or a shared-memory stash).
  __device__ __forceinline__ void shift_into(float* window, float x, int W) const {
#pragma unroll
    for (int j = 0; j < kMaxConvW - 1; ++j)
      if (j < W - 1) window[j] = j + 1 < W - 1 ? win[j + 1] : x;
  }
};

__device__ __forceinline__ float* slot_ptr(const SlotPool& p, const int* slots, int b) {
  return p.base + int64_t(slots[b]) * p.slot_stride;
}

}  // namespace linfer::kernels::cuda::detail
