#include "kernels/cuda/cuda_check.h"

#include "linfer/core/error.h"

namespace linfer::kernels::cuda {

void cuda_check(cudaError_t err, const char* what) {
  if (err != cudaSuccess)
    fail("{}: CUDA error {} ({}): {}", what, int(err), cudaGetErrorName(err), cudaGetErrorString(err));
}

void throw_error(const std::string& message) { throw Error(message); }

int device_count(std::string* why) {
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    if (why) *why = std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
    cudaGetLastError();  // clear the sticky error so later checks report their own
    return 0;
  }
  if (n == 0 && why) *why = "the CUDA runtime reports no device";
  return n;
}

}  // namespace linfer::kernels::cuda
