#pragma once
// Internal to the delta-rule kernels: the work of one (sequence, value head), and the table of
// kernels each SIMD build provides (delta_rule_portable.cpp, delta_rule_avx2.cpp, both compiled from
// delta_rule_kernels.h). delta_rule.cpp validates, splits the work and dispatches.

#include <cstdint>

#include "kernels/cpu/delta_rule.h"

namespace linfer::kernels::delta_detail {

// One value head of one sequence: T tokens, pointers at the sequence's first token and the head's
// first channel; each per-token pointer advances by its stride.
struct HeadTask {
  int64_t T = 0, K = 0, V = 0;
  DeltaDecay decay = DeltaDecay::None;
  bool l2norm = false;
  float scale = 1.0f;
  const float* q = nullptr;     // [T, K] at q_stride
  const float* k = nullptr;     // [T, K] at k_stride
  const float* v = nullptr;     // [T, V] at v_stride
  const float* beta = nullptr;  // [T] at bg_stride
  const float* g = nullptr;     // [T] (Scalar) or [T, K] (PerKey) at g_stride
  float* o = nullptr;           // [T, V] at o_stride
  int64_t q_stride = 0, k_stride = 0, v_stride = 0, bg_stride = 0, g_stride = 0, o_stride = 0;
  float* state = nullptr;       // [V, K] v-major, read and written in place
};

struct Kernels {
  void (*step)(const HeadTask&);                  // one token (T == 1), straight on the v-major state
  void (*recurrent)(const HeadTask&);             // token-by-token sweep over T tokens
  void (*chunked)(const HeadTask&, int chunk);    // chunkwise-parallel form, chunk <= kMaxChunk
};

inline constexpr int kMaxChunk = 64;

// The portable build (GCC vector extensions, no -m flags): `vector8` picks 8-wide vectors, valid when
// K % 8 == 0 and V % 8 == 0; otherwise 1-wide (any head dims).
const Kernels& portable_kernels(DeltaDecay decay, bool vector8);
// AVX2 + FMA build; needs K % 8 == 0 and V % 8 == 0.
const Kernels& avx2_kernels(DeltaDecay decay);

}  // namespace linfer::kernels::delta_detail
