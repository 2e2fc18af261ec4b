#pragma once
// Chunked prefill of the delta rule (DeltaNet, GDN, KDA) and of Mamba2's SSD on the GPU, over packed
// variable-length sequences with their float32 states in a slot pool (kernels/cuda/slot_pool.h, the decode
// kernels' layouts: [HV, V, K] for the delta rule, [H, P, N] for Mamba2, so decode continues from them).
// Same recurrence and arguments as kernels/cpu/delta_rule.h's delta_rule_prefill (q, k, v, beta and the
// log decay g already final: no conv, no gate maths, no norm here). Chunks of 64 tokens in the WY/UT form of
// ../shared/research/kernels.md §1.4, with T = (I + A_kk)^-1, so that V' = U - W S = T diag(β) (V - (K ⊙ e^G) S)
// needs only T and the raw inputs, in two launches:
//
//   prepare   one block per (chunk, value head), all chunks at once: the chunk-local cumsum G of g, the q / k
//             norms, K Kᵀ and Q Kᵀ on the tensor cores, A_kk = β_i k̂_i·k̂_j e^{G_i-G_j} (j < i) and
//             A_qk = q̂_i·k̂_j e^{G_i-G_j} (j <= i), T by 16x16 blocks (forward substitution on the diagonal
//             blocks, then block products); T and A_qk packed in one 64x64 tile plus per-row factors
//             (17 KB of scratch per chunk and value head)
//             KDA (decay per key channel, g [T, HV, K]): G is a cumsum down each channel, so the decay between
//             tokens j <= i is e^{G_i - G_j} per channel inside the dot product: the products of a 16-row
//             sub-block b are one tensor-core product of (q | k)_i ⊙ e^{G_i - G_r} and k_j ⊙ e^{G_r - G_j} with
//             r the middle row of b (e^{G_i} e^{-G_j} would overflow, a chunk's decay reaching e^-300), where no
//             channel decays by more than e^20 over 8 tokens; in steeper chunks r is b's first row for the
//             blocks left of the diagonal (both factors <= 1) and the diagonal blocks go element by element; the
//             state pass's operands q ⊙ e^G, k ⊙ e^G, k ⊙ e^{G_last - G} go to the scratch too (+96 KB per chunk
//             and value head at K = 128; bf16 tiles in the bf16 mode), and the norms stay row factors
//   state     one block of 16 warps per (sequence, value head, 32 value columns), walking the sequence's chunks
//             with its state tile in registers (mma accumulators, a 16x16 piece per warp: 4 warps per scheduler
//             hide the latency of the dependent products) and shared memory, the next chunk's q, k, v tile and
//             scratch streaming in (cp.async, double buffer) meanwhile: Y = β (v - a_k ⊙ (k S)), V' = T Y,
//             O = a_q ⊙ (q S) + A_qk V', S <- e^{G_last} S + (k ⊙ d)ᵀ V', every product on the tensor cores
//             (the norms and gates as row factors a_q, a_k, d, so q, k, v are used as they come); S and V',
//             which every warp reads, are kept in shared memory already split into TF32 parts. KDA: q and k are
//             the scratch's decayed tiles, k ⊙ e^{G_last - G} replaces k's tile after the first products, and
//             S decays by e^{G_last} per key channel
//
// Mamba2 (mamba2_prefill, the maths of kernels/cpu/mamba2_ssd.h) is the same two launches without the delta
// correction: a scalar-decay linear attention with q = C [T, G, N], k = B [T, G, N], v = x [T, H, P], the H
// heads as value heads and the G groups as q / k heads, g = dt · -exp(A_log), beta = dt (dt =
// clamp(softplus(dt_raw + dt_bias)) computed in the prepare pass), scale 1, no norms. Per chunk, with
// G_i the cumsum of g: Y = (C Bᵀ ⊙ L) (dt ⊙ X) + (e^{G} ⊙ C) Sᵀ + D X, L_ij = e^{G_i - G_j} (j <= i), and
// S <- e^{G_last} S + (dt ⊙ X)ᵀ (e^{G_last - G} ⊙ B). So the prepare pass computes only A_qk = C Bᵀ ⊙ L (no
// A_kk, no inverse: T = I) and the state pass skips k S (V' = dt ⊙ x as it comes).
//
// The products are mma.sync with float32 accumulation (kernels/cuda/mma.cuh): by default 3xTF32 (each operand
// a TF32 high part plus a TF32 remainder, three products), which matches float32 arithmetic (‖Δ‖/‖ref‖ ~1e-6
// against the float64 reference); PrefillMath::Tf32, one product, is ~1.3x faster end to end but ~5e-4 off,
// which the Qwen3-Next golden fixtures amplify to 0.3 relative in the logits (H200, 2026-12-02): not for
// models; PrefillMath::Bf16, one bf16 product on operands rounded to bf16 (~4e-3 off, issue 11's bound for bf16
// inputs is 5e-3), is the fastest for every rule (delta_rule_prefill_bf16.cu): the prepare pass also computes
// W = T (β a_k ⊙ k) and U = T (β ⊙ v), and the state pass, per chunk, V' = U - W S, the chunk's outputs and S's
// update, every operand bf16 in shared memory, every fragment one ldmatrix (Mamba2 keeps a third launch for its
// outputs). GDN / DeltaNet with bf16 rows that TMA can copy (16-byte aligned, K and V multiples of 8), and KDA with
// such v rows, skip the W / U step: their state pass reads v (GDN: q, k and v) as it is and computes
// V' = T β (v - a_k ⊙ k S) itself (delta_rule_prefill_raw.cu). Speed and the split between the launches:
// docs/benchmarks.md, "GPU chunked GDN prefill" (and its KDA table, and the sections after it).
// The scratch is taken with cudaMallocAsync on the stream and freed on it. `offsets` are on the host; every
// other pointer is device memory.
//
//   delta_rule_prefill(shape, in, offsets, SlotPool{pool + s_offset, slot_floats}, d_slots, d_o, stream);
//   mamba2_prefill(dims, params, in, offsets, SlotPool{ssm_pool, slot_floats}, d_slots, d_y, stream);

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <span>

