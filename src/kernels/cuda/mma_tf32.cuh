#pragma once
// Warp-level tensor-core products in TF32 with float32 accumulation (mma.sync m16n8k8, sm_80 and later), and
// cp.async copies global -> shared (with zero fill), for kernels that stage tiles in shared memory.
//
// Fragment layouts of mma.m16n8k8 .tf32 (PTX ISA), lane = 4 * gid + tig (gid 0..7, tig 0..3):
//   A 16x8 (row major)  a0 (gid, tig)  a1 (gid + 8, tig)  a2 (gid, tig + 4)  a3 (gid + 8, tig + 4)
//   B 8x8 (k x n)       b0 (tig, gid)  b1 (tig + 4, gid)
//   C 16x8              c0 (gid, 2 tig)  c1 (gid, 2 tig + 1)  c2 (gid + 8, 2 tig)  c3 (gid + 8, 2 tig + 1)
//
// kSplit = true is "3xTF32": each operand as a TF32 high part plus a TF32 remainder, and three products
// (lo·hi + hi·lo + hi·hi), which gives sums of float32 quality for three times the tensor work; false is one
// TF32 product (10-bit mantissas, relative error near 1e-4 .. 1e-3 on a dot product).

#include <cstdint>

namespace linfer::kernels::cuda {

// TF32 is the 19 high bits of a float32 (sign, exponent, 10 mantissa bits). One product: round half away from
// zero in magnitude (two integer operations, cheaper than cvt.rna.tf32.f32). 3xTF32: the high part truncated
// (exact remainder x - hi, < 2^-10 |x|), the remainder truncated in turn (off by < 2^-20 |x|). Inputs finite.
__device__ inline uint32_t to_tf32(float x) { return (__float_as_uint(x) + 0x1000u) & 0xffffe000u; }
__device__ inline uint32_t tf32_trunc(float x) { return __float_as_uint(x) & 0xffffe000u; }

template <int N>
struct Tf32Frag {
  uint32_t hi[N], lo[N];
};

// The TF32 part(s) of one value: hi, and with kSplit the remainder lo.
template <bool kSplit>
__device__ inline void tf32_split(float x, uint32_t& hi, uint32_t& lo) {
  if constexpr (kSplit) {
    hi = tf32_trunc(x);
    lo = tf32_trunc(x - __uint_as_float(hi));
  } else {
    hi = to_tf32(x);
    lo = 0u;
  }
}

template <bool kSplit, int N>
__device__ inline Tf32Frag<N> tf32_frag(const float (&x)[N]) {
  Tf32Frag<N> f;
#pragma unroll
  for (int i = 0; i < N; ++i) tf32_split<kSplit>(x[i], f.hi[i], f.lo[i]);
  return f;
}

// A B fragment from operands stored already split (tf32_split) in two planes: elements i0 and i1 of each.
template <bool kSplit>
__device__ inline Tf32Frag<2> tf32_frag_split(const uint32_t* hi, const uint32_t* lo, int i0, int i1) {
  Tf32Frag<2> f;
  f.hi[0] = hi[i0], f.hi[1] = hi[i1];
  f.lo[0] = kSplit ? lo[i0] : 0u, f.lo[1] = kSplit ? lo[i1] : 0u;
  return f;
}

__device__ inline void mma_tf32_raw(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// d += a · b (one 16x8x8 step). With kSplit the two small products go to their own accumulator dl (add it to
// d at the end: fold), so that the three products form two dependency chains instead of one three times
// as long; without kSplit dl is untouched.
template <bool kSplit>
__device__ inline void mma_tf32(float (&d)[4], float (&dl)[4], const Tf32Frag<4>& a, const Tf32Frag<2>& b) {
  if constexpr (kSplit) {
    mma_tf32_raw(dl, a.lo, b.hi);
    mma_tf32_raw(dl, a.hi, b.lo);
  }
  mma_tf32_raw(d, a.hi, b.hi);
}

template <bool kSplit, int N>
__device__ inline void fold(float (&d)[N][4], const float (&dl)[N][4]) {
  if constexpr (kSplit)
#pragma unroll
    for (int n = 0; n < N; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) d[n][e] += dl[n][e];
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

}  // namespace linfer::kernels::cuda
