#pragma once
// Random inputs for the kernel benchmarks: n normal values of standard deviation sd, 64-byte aligned.
#include <random>

#include "linfer/core/aligned.h"

inline linfer::AlignedVector<float> randn(size_t n, float sd, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, sd);
  linfer::AlignedVector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}
