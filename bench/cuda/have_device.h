#pragma once
// The GPU benchmarks' first step: without a CUDA device they say why and time nothing (exit 0, so that
// tools/gpu_check.sh and CI's CUDA-compile stage can run them anywhere).
#include <cstdio>
#include <string>

#include "kernels/cuda/cuda_check.h"

inline bool have_device(const char* bench) {
  std::string why;
  if (linfer::kernels::cuda::device_count(&why) > 0) return true;
  std::printf("%s: no CUDA device (%s); nothing to time\n", bench, why.c_str());
  return false;
}
