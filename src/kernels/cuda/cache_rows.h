#pragma once
// A call's rows into the slots' caches, and attention's per-sequence view of them, both from the tables a
// slot pool bound to the call (backend/cache_rows.h) and the call's offsets in device memory: nothing here
// depends on host values that change from one decode step to the next, so the step records as a graph.
//
//   append_to_caches({d_k, T, Hkv * D, ld}, d_offsets, d_k_rows, n_seqs, max_n, stream);
//   attn_seqs_from_caches(d_k_rows, d_v_rows, -1, d_offsets, n_seqs, d_attn_seqs, stream);

#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cache_rows.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/dense.h"

namespace linfer::kernels::cuda {

// Sequence i's rows [offsets[i], offsets[i+1]) of src (n_i rows of src.cols floats) become rows
// [rows[i].rows − n_i, rows[i].rows) of its cache (rows of src.cols floats). max_n >= every n_i.
void append_to_caches(const Rows& src, const int64_t* offsets, const CacheRows* rows, int64_t n_seqs, int64_t max_n,
                      cudaStream_t stream);

// seqs[i] = {k1 = k[i].p, k2 = k[i].p + k2_offset (null when k2_offset < 0), v = v[i].p, len = k[i].rows,
// q0 = offsets[i], n = offsets[i+1] − offsets[i]}: the call's queries over its caches.
void attn_seqs_from_caches(const CacheRows* k, const CacheRows* v, int64_t k2_offset, const int64_t* offsets,
                           int64_t n_seqs, AttnSeq* seqs, cudaStream_t stream);

}  // namespace linfer::kernels::cuda
