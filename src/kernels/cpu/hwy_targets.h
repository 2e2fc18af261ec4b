// The Highway targets linfer's kernels are compiled for: the ones a SimdLevel maps to (avx2 -> AVX2,
// avx512 -> AVX3, neon -> NEON), plus Highway's baseline, which it always builds. Every *_hwy.cpp file
// includes this before hwy/foreach_target.h, so all of them have a function for every SimdLevel.
#pragma once

#define HWY_DISABLED_TARGETS (HWY_SSSE3 | HWY_SSE4 | HWY_AVX3_DL | HWY_SVE | HWY_SVE2 | HWY_SVE_256 | HWY_SVE2_128)
