#pragma once
// Fused batched decode step of the delta-rule family (DeltaNet, GDN, KDA) on the GPU: one token for each
// of B sequences, the float32 state of each read and written once, in one kernel. The recurrence is
// kernels/cpu/delta_rule.h's delta_rule_step (same DeltaRuleShape / DeltaRuleInputs); around it the kernel
// optionally fuses what a GDN / KDA layer does between its projections and o_proj:
//
//   q, k, v  <- SiLU(causal conv of width W)      conv windows in the slot pool      (conv_width > 0)
//   q, k     <- x / sqrt(sum(x²) + 1e-6)          shape.l2norm_qk
//   g        <- -exp(A_log[hv]) · softplus(g_raw + dt_bias)                          (A_log set)
//   beta     <- sigmoid(beta_logit)                                                   (beta_logits)
//   S, o     <- the delta rule, kernels/cpu/delta_rule.h
//   o        <- o / sqrt(mean_V(o²) + eps) · norm_w · act(gate), per value head       (norm_w set)
//
// i.e. conv1d_step + gate maths + delta_rule_step + rms_norm_gated of the CPU kernels, composed. All
// pointers are device memory. The kernel runs `split` blocks per (sequence, q/k head), each streaming a
// slice of the state rows of the HV / H value heads that share the q/k head (several for the smallest
// batches, so that more SMs stream the state); every window and state row has exactly one writer. The blocks
// of a head form a thread-block cluster only where they share work (the q/k conv windows, the output norm):
// then 2 at most by default, else as many as the SMs take one each (4 for 32 heads x 128 rows at B = 1).
//
//   DeltaDecodeArgs a{.shape = {.H = 16, .HV = 32, .K = 128, .V = 128, .decay = DeltaDecay::Scalar,
//                               .l2norm_qk = true},
//                     .in = {.q = qkv, .k = qkv + kd, .v = qkv + 2 * kd, .beta = b, .g = a_raw,
//                            .q_stride = C, .k_stride = C, .v_stride = C},
//                     .conv_width = 4, .conv_q = {w, conv}, .conv_k = {...}, .conv_v = {...},
//                     .A_log = A_log, .dt_bias = dt_bias, .beta_logits = true,
//                     .norm_w = norm_w, .norm_gate = z, .norm_act = GateAct::Silu, .norm_eps = 1e-6f};
//   delta_rule_decode(a, SlotPool{pool + s_offset, slot_floats}, d_slots, B, d_o, stream);   // o: [B, HV, V]

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cpu/delta_rule.h"
#include "kernels/cpu/norm.h"
#include "kernels/cuda/slot_pool.h"

namespace linfer::kernels::cuda {

// One input's causal conv: weights [C, W] (float32) and the windows [C, W-1] of every slot, where C is the
// input's channel count (H·K for q and k, HV·V for v) and channel c of the input is row c of both.
struct DecodeConv {
  const float* w = nullptr;
  SlotPool state;
};

struct DeltaDecodeArgs {
  DeltaRuleShape shape;  // K <= 256
  DeltaRuleInputs in;    // B tokens, token b for sequence b; g / beta raw or final, see below
  int64_t conv_width = 0;  // W in 1..4: q, k, v are pre-conv projections, convolved + SiLU here (GDN, KDA: 4)
  DecodeConv conv_q, conv_k, conv_v;
  const float* A_log = nullptr;    // [HV]: when set, in.g is the raw gate, g = -exp(A_log) · softplus(in.g + dt_bias)
  const float* dt_bias = nullptr;  // Scalar decay [HV], PerKey [HV, K]; null = 0
  bool beta_logits = false;        // in.beta holds logits: beta = sigmoid(in.beta)
  const float* norm_w = nullptr;   // [V]: when set, the gated RMSNorm per value head is applied to o
  const float* norm_gate = nullptr;  // [B, norm_gate_stride], value head hv at column hv·V
  int64_t norm_gate_stride = 0;      // 0 means HV·V
  GateAct norm_act = GateAct::Silu;  // GDN: SiLU, KDA: sigmoid
  float norm_eps = 1e-6f;
  int split = 0;  // blocks per (sequence, q/k head), a cluster where they share work: 0 picks by batch size; 1, 2, 4, 8
};

// One decode step for B sequences; sequence b's state [HV, V, K] is at state.base + slots[b] *
// state.slot_stride and is updated in place. o: [B, HV, V]. Throws linfer::Error on shapes the kernel
// does not support (K > 256, HV % H != 0, ...) or a CUDA launch error.
void delta_rule_decode(const DeltaDecodeArgs& a, SlotPool state, const int32_t* slots, int64_t B, float* o,
                       cudaStream_t stream);

}  // namespace linfer::kernels::cuda
