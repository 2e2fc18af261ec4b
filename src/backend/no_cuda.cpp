// make_cuda_backend() in a build without CUDA (-DLINFER_CUDA=OFF, the default): call sites need no #ifdef,
// and asking for the GPU says how to get it. The CUDA build compiles src/backend/cuda/ instead.

#include "backend/backend.h"
#include "linfer/core/error.h"

namespace linfer {

std::shared_ptr<Backend> make_cuda_backend() {
  fail("--device cuda: this linfer was built without CUDA; rebuild with -DLINFER_CUDA=ON (docs/gpu.md), or run "
       "with --device cpu");
}

}  // namespace linfer
