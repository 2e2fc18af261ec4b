#pragma once
// Chunked prefill of the delta rule (DeltaNet, GDN) on the GPU, over packed variable-length sequences with
// their float32 states in a slot pool (kernels/cuda/slot_pool.h, the decode kernel's layout [HV, V, K]).
// Same recurrence and arguments as kernels/cpu/delta_rule.h's delta_rule_prefill (q, k, v, beta and the
// log decay g already final: no conv, no gate maths, no norm here). Chunks of 64 tokens, the WY/UT form of
// ../shared/research/kernels.md §1.4, in two launches:
//
//   prepare   one block per (chunk, value head), all chunks at once: q, k L2-normalised, the chunk-local
//             cumsum G of g, A_kk = β_i k_i·k_j e^{G_i-G_j} (j < i) and A_qk = q_i·k_j e^{G_i-G_j} (j <= i),
//             then (I + A_kk) [W | U] = diag(β) [K ⊙ e^G | V] by forward substitution (one thread per
//             column); W, U, A_qk, q ⊙ e^G and (k ⊙ e^{G_last-G})ᵀ go to a scratch area (float32)
//   state     one block per (sequence, value head, 32 value columns), walking the sequence's chunks with
//             its state tile in shared memory: V' = U - W S, O = (Q ⊙ e^G) S + A_qk V',
//             S <- e^{G_last} S + (K ⊙ e^{G_last-G})ᵀ V'
//
// Float32 inputs and arithmetic on CUDA cores (no tensor cores, no bf16 inputs yet). Not yet run on a GPU
// (2026-12-02: no device time was left; its logic was checked in a CPU emulation of the two kernels, one
// thread per CUDA thread, against the float64 reference); the CUDA backend does not call it until
// tests/cuda/test_cuda_delta_rule_prefill passes on a GPU. The scratch, 4·(3·64·K + 64·V + 64²) bytes per
// (chunk, value head) (2.25 GiB at T = 32K, 32 heads × 128), is taken with cudaMallocAsync on the stream and
// freed on it. `offsets` are on the host; every other pointer is device memory.
//
//   delta_rule_prefill(shape, in, offsets, SlotPool{pool + s_offset, slot_floats}, d_slots, d_o, stream);

#include <cuda_runtime.h>

#include <cstdint>
#include <span>

#include "kernels/cpu/delta_rule.h"
#include "kernels/cuda/slot_pool.h"

namespace linfer::kernels::cuda {

// Whether delta_rule_prefill takes this shape: decay None or Scalar, K <= 128 and a multiple of 4, V <= 256.
bool delta_rule_prefill_supported(const DeltaRuleShape& shape);

// Sequence i owns tokens [offsets[i], offsets[i+1]) of `in` and the state at state.base + slots[i] *
// state.slot_stride, updated in place. o: [T, HV, V]. beta, g dense [T, HV]. Throws linfer::Error on an
// unsupported shape or bad arguments, before touching the device.
void delta_rule_prefill(const DeltaRuleShape& shape, const DeltaRuleInputs& in, std::span<const int64_t> offsets,
                        SlotPool state, const int32_t* slots, float* o, cudaStream_t stream);

}  // namespace linfer::kernels::cuda
