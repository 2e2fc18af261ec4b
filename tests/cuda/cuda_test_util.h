#pragma once
// Helpers shared by the CUDA kernel tests: skipping without a device, random data, the relative-RMS
// metric ‖out − ref‖ / ‖ref‖, and a slot pool whose host copy the float64 references update.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/slot_pool.h"
#include "linfer/core/dtype.h"

namespace cuda_test {

using linfer::kernels::cuda::DeviceBuffer;
using linfer::kernels::cuda::SlotPool;

// Skips the test (with the reason) where no CUDA device is usable, e.g. a build machine without a driver.
#define LINFER_SKIP_WITHOUT_CUDA()                                                                          \
  do {                                                                                                      \
    std::string why_;                                                                                       \
    if (linfer::kernels::cuda::device_count(&why_) == 0)                                                    \
      GTEST_SKIP() << "no CUDA device (" << why_ << "); the GPU tests run on a GPU machine: tools/gpu_check.sh"; \
  } while (0)

inline std::vector<float> normal(std::mt19937& rng, size_t n, float sd = 1.0f, float mean = 0.0f) {
  std::normal_distribution<float> d(mean, sd);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

template <class T>
double rel_err(const std::vector<float>& out, const std::vector<T>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!std::isfinite(out[i])) return INFINITY;  // poisoned (unwritten) or blown up
    const double d = double(out[i]) - double(ref[i]);
    num += d * d;
    den += double(ref[i]) * double(ref[i]);
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

// x rounded to bf16 (nearest even): the bits a bf16-input kernel reads, and their values as float32 (for the
// reference).
struct Bf16Copy {
  std::vector<uint16_t> bits;
  std::vector<float> values;
};
inline Bf16Copy to_bf16(const std::vector<float>& x) {
  Bf16Copy c{std::vector<uint16_t>(x.size()), std::vector<float>(x.size())};
  for (size_t i = 0; i < x.size(); ++i) c.values[i] = linfer::bf16_to_f32(c.bits[i] = linfer::f32_to_bf16(x[i]));
  return c;
}

// B distinct slots out of n_slots in random order: a kernel that ignores the indices fails.
inline std::vector<int32_t> pick_slots(std::mt19937& rng, int64_t B, int64_t n_slots) {
  std::vector<int32_t> all(n_slots);
  std::iota(all.begin(), all.end(), 0);
  std::shuffle(all.begin(), all.end(), rng);
  all.resize(B);
  return all;
}

// n_slots slots of `stride` floats of random state, on the host and (from upload()) on the device.
// `misalign` floats of padding in front of slot 0 make every slot 4-byte but not 16-byte aligned.
struct Pool {
  int64_t stride = 0, misalign = 0;
  std::vector<float> host;  // [misalign + n_slots * stride]
  DeviceBuffer<float> dev;

  Pool(std::mt19937& rng, int64_t n_slots, int64_t stride_, float sd, int64_t misalign_ = 0)
      : stride(stride_), misalign(misalign_), host(normal(rng, misalign_ + n_slots * stride_, sd)) {}
  void upload() { dev = DeviceBuffer<float>(host); }
  SlotPool device(int64_t offset = 0) { return {dev.data() + misalign + offset, stride}; }
  float* slot(int32_t s, int64_t offset = 0) { return host.data() + misalign + s * stride + offset; }
};

// Slots in `used` match `expected` (same layout as pool.host) within tol; every other float is
// bit-identical to `before` (the kernel wrote nothing else).
inline void expect_pool(const std::vector<float>& got, const std::vector<float>& before,
                        const std::vector<double>& expected, const Pool& pool, const std::vector<int32_t>& used,
                        double tol, const std::string& what) {
  std::vector<bool> is_used((got.size() - pool.misalign) / pool.stride, false);
  for (int32_t s : used) is_used[s] = true;
  std::vector<float> g;
  std::vector<double> e;
  size_t changed = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const bool in_used = i >= size_t(pool.misalign) && is_used[(i - pool.misalign) / pool.stride];
    if (in_used) {
      g.push_back(got[i]);
      e.push_back(expected[i]);
    } else if (std::memcmp(&got[i], &before[i], sizeof(float)) != 0) {
      ++changed;
    }
  }
  EXPECT_LT(rel_err(g, e), tol) << what << ": the sequences' slots";
  EXPECT_EQ(changed, 0u) << what << ": floats changed outside the sequences' slots";
}

}  // namespace cuda_test
