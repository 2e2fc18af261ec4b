#pragma once
// Device buffers of random values for the GPU benchmarks: one random block of up to 1M normal values
// (mean, sd) tiled over the buffer: random enough for timing, fast to make for GiBs.
#include <algorithm>
#include <random>
#include <vector>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_buffer.h"

inline linfer::kernels::cuda::DeviceBuffer<float> random_buffer(std::mt19937& rng, int64_t n, float sd,
                                                                float mean = 0.f) {
  std::normal_distribution<float> d(mean, sd);
  std::vector<float> block(std::min<int64_t>(n, 1 << 20));
  for (float& x : block) x = d(rng);
  linfer::kernels::cuda::DeviceBuffer<float> buf(n);
  for (int64_t at = 0; at < n; at += int64_t(block.size())) {
    const int64_t len = std::min<int64_t>(int64_t(block.size()), n - at);
    linfer::kernels::cuda::cuda_check(
        cudaMemcpy(buf.data() + at, block.data(), len * sizeof(float), cudaMemcpyHostToDevice), "fill");
  }
  return buf;
}
