// The run-time dispatch every *_hwy.cpp file ends with: call the function compiled for the Highway target
// that a SimdLevel maps to (hwy_targets.h), or fail naming the kernel. Include after <hwy/highway.h>, use
// in the file's HWY_ONCE part:
//
//   void gemm(SimdLevel level, const float* x, ...) { LINFER_HWY_DISPATCH(level, "matmul GEMM", gemm(x, ...)); }
#pragma once

#include <hwy/highway.h>

#include "linfer/core/cpu_features.h"
#include "linfer/core/error.h"

#if HWY_TARGETS & HWY_AVX2
#define LINFER_HWY_CASE_AVX2(call) \
  case ::linfer::SimdLevel::Avx2: return N_AVX2::call;
#else
#define LINFER_HWY_CASE_AVX2(call)
#endif
#if HWY_TARGETS & HWY_AVX3
#define LINFER_HWY_CASE_AVX3(call) \
  case ::linfer::SimdLevel::Avx512: return N_AVX3::call;
#else
#define LINFER_HWY_CASE_AVX3(call)
#endif
#if HWY_TARGETS & HWY_NEON
#define LINFER_HWY_CASE_NEON(call) \
  case ::linfer::SimdLevel::Neon: return N_NEON::call;
#else
#define LINFER_HWY_CASE_NEON(call)
#endif

#define LINFER_HWY_DISPATCH(level, what, call)                                                      \
  switch (level) {                                                                                  \
    LINFER_HWY_CASE_AVX2(call)                                                                      \
    LINFER_HWY_CASE_AVX3(call)                                                                      \
    LINFER_HWY_CASE_NEON(call)                                                                      \
    default:                                                                                        \
      ::linfer::fail("{}: no Highway kernel compiled for the {} path", what,                        \
                     ::linfer::simd_level_name(level));                                             \
  }
