#pragma once
// Causal softmax attention on the GPU over float32 caches in device memory: kernels/cpu/attention.h's
// attention_prefill / attention_decode (grouped-query heads, query head h reads KV head h / (Hq / Hkv),
// online softmax in float32), for full attention and for MLA's expanded form. Sequence i's queries are
// rows [q0, q0 + n) of q and o; query j of it sits at position len − n + j and sees cache rows [0, len − n + j]
// (the caller appended this call's keys and values first).
//
// A key row may come in two parts, concatenated: k1 (D1 floats per head) then k2 (D2 floats, D2 may be 0),
// each with its own row and head strides. MLA's key is [k_nope of its head | the shared k_r]: k2 is the
// latent cache's k_r with head stride 0. Plain attention uses k1 alone (D2 = 0). MLA's absorbed decode attends
// over the latent rows themselves: one KV head, key [c | k_r], value c (Dv = r).
//
//   AttnLayout l{.Hq = 16, .Hkv = 2, .D1 = 256, .Dv = 256, .q_ld = 16 * 256, .o_ld = 16 * 256,
//                .k1_row = 2 * 256, .k1_head = 256, .v_row = 2 * 256, .v_head = 256, .scale = 1 / 16.f};
//   AttnSeq s{.k1 = d_k, .v = d_v, .len = 70, .q0 = 0, .n = 7};   // d_seqs: device copies of such
//   attention(d_q, d_seqs, 1, 7, l, d_o, stream);

#include <cuda_runtime.h>

#include <cstdint>

namespace linfer::kernels::cuda {

constexpr int64_t kAttnMaxDv = 512;  // value dims per head the kernel takes

struct AttnLayout {
  int64_t Hq = 0, Hkv = 0;       // Hq % Hkv == 0
  int64_t D1 = 0, D2 = 0, Dv = 0;  // key parts, value dims
  int64_t q_ld = 0, o_ld = 0;    // floats between query rows, output rows (query head h at + h·(D1 + D2) / h·Dv)
  int64_t k1_row = 0, k1_head = 0, k2_row = 0, k2_head = 0, v_row = 0, v_head = 0;
  float scale = 0.0f;
};

// One sequence of the call (device memory, an array of n_seqs).
struct AttnSeq {
  const float* k1 = nullptr;  // cache row 0, KV head 0 of each part
  const float* k2 = nullptr;  // null when D2 = 0
  const float* v = nullptr;
  int64_t len = 0;            // cache rows, this call's included
  int64_t q0 = 0, n = 0;      // its queries: rows [q0, q0 + n) of q and o; n <= len
};

// Key ranges per (query, head, sequence): with splits > 1 each range is one block's (flash-decoding: a decode
// step's few queries on a long cache would otherwise keep Hq · n_seqs blocks busy), and a second launch
// combines their partial softmaxes from `partial`, attention_partial_floats() floats of device scratch.
struct AttnSplit {
  int64_t splits = 1;
  float* partial = nullptr;
};
int64_t attention_partial_floats(const AttnLayout& l, int64_t n_seqs, int64_t max_n, int64_t splits);
// How many key ranges pay for n_seqs sequences of max_n queries over caches of up to max_len rows: enough
// blocks to fill the GPU twice over, at least 256 keys each; 1 for prefill-sized calls.
int64_t attention_splits(const AttnLayout& l, int64_t n_seqs, int64_t max_n, int64_t max_len);

// o = softmax(scale · q·kᵀ, causal) · v for every sequence; max_n >= the largest n (the grid's extent).
void attention(const float* q, const AttnSeq* seqs, int64_t n_seqs, int64_t max_n, const AttnLayout& l, float* o,
               cudaStream_t stream, const AttnSplit& split = {});

}  // namespace linfer::kernels::cuda
