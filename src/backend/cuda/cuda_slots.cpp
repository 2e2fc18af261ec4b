#include "backend/cuda/cuda_slots.h"

#include "backend/cuda/cuda_backend.h"
#include "backend/host_slots.h"
#include "kernels/cuda/cuda_check.h"
#include "linfer/core/error.h"

namespace linfer {

using kernels::cuda::cuda_check;

CudaStateSlots::CudaStateSlots(CudaBackend& be, const StateSpec& spec, int n) : be_(be), spec_(spec) {
  LINFER_CHECK(n >= 1, "a state pool needs at least one slot (asked for {})", n);
  for (const StateTensorSpec& t : spec_.tensors) {
    LINFER_CHECK(t.kind == StateKind::Fixed, "the cuda backend keeps no growing state yet: layer {} '{}' (run this "
                 "model with --device cpu)", t.layer, t.name);
    offsets_.push_back(stride_);
    stride_ += (shape_numel(t.shape) + 3) / 4 * 4;
  }
  stride_ = std::max<int64_t>(stride_, 4);
  cuda_check(cudaMalloc(&base_, size_t(n) * size_t(stride_) * sizeof(float)), "cudaMalloc of the state pool");
  cuda_check(cudaMemsetAsync(base_, 0, size_t(n) * size_t(stride_) * sizeof(float), be_.stream()), "state pool reset");
  n_tokens_.assign(size_t(n), 0);
}

CudaStateSlots::~CudaStateSlots() {
  cudaStreamSynchronize(be_.stream());
  cudaFree(base_);
  cudaFree(ids_);
}

const Backend& CudaStateSlots::backend() const { return be_; }

int CudaStateSlots::check(int slot) const {
  LINFER_CHECK(slot >= 0 && slot < n_slots(), "state slot {} is outside the pool [0, {})", slot, n_slots());
  return slot;
}

void CudaStateSlots::load(int slot, const SequenceState& s) {
  check(slot);
  const std::string why = spec_mismatch(spec_, s);
  LINFER_CHECK(why.empty(), "cannot load a state into slot {}: {}", slot, why);
  float* dst = base_ + int64_t(slot) * stride_;
  for (size_t j = 0; j < spec_.tensors.size(); ++j)
    cuda_check(cudaMemcpyAsync(dst + offsets_[j], s.data(j), size_t(s.row_elems(j)) * sizeof(float),
                               cudaMemcpyHostToDevice, be_.stream()),
               "state upload");
  cuda_check(cudaStreamSynchronize(be_.stream()), "state upload");
  n_tokens_[size_t(slot)] = s.n_tokens();
}

void CudaStateSlots::save(int slot, SequenceState& out) const {
  check(slot);
  const std::string why = spec_mismatch(spec_, out);
  LINFER_CHECK(why.empty(), "cannot save slot {} into that state: {}", slot, why);
  const float* src = base_ + int64_t(slot) * stride_;
  for (size_t j = 0; j < spec_.tensors.size(); ++j)
    cuda_check(cudaMemcpyAsync(out.data(j), src + offsets_[j], size_t(out.row_elems(j)) * sizeof(float),
                               cudaMemcpyDeviceToHost, be_.stream()),
               "state download");
  cuda_check(cudaStreamSynchronize(be_.stream()), "state download");
  out.set_n_tokens(n_tokens_[size_t(slot)]);
}

void CudaStateSlots::reset(int slot) {
  check(slot);
  cuda_check(cudaMemsetAsync(base_ + int64_t(slot) * stride_, 0, size_t(stride_) * sizeof(float), be_.stream()),
             "state slot reset");
  n_tokens_[size_t(slot)] = 0;
}

SlotBinding CudaStateSlots::bind(std::span<const int32_t> ids) {
  if (ids_cap_ < ids.size()) {
    cuda_check(cudaStreamSynchronize(be_.stream()), "slot ids growth");
    cudaFree(ids_);
    ids_ = nullptr;
    cuda_check(cudaMalloc(&ids_, ids.size_bytes()), "cudaMalloc of slot ids");
    ids_cap_ = ids.size();
  }
  cuda_check(cudaMemcpyAsync(ids_, ids.data(), ids.size_bytes(), cudaMemcpyHostToDevice, be_.stream()),
             "upload of slot ids");
  return {.base = base_, .stride = stride_, .offsets = offsets_, .ids = ids_};
}

}  // namespace linfer
