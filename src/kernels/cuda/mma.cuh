#pragma once
// Warp-level tensor-core products with float32 accumulation (mma.sync, sm_80 and later) in three kinds of
// arithmetic, cp.async copies global -> shared (with zero fill) and bulk copies (the copy engine), for kernels
// that stage tiles in shared memory. Operands are float32 where they are stored; a fragment is built from them
// per product step:
//
//   Tf32     one TF32 product (m16n8k8, 10-bit mantissas, relative error near 1e-4 .. 1e-3 on a dot product)
//   Tf32x3   each operand a TF32 high part plus a TF32 remainder and three products (lo·hi + hi·lo + hi·hi):
//            sums of float32 quality for three times the tensor work
//   Bf16     one bf16 product (m16n8k16, 8-bit mantissas, k steps of 16: a sixth of Tf32x3's mma count)
//
// Fragment layouts (PTX ISA), lane = 4 * gid + tig (gid 0..7, tig 0..3):
//   m16n8k8 .tf32   A a0 (gid, tig)  a1 (gid + 8, tig)  a2 (gid, tig + 4)  a3 (gid + 8, tig + 4)
//                   B b0 (tig, gid)  b1 (tig + 4, gid)
//   m16n8k16 .bf16  A a0 (gid, 2 tig .. +1)  a1 (gid + 8, 2 tig .. +1)  a2 (gid, 2 tig + 8 .. +9)
//                     a3 (gid + 8, 2 tig + 8 .. +9)   (two bf16 per register, the lower k in the low half)
//                   B b0 (2 tig .. +1, gid)  b1 (2 tig + 8 .. +9, gid)
//   both            C c0 (gid, 2 tig)  c1 (gid, 2 tig + 1)  c2 (gid + 8, 2 tig)  c3 (gid + 8, 2 tig + 1)

#include <cuda_bf16.h>

#include <cstdint>

#include "kernels/cuda/mma_math.h"

