#pragma once
// Tensor maps for Hopper's Tensor Memory Accelerator (TMA): the description of a strided global tensor from which
// one thread's instruction (tensor_load_3d, mma.cuh) copies a box into shared memory, rows laid out with a
// swizzle that ldmatrix reads without bank conflicts. For row tiles of activations that are not contiguous in
// memory (a head's rows of a [tokens][heads][cols] tensor, tokens `stride` elements apart): one instruction per
// box instead of a 16-byte copy per thread or a bulk copy per row.
//
//   const CUtensorMap q_map = bf16_rows_map(q, tokens, H, K, q_stride, 64, 64, CU_TENSOR_MAP_SWIZZLE_128B);
//   kernel<<<...>>>(q_map, ...);   // a const __grid_constant__ CUtensorMap parameter

#include <cuda.h>

#include <cstdint>

namespace linfer::kernels::cuda {

// bf16 tensor [tokens][heads][cols] at base (16-byte aligned; cols and stride multiples of 8), boxes of box_cols
// columns of one head's rows over box_rows tokens; coordinates (column, head, token); whatever lies outside the
// tensor reads as zero. Throws linfer::Error where the driver rejects the map.
CUtensorMap bf16_rows_map(const void* base, int64_t tokens, int64_t heads, int64_t cols, int64_t stride, int box_cols,
                          int box_rows, CUtensorMapSwizzle swizzle);

}  // namespace linfer::kernels::cuda
