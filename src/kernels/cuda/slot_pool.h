#pragma once
// Where the CUDA kernels find a sequence's state: one state tensor of every sequence, in a device pool of
// float32 slots. Sequence b of a batched call uses slot slots[b]; its tensor starts at
// base + slots[b] * slot_stride (floats) and has the layout of the CPU kernels (docs/architecture.md,
// "Kernel conventions"): [HV, V, K] v-major for the delta rule and linear attention, [H, P, N] for Mamba2,
// [C, W-1] oldest first for conv windows. Several tensors of one layer may share a pool: give each its
// own base (offset within the slot) and the same stride. The decode kernels read slots[] before the
// kernel launched just before them has finished (launch.cuh: they start their state's fetch into L2 while
// it runs), so the slot table must not be written by that kernel: fill it by a copy or an earlier kernel.
//
//   SlotPool S{pool + offset_of_S, floats_per_slot};
//   delta_rule_decode(args, S, d_slots, B, d_o, stream);

#include <cstdint>

namespace linfer::kernels::cuda {

struct SlotPool {
  float* base = nullptr;    // device memory
  int64_t slot_stride = 0;  // floats between consecutive slots
};

}  // namespace linfer::kernels::cuda
