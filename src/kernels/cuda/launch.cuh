#pragma once
// How every linfer kernel is launched: with programmatic dependent launch (Hopper). A decode step is a
// chain of hundreds of small dependent kernels; launched this way, the next kernel's blocks are scheduled
// while the current one runs and wait on the device (griddepcontrol.wait) instead of being launched after
// it ends, which hides the launch latency between them, in CUDA graphs too.
//
//   __global__ void my_kernel(...) {
//     pdl_enter();  // the first statement: nothing of the previous kernel's output is read before it
//     ...
//   }
//   launch_kernel("my_kernel", {grid, threads, smem, stream}, my_kernel, args...);
//
// A kernel launched by launch_kernel() must call pdl_enter() before it reads or writes memory the kernel
// before it in the stream touches; before it, prefetch_l2() may start the fetch of what it reads first.
// Kernels launched otherwise (cuBLAS's) and copies are ordered as usual.
// LINFER_CUDA_PDL=0 launches plainly (for comparisons and to rule it out when debugging).

#include <cuda_runtime.h>

#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <utility>

#include "kernels/cuda/cuda_check.h"

namespace linfer::kernels::cuda {

// Waits until the kernel before this one has finished and its writes are visible, then lets the kernel
// after this one be scheduled (its blocks wait in its own pdl_enter until this one has finished).
__device__ __forceinline__ void pdl_enter() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// Asks L2 to fetch the bytes [p, p + bytes), thread i of n taking every n-th 128-byte line. A prefetch
// is a hint that returns nothing, so a kernel may issue it before pdl_enter(): for what it reads first
// that the kernel before it does not produce (weights, recurrent states), the fetch from HBM then
// overlaps the kernel before instead of following it.
__device__ __forceinline__ void prefetch_l2(const void* p, int64_t bytes, int i, int n) {
#if defined(__CUDA_ARCH__)
  const uintptr_t first = reinterpret_cast<uintptr_t>(p) & ~uintptr_t(127);
  const uintptr_t end = reinterpret_cast<uintptr_t>(p) + uintptr_t(bytes);
  for (uintptr_t a = first + uintptr_t(i) * 128; a < end; a += uintptr_t(n) * 128)
    asm volatile("prefetch.global.L2 [%0];" ::"l"(a));
#endif
}

inline bool pdl_enabled() {
  static const bool on = [] {
    const char* e = std::getenv("LINFER_CUDA_PDL");
    return !(e && std::string_view(e) == "0");
  }();
  return on;
}

struct LaunchShape {
  dim3 grid, block;
  size_t smem = 0;
  cudaStream_t stream = nullptr;
  dim3 cluster = dim3(1, 1, 1);  // blocks per cluster along x, y, z (1, 1, 1: no clusters)
};

template <class... Params, class... Args>
void launch_kernel(const char* what, const LaunchShape& s, void (*kernel)(Params...), Args&&... args) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = s.grid, cfg.blockDim = s.block, cfg.dynamicSmemBytes = s.smem, cfg.stream = s.stream;
  cudaLaunchAttribute attrs[2]{};
  unsigned n = 0;
  if (pdl_enabled()) {
    attrs[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attrs[n++].val.programmaticStreamSerializationAllowed = 1;
  }
  if (s.cluster.x * s.cluster.y * s.cluster.z > 1) {
    attrs[n].id = cudaLaunchAttributeClusterDimension;
    attrs[n].val.clusterDim.x = s.cluster.x, attrs[n].val.clusterDim.y = s.cluster.y;
    attrs[n++].val.clusterDim.z = s.cluster.z;
  }
  cfg.attrs = attrs, cfg.numAttrs = n;
  cuda_check(cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...), what);
}

}  // namespace linfer::kernels::cuda
