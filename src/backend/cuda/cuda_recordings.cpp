// CudaBackend::run_recorded: a run of ops captured from the stream into a CUDA graph and replayed with one
// launch. A key's first run goes op by op (its scratch buffers grow to size then: growth synchronises
// the stream, which a capture may not); its second is captured, instantiated and launched; later runs
// launch the graph. A graph holds the device pointers it was captured with, so every recording is dropped
// when memory moves (forget_recordings: scratch, staging, a pool's ids growing; a pool freed). A capture
// that fails (an op that synchronises or uploads host memory, which the caller promised not to issue)
// leaves the key to run op by op, with one message on stderr.

#include <cstdio>
#include <exception>
#include <string>

#include "backend/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_check.h"

namespace linfer {

using kernels::cuda::cuda_check;

void CudaBackend::run_recorded(uint64_t key, FunctionRef<void()> body) {
  if (!graphs_) return body();
  key ^= uint64_t(top_) * 0x9E3779B97F4A7C15ull;  // the scratch depth decides which buffers the ops take
  Recording& r = recordings_[key];
  if (r.exec) return cuda_check(cudaGraphLaunch(r.exec, stream_), "launch of a recorded step");
  if (r.refused || r.eager_runs++ == 0) return body();

  std::string why;
  cudaGraph_t graph = nullptr;
  cuda_check(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
  try {
    body();
  } catch (const std::exception& e) {
    why = e.what();
  }
  const cudaError_t ended = cudaStreamEndCapture(stream_, &graph);
  if (why.empty() && ended != cudaSuccess) why = cudaGetErrorString(ended);
  cudaGraphExec_t exec = nullptr;
  if (why.empty()) {
    const cudaError_t made = cudaGraphInstantiate(&exec, graph, 0);
    if (made != cudaSuccess) why = cudaGetErrorString(made);
  }
  if (graph) cudaGraphDestroy(graph);
  Recording& again = recordings_[key];  // body may have dropped the recordings (memory moved)
  if (!why.empty()) {
    (void)cudaGetLastError();  // a failed capture's error is not sticky: clear it
    again.refused = true;
    std::fprintf(stderr, "linfer: cuda: a decode step could not be recorded as a CUDA graph (%s); it runs op by op\n",
                 why.c_str());
    return body();
  }
  again.exec = exec;
  cuda_check(cudaGraphLaunch(exec, stream_), "launch of a recorded step");
}

void CudaBackend::forget_recordings() {
  for (auto& [key, r] : recordings_)
    if (r.exec) cudaGraphExecDestroy(r.exec);
  recordings_.clear();
}

}  // namespace linfer