#include "kernels/cpu/delta_rule.h"
#include "kernels/cpu/mamba2_ssd.h"
#include "kernels/cuda/mma_math.h"
#include "kernels/cuda/slot_pool.h"

namespace linfer::kernels::cuda {

// How the chunk products run on the tensor cores (kernels/cuda/mma_math.h): one TF32 product, 3xTF32 or one bf16
// product, float32 accumulation; outputs and the state stay float32 in every mode, and so do the inputs except
// where the bf16-input entry points below hand q / k / v (Mamba2: x / B / C) over in bf16 (then one bf16 product).
using PrefillMath = MmaMath;

// Whether delta_rule_prefill takes this shape: any decay (None, Scalar, PerKey), K <= 128 and a multiple of 4,
// V <= 256, HV a multiple of H.
bool delta_rule_prefill_supported(const DeltaRuleShape& shape);

// Sequence i owns tokens [offsets[i], offsets[i+1]) of `in` and the state at state.base + slots[i] *
// state.slot_stride, updated in place. o: [T, HV, V]. beta dense [T, HV]; g dense [T, HV] (Scalar) or
// [T, HV, K] (PerKey), null for None. Throws linfer::Error on an
// unsupported shape or bad arguments, before touching the device.
void delta_rule_prefill(const DeltaRuleShape& shape, const DeltaRuleInputs& in, std::span<const int64_t> offsets,
                        SlotPool state, const int32_t* slots, float* o, cudaStream_t stream,
                        PrefillMath math = PrefillMath::Tf32x3);

// q, k and v in bf16 (beta, g, the state and o stay float32), as flash-linear-attention and vLLM hand them to
// their kernels: the bf16 passes (PrefillMath::Bf16) take them as they come, at half the bytes of float32 inputs.
// Strides in elements, 0 for dense rows; DeltaRuleInputs has the rest.
struct DeltaRuleInputsBf16 {
  const __nv_bfloat16* q = nullptr;
  const __nv_bfloat16* k = nullptr;
  const __nv_bfloat16* v = nullptr;
  const float* beta = nullptr;
  const float* g = nullptr;
  int64_t q_stride = 0, k_stride = 0, v_stride = 0;
};

// delta_rule_prefill on bf16 q, k, v, in PrefillMath::Bf16.
void delta_rule_prefill(const DeltaRuleShape& shape, const DeltaRuleInputsBf16& in, std::span<const int64_t> offsets,
                        SlotPool state, const int32_t* slots, float* o, cudaStream_t stream);

// Whether mamba2_prefill takes this shape: N <= 128 and a multiple of 4, P <= 256, H a multiple of G.
bool mamba2_prefill_supported(const Mamba2Dims& dims);

// Mamba2's SSD over packed sequences: sequence i owns tokens [offsets[i], offsets[i+1]) of `in` (x [T, H, P],
// raw dt [T, H], B and C [T, G, N], strided as Mamba2Inputs says) and the state [H, P, N] at state.base +
// slots[i] * state.slot_stride, updated in place. y: [T, H, P] (the D skip included; the gated norm is the
// mixer's). params: A_log, dt_bias, D (may be null) in device memory. Throws linfer::Error as
// delta_rule_prefill does.
void mamba2_prefill(const Mamba2Dims& dims, const Mamba2Params& params, const Mamba2Inputs& in,
                    std::span<const int64_t> offsets, SlotPool state, const int32_t* slots, float* y,
                    cudaStream_t stream, PrefillMath math = PrefillMath::Tf32x3);

// Mamba2's inputs with x, B and C in bf16 (raw dt float32; strides in elements, 0 for dense rows), as
// Mamba2Inputs has them otherwise.
struct Mamba2InputsBf16 {
  const __nv_bfloat16* x = nullptr;
  const float* dt = nullptr;
  const __nv_bfloat16* B = nullptr;
  const __nv_bfloat16* C = nullptr;
  int64_t x_stride = 0, dt_stride = 0, B_stride = 0, C_stride = 0;
};

// mamba2_prefill on bf16 x, B, C, in PrefillMath::Bf16.
void mamba2_prefill(const Mamba2Dims& dims, const Mamba2Params& params, const Mamba2InputsBf16& in,
                    std::span<const int64_t> offsets, SlotPool state, const int32_t* slots, float* y,
                    cudaStream_t stream);

}  // namespace linfer::kernels::cuda
