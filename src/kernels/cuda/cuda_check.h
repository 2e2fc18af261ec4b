#pragma once
// CUDA runtime errors become linfer::Error (a message naming the call), never an abort: every runtime
// call of linfer's CUDA code goes through these (kernels launch through launch.cuh, which checks too).
//
//   cuda_check(cudaMalloc(&p, bytes), "cudaMalloc of the state pool");

#include <cuda_runtime.h>

#include <sstream>
#include <string>

namespace linfer::kernels::cuda {

// Throws linfer::Error("<what>: <CUDA's error name and text>") unless err is cudaSuccess.
void cuda_check(cudaError_t err, const char* what);

// Argument checks in .cu files, whose compiler (nvcc's front end) cannot build fmt's compile-time format
// strings (so no LINFER_CHECK there): throws linfer::Error(message parts joined) when cond is false.
//   LINFER_CUDA_CHECK(K <= 256, "delta_rule_decode: K = ", K, ": the kernel supports K <= 256");
[[noreturn]] void throw_error(const std::string& message);
template <class... Parts>
std::string join(const Parts&... parts) {
  std::ostringstream s;
  (s << ... << parts);
  return s.str();
}
#define LINFER_CUDA_CHECK(cond, ...)                                                      \
  do {                                                                                    \
    if (!(cond)) ::linfer::kernels::cuda::throw_error(::linfer::kernels::cuda::join(__VA_ARGS__)); \
  } while (0)

// Number of CUDA devices this process can use: 0 when there is no GPU or no driver, with the reason in
// *why (for a test's skip message or a user-facing error).
int device_count(std::string* why = nullptr);

}  // namespace linfer::kernels::cuda
