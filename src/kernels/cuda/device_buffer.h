#pragma once
// An owning float32 / int32 array in device memory (cudaMalloc, never managed memory), with copies to and
// from host vectors. For tests, benchmarks and the future device state pool; kernels take raw pointers.
//
//   DeviceBuffer<float> d(host);            // upload
//   kernel(d.data(), ...);
//   std::vector<float> back = d.download();

#include <cuda_runtime.h>

#include <cstddef>
#include <utility>
#include <vector>

#include "kernels/cuda/cuda_check.h"

namespace linfer::kernels::cuda {

template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t n) : n_(n) {
    if (n) cuda_check(cudaMalloc(&p_, n * sizeof(T)), "cudaMalloc");
  }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) { upload(host); }
  DeviceBuffer(DeviceBuffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() {
    if (p_) cudaFree(p_);
  }

  T* data() { return p_; }
  const T* data() const { return p_; }
  size_t size() const { return n_; }

  // host.size() must equal size(); synchronous.
  void upload(const std::vector<T>& host) {
    if (n_) cuda_check(cudaMemcpy(p_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice), "upload to device");
  }
  std::vector<T> download() const {
    std::vector<T> host(n_);
    if (n_) cuda_check(cudaMemcpy(host.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost), "download from device");
    return host;
  }
  // Every byte set to `byte` (0xFF makes float NaNs: poison before a kernel that must write everything).
  void fill_bytes(int byte) {
    if (n_) cuda_check(cudaMemset(p_, byte, n_ * sizeof(T)), "cudaMemset");
  }

 private:
  T* p_ = nullptr;
  size_t n_ = 0;
};

}  // namespace linfer::kernels::cuda