namespace linfer::kernels::cuda {

// The k extent of one product step.
template <MmaMath M>
inline constexpr int kMmaK = M == MmaMath::Bf16 ? 16 : 8;

// A thread's share of a 16 x k A fragment and a k x 8 B fragment; lo only for Tf32x3.
struct FragA {
  uint32_t hi[4], lo[4];
};
struct FragB {
  uint32_t hi[2], lo[2];
};

// TF32 is the 19 high bits of a float32 (sign, exponent, 10 mantissa bits). One product: round half away from
// zero in magnitude (two integer operations, cheaper than cvt.rna.tf32.f32). 3xTF32: the high part truncated
// (exact remainder x - hi, < 2^-10 |x|), the remainder truncated in turn (off by < 2^-20 |x|). Inputs finite.
__device__ inline uint32_t to_tf32(float x) { return (__float_as_uint(x) + 0x1000u) & 0xffffe000u; }
__device__ inline uint32_t tf32_trunc(float x) { return __float_as_uint(x) & 0xffffe000u; }

// An operand stored for reuse by several fragments ("planes"): Tf32x3 its TF32 high part and remainder, Tf32
// its TF32 rounding, Bf16 the float itself (rounded to bf16 when a fragment is built, two at a time).
template <MmaMath M>
__device__ inline void plane_split(float x, uint32_t& hi, uint32_t& lo) {
  if constexpr (M == MmaMath::Tf32x3) {
    hi = tf32_trunc(x);
    lo = tf32_trunc(x - __uint_as_float(hi));
  } else if constexpr (M == MmaMath::Tf32) {
    hi = to_tf32(x);
  } else {
    hi = __float_as_uint(x);
  }
}

// Two floats as a bf16 pair (round to nearest even), k in the low half and k + 1 in the high half.
__device__ inline uint32_t bf16_pair(float k0, float k1) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(k0, k1);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// x as three bf16 terms (bits) whose sum is x exactly: hi = bf16(x), then bf16 of what hi leaves, then of what
// that leaves (8 significant bits each, 24 in all; each remainder is exact in float32). A bf16 product of each
// term with a bf16 operand is exact in float32, so their three sums give a float32-grade product of x.
__device__ inline void bf16x3(float x, uint16_t (&t)[3]) {
#pragma unroll
  for (int i = 0; i < 3; ++i) {
    const __nv_bfloat16 b = __float2bfloat16_rn(x);
    t[i] = __bfloat16_as_ushort(b);
    x -= __bfloat162float(b);
  }
}

// Four bf16 (two pairs as bf16_pair packs them) widened to float32, exactly.
__device__ inline float4 bf16x4_to_float4(uint2 x) {
  return make_float4(__uint_as_float(x.x << 16), __uint_as_float(x.x & 0xFFFF0000u), __uint_as_float(x.y << 16),
                     __uint_as_float(x.y & 0xFFFF0000u));
}

// The A fragment of the product step at k0: at(r, k) is the element of row r (gid or gid + 8 of the 16-row tile)
// and column k.
template <MmaMath M, class At>
__device__ inline FragA frag_a(At&& at, int k0) {
  const int lane = threadIdx.x & 31, gid = lane >> 2, tig = lane & 3;
  FragA f;
  if constexpr (M == MmaMath::Bf16) {
    const int c = k0 + 2 * tig;
    f.hi[0] = bf16_pair(at(gid, c), at(gid, c + 1));
    f.hi[1] = bf16_pair(at(gid + 8, c), at(gid + 8, c + 1));
    f.hi[2] = bf16_pair(at(gid, c + 8), at(gid, c + 9));
    f.hi[3] = bf16_pair(at(gid + 8, c + 8), at(gid + 8, c + 9));
  } else {
    const int c = k0 + tig;
    const float x[4] = {at(gid, c), at(gid + 8, c), at(gid, c + 4), at(gid + 8, c + 4)};
#pragma unroll
    for (int i = 0; i < 4; ++i) plane_split<M>(x[i], f.hi[i], f.lo[i]);
  }
  return f;
}

// The B fragment of the product step at k0 for this thread's column (gid of the 8-column tile): at(k) = B(k, n).
template <MmaMath M, class At>
__device__ inline FragB frag_b(At&& at, int k0) {
  const int tig = threadIdx.x & 3;
  FragB f;
  if constexpr (M == MmaMath::Bf16) {
    const int c = k0 + 2 * tig;
    f.hi[0] = bf16_pair(at(c), at(c + 1));
    f.hi[1] = bf16_pair(at(c + 8), at(c + 9));
  } else {
    const float x[2] = {at(k0 + tig), at(k0 + tig + 4)};
#pragma unroll
    for (int i = 0; i < 2; ++i) plane_split<M>(x[i], f.hi[i], f.lo[i]);
  }
  return f;
}

// The same from operands stored as planes (plane_split): idx(k) is the index of B(k, n) in hi and lo.
template <MmaMath M, class Idx>
__device__ inline FragB frag_b_planes(const uint32_t* hi, const uint32_t* lo, Idx&& idx, int k0) {
  const int tig = threadIdx.x & 3;
  FragB f;
  if constexpr (M == MmaMath::Bf16) {
    const int c = k0 + 2 * tig;
    f.hi[0] = bf16_pair(__uint_as_float(hi[idx(c)]), __uint_as_float(hi[idx(c + 1)]));
    f.hi[1] = bf16_pair(__uint_as_float(hi[idx(c + 8)]), __uint_as_float(hi[idx(c + 9)]));
  } else {
    const int i0 = idx(k0 + tig), i1 = idx(k0 + tig + 4);
    f.hi[0] = hi[i0], f.hi[1] = hi[i1];
    if constexpr (M == MmaMath::Tf32x3) f.lo[0] = lo[i0], f.lo[1] = lo[i1];
  }
  return f;
}

__device__ inline void mma_tf32_raw(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

__device__ inline void mma_bf16_raw(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// d += a · b (one product step). Tf32x3's two small products go to their own accumulator dl (add it to d at
// the end: fold), so that the three products form two dependency chains instead of one three times as long;
// the other kinds leave dl untouched.
template <MmaMath M>
__device__ inline void mma(float (&d)[4], float (&dl)[4], const FragA& a, const FragB& b) {
  if constexpr (M == MmaMath::Bf16) {
    mma_bf16_raw(d, a.hi, b.hi);
  } else {
    if constexpr (M == MmaMath::Tf32x3) {
      mma_tf32_raw(dl, a.lo, b.hi);
      mma_tf32_raw(dl, a.hi, b.lo);
    }
    mma_tf32_raw(d, a.hi, b.hi);
  }
}

template <MmaMath M, int N>
__device__ inline void fold(float (&d)[N][4], const float (&dl)[N][4]) {
  if constexpr (M == MmaMath::Tf32x3)
#pragma unroll
    for (int n = 0; n < N; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) d[n][e] += dl[n][e];
}

// ldmatrix: four 8x8 tiles of 16-bit elements from shared memory, lanes 8 i .. 8 i + 7 giving the row addresses
// (16-byte aligned, 16 bytes each) of tile i; register i of a lane holds its pair of tile i: row lane / 4,
// columns 2 (lane % 4) .. +1, or with .trans column lane / 4, rows 2 (lane % 4) .. +1. So a row-major [m][k]
// bf16 tile gives A fragments and a [n][k] one B fragments as stored; [k][m] and [k][n] tiles (transposed)
// through .trans. x2: tiles 0 and 1 (lanes 0..15 give the addresses).
__device__ inline void ldmatrix_x4(uint32_t (&r)[4], const void* row, bool trans) {
  const unsigned a = unsigned(__cvta_generic_to_shared(row));
  if (trans)
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
  else
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
}
__device__ inline void ldmatrix_x2(uint32_t (&r)[2], const void* row) {
  const unsigned a = unsigned(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];" : "=r"(r[0]), "=r"(r[1]) : "r"(a));
}

// Fragment addresses for ldmatrix_x4 (lane's row pointer into a bf16 tile with row stride ld): A of rows
// m0 .. m0 + 15 from a row-major [m][k] tile; A from a [k][m] tile (.trans); B of columns n0 .. n0 + 15 (two
// 8-column tiles: registers 0-1 and 2-3) from an [n][k] tile; B from a [k][n] tile (.trans). Add k0 (row-major
// forms) or k0 ld (transposed forms) per product step.
template <class T>
__device__ inline const T* a_rows(const T* t, int ld, int m0) {
  const int lane = threadIdx.x & 31;
  return t + (m0 + (lane & 7) + ((lane >> 3) & 1) * 8) * ld + (lane >> 4) * 8;
}
template <class T>
__device__ inline const T* a_cols(const T* t, int ld, int m0) {
  const int lane = threadIdx.x & 31;
  return t + ((lane & 7) + (lane >> 4) * 8) * ld + m0 + ((lane >> 3) & 1) * 8;
}
template <class T>
__device__ inline const T* b_rows(const T* t, int ld, int n0) {
  const int lane = threadIdx.x & 31;
  return t + (n0 + (lane & 7) + (lane >> 4) * 8) * ld + ((lane >> 3) & 1) * 8;
}
template <class T>
__device__ inline const T* b_cols(const T* t, int ld, int n0) {
  const int lane = threadIdx.x & 31;
  return t + ((lane & 7) + ((lane >> 3) & 1) * 8) * ld + n0 + (lane >> 4) * 8;
}

// acc[0] += a · b[0..1], acc[1] += a · b[2..3] (bf16 m16n8k16: a 16 x 16 A fragment by two 8-column B fragments)
__device__ inline void mma2(float (&acc)[2][4], const uint32_t (&a)[4], const uint32_t (&b)[4]) {
  const uint32_t b0[2] = {b[0], b[1]}, b1[2] = {b[2], b[3]};
  mma_bf16_raw(acc[0], a, b0);
  mma_bf16_raw(acc[1], a, b1);
}

// cp.async of 16 or 4 bytes; with valid false the destination is zero-filled and nothing is read (src must
// still be a mapped address).
__device__ inline void cp_async16(float* smem, const float* src, bool valid) {
  const unsigned s = unsigned(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(s), "l"(src), "r"(valid ? 16 : 0));
}
__device__ inline void cp_async4(float* smem, const float* src, bool valid) {
  const unsigned s = unsigned(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;" ::"r"(s), "l"(src), "r"(valid ? 4 : 0));
}
__device__ inline void cp_async_commit() { asm volatile("cp.async.commit_group;"); }
template <int kPending>
__device__ inline void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;" ::"n"(kPending));
}

// Bulk copies (cp.async.bulk, sm_90: the copy engine moves a whole contiguous tile for one thread's instruction)
// and the shared-memory barriers (mbarrier) their loads complete on. Addresses and sizes are multiples of 16
// bytes. A load global -> shared adds its bytes to the barrier's transaction count as they land; the barrier's
// phase completes once its expected arrivals have come (mbar_arrive_expect_tx: one arrival that also announces
// the bytes to wait for) and every announced byte has landed. A store shared -> global reads shared memory
// through the async proxy: each thread that wrote what it reads runs fence_proxy_async() before the barrier
// that lets the issuing thread go on, and the issuing thread waits for the read (bulk_wait_read) before that
// shared memory is written again; it waits for the whole store (bulk_wait) before the block exits.
__device__ inline unsigned smem_u32(const void* p) { return unsigned(__cvta_generic_to_shared(p)); }
__device__ inline void mbar_init(uint64_t* bar, unsigned arrivals) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem_u32(bar)), "r"(arrivals) : "memory");
}
__device__ inline void mbar_init_fence() {  // once, by the thread that initialised barriers, before a block barrier
  asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
}
__device__ inline void mbar_arrive_expect_tx(uint64_t* bar, unsigned bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_u32(bar)), "r"(bytes) : "memory");
}
// Waits until the barrier's phase of this parity (0 for its first phase, 1 for the second, ...) has completed;
// cluster: other blocks of the cluster arrive on it (their arrivals' releases are acquired)
__device__ inline void mbar_wait(uint64_t* bar, unsigned parity, bool cluster = false) {
  unsigned done = 0;
  do {
    if (cluster)
      asm volatile(
          "{\n .reg .pred p;\n mbarrier.try_wait.parity.acquire.cluster.shared::cta.b64 p, [%1], %2;\n"
          " selp.u32 %0, 1, 0, p;\n}"
          : "=r"(done)
          : "r"(smem_u32(bar)), "r"(parity)
          : "memory");
    else
      asm volatile(
          "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}"
          : "=r"(done)
          : "r"(smem_u32(bar)), "r"(parity)
          : "memory");
  } while (!done);
}
// One arrival, released to the cluster, on the barrier at bar's offset in the shared memory of the cluster's block
// of rank `rank` (the arriving thread's earlier reads and writes are ordered before it)
__device__ inline void mbar_arrive_remote(uint64_t* bar, unsigned rank) {
  unsigned remote;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(remote) : "r"(smem_u32(bar)), "r"(rank));
  asm volatile("mbarrier.arrive.release.cluster.shared::cluster.b64 _, [%0];" ::"r"(remote) : "memory");
}
// multicast (the loads below): 0, into this block's shared memory; else bit r for each rank r of the cluster whose
// shared memory gets the same bytes, at dst's offset in each, counted on the barrier at bar's offset in each
__device__ inline void bulk_load(void* dst, const void* src, unsigned bytes, uint64_t* bar, uint16_t multicast = 0) {
  if (multicast)
    asm volatile(
        "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.multicast::cluster [%0], [%1], %2, [%3], %4;"
        ::"r"(smem_u32(dst)), "l"(src), "r"(bytes), "r"(smem_u32(bar)), "h"(multicast)
        : "memory");
  else
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];"
                 ::"r"(smem_u32(dst)), "l"(src), "r"(bytes), "r"(smem_u32(bar))
                 : "memory");
}
// A box of a 3-D tensor map (tensor_map.h; map: the address of a __grid_constant__ kernel parameter) at coordinates
// (c0, c1, c2) into dst (aligned as the map's swizzle needs: 1024 bytes for 128-byte swizzle), all of the box's
// bytes counted on bar (parts outside the tensor arrive as zeros)
__device__ inline void tensor_load_3d(void* dst, const void* map, int c0, int c1, int c2, uint64_t* bar,
                                      uint16_t multicast = 0) {
  if (multicast)
    asm volatile(
        "cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes.multicast::cluster"
        " [%0], [%1, {%2, %3, %4}], [%5], %6;"
        ::"r"(smem_u32(dst)), "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(smem_u32(bar)),
        "h"(multicast)
        : "memory");
  else
    asm volatile(
        "cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], [%5];"
        ::"r"(smem_u32(dst)), "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(smem_u32(bar))
        : "memory");
}
__device__ inline void bulk_store(void* dst, const void* src, unsigned bytes) {  // then bulk_commit
  asm volatile("cp.async.bulk.global.shared::cta.bulk_group [%0], [%1], %2;" ::"l"(dst), "r"(smem_u32(src)), "r"(bytes)
               : "memory");
}
__device__ inline void bulk_commit() { asm volatile("cp.async.bulk.commit_group;" ::: "memory"); }
template <int kPending>
__device__ inline void bulk_wait_read() {  // this thread's stores but the last kPending groups have read shared memory
  asm volatile("cp.async.bulk.wait_group.read %0;" ::"n"(kPending) : "memory");
}
template <int kPending>
__device__ inline void bulk_wait() {  // ... and have completed
  asm volatile("cp.async.bulk.wait_group %0;" ::"n"(kPending) : "memory");
}
__device__ inline void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;" ::: "memory"); }

}  // namespace linfer::kernels::cuda
