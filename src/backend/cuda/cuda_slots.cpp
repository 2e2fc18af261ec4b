#include "backend/cuda/cuda_slots.h"

#include <algorithm>
#include <cstring>

#include "backend/cuda/cuda_backend.h"
#include "backend/host_slots.h"
#include "kernels/cuda/cuda_check.h"
#include "linfer/core/error.h"

namespace linfer {

using kernels::cuda::cuda_check;

CudaStateSlots::CudaStateSlots(CudaBackend& be, const StateSpec& spec, int n) : be_(be), spec_(spec) {
  LINFER_CHECK(n >= 1, "a state pool needs at least one slot (asked for {})", n);
  int n_growing = 0;
  for (const StateTensorSpec& t : spec_.tensors) {
    LINFER_CHECK(t.kind != StateKind::Ring, "the cuda backend keeps no sliding-window state yet: layer {} '{}' (run "
                 "this model with --device cpu)", t.layer, t.name);
    offsets_.push_back(stride_);
    growing_.push_back(t.kind == StateKind::Growing ? n_growing++ : -1);
    if (t.kind == StateKind::Fixed) stride_ += (shape_numel(t.shape) + 3) / 4 * 4;
  }
  stride_ = std::max<int64_t>(stride_, 4);
  cuda_check(cudaMalloc(&base_, size_t(n) * size_t(stride_) * sizeof(float)), "cudaMalloc of the state pool");
  cuda_check(cudaMemsetAsync(base_, 0, size_t(n) * size_t(stride_) * sizeof(float), be_.stream()), "state pool reset");
  n_tokens_.assign(size_t(n), 0);
  caches_.resize(size_t(n) * size_t(n_growing));
}

CudaStateSlots::~CudaStateSlots() {
  cudaStreamSynchronize(be_.stream());
  be_.forget_recordings();  // they point at this pool's states and ids
  for (Cache& c : caches_) cudaFree(c.p);
  cudaFree(base_);
  cudaFree(call_);
}

const Backend& CudaStateSlots::backend() const { return be_; }

int CudaStateSlots::check(int slot) const {
  LINFER_CHECK(slot >= 0 && slot < n_slots(), "state slot {} is outside the pool [0, {})", slot, n_slots());
  return slot;
}

CudaStateSlots::Cache& CudaStateSlots::cache(int slot, size_t j) {
  check(slot);
  LINFER_CHECK(j < growing_.size() && growing_[j] >= 0, "state tensor {} is not a growing one", j);
  const size_t per_slot = caches_.size() / size_t(n_slots());
  return caches_[size_t(slot) * per_slot + size_t(growing_[j])];
}

void CudaStateSlots::reserve(Cache& c, size_t j, int64_t rows) {
  if (rows <= c.cap) return;
  const int64_t cap = std::max<int64_t>({rows, 2 * c.cap, 64});
  const size_t row_bytes = size_t(shape_numel(spec_.tensors[j].shape)) * sizeof(float);
  float* p = nullptr;
  const cudaError_t err = cudaMalloc(&p, size_t(cap) * row_bytes);
  if (err != cudaSuccess) {
    cudaGetLastError();  // not sticky: clear it
    const StateTensorSpec& t = spec_.tensors[j];
    fail("out of device memory growing layer {} '{}' to {} rows ({} MB)", t.layer, t.name, cap,
         double(cap) * double(row_bytes) / 1e6);
  }
  if (c.rows)
    cuda_check(cudaMemcpyAsync(p, c.p, size_t(c.rows) * row_bytes, cudaMemcpyDeviceToDevice, be_.stream()),
               "cache growth");
  cuda_check(cudaStreamSynchronize(be_.stream()), "cache growth");  // queued kernels may still read the old rows
  cudaFree(c.p);
  c.p = p, c.cap = cap;
}

float* CudaStateSlots::append_rows(int slot, size_t j, int64_t n) {
  Cache& c = cache(slot, j);
  reserve(c, j, c.rows + n);
  float* first = c.p + c.rows * shape_numel(spec_.tensors[j].shape);
  c.rows += n;
  return first;
}

void CudaStateSlots::load(int slot, const SequenceState& s) {
  check(slot);
  const std::string why = spec_mismatch(spec_, s);
  LINFER_CHECK(why.empty(), "cannot load a state into slot {}: {}", slot, why);
  float* dst = base_ + int64_t(slot) * stride_;
  for (size_t j = 0; j < spec_.tensors.size(); ++j) {
    if (growing_[j] >= 0) {
      Cache& c = cache(slot, j);
      c.rows = 0;
      float* rows = append_rows(slot, j, s.rows(j));
      cuda_check(cudaMemcpyAsync(rows, s.data(j), size_t(s.rows(j) * s.row_elems(j)) * sizeof(float),
                                 cudaMemcpyHostToDevice, be_.stream()),
                 "state upload");
      continue;
    }
    cuda_check(cudaMemcpyAsync(dst + offsets_[j], s.data(j), size_t(s.row_elems(j)) * sizeof(float),
                               cudaMemcpyHostToDevice, be_.stream()),
               "state upload");
  }
  cuda_check(cudaStreamSynchronize(be_.stream()), "state upload");
  n_tokens_[size_t(slot)] = s.n_tokens();
}

void CudaStateSlots::save(int slot, SequenceState& out) const {
  check(slot);
  const std::string why = spec_mismatch(spec_, out);
  LINFER_CHECK(why.empty(), "cannot save slot {} into that state: {}", slot, why);
  out.reset();  // empties its caches; every tensor is written below
  save_tensors(slot, 0, spec_.tensors.size(), out);
  out.set_n_tokens(n_tokens_[size_t(slot)]);
}

void CudaStateSlots::save_tensors(int slot, size_t first, size_t last, SequenceState& out) const {
  check(slot);
  const float* src = base_ + int64_t(slot) * stride_;
  for (size_t j = first; j < last; ++j) {
    if (growing_[j] >= 0) {
      const Cache& c = cache(slot, j);
      const int64_t have = out.rows(j);
      LINFER_CHECK(have <= c.rows, "slot {} holds {} rows of layer {} '{}', fewer than the state it is saved into "
                   "({})", slot, c.rows, spec_.tensors[j].layer, spec_.tensors[j].name, have);
      const int64_t elems = out.row_elems(j);
      float* rows = out.append_rows(j, c.rows - have);
      if (c.rows > have)
        cuda_check(cudaMemcpyAsync(rows, c.p + have * elems, size_t((c.rows - have) * elems) * sizeof(float),
                                   cudaMemcpyDeviceToHost, be_.stream()),
                   "state download");
      continue;
    }
    cuda_check(cudaMemcpyAsync(out.data(j), src + offsets_[j], size_t(out.row_elems(j)) * sizeof(float),
                               cudaMemcpyDeviceToHost, be_.stream()),
               "state download");
  }
  cuda_check(cudaStreamSynchronize(be_.stream()), "state download");
}

void CudaStateSlots::copy(int from, int to) {
  check(from), check(to);
  if (from == to) return;
  // Stream-ordered behind the kernels that wrote `from`; the host waits for nothing.
  cuda_check(cudaMemcpyAsync(base_ + int64_t(to) * stride_, base_ + int64_t(from) * stride_,
                             size_t(stride_) * sizeof(float), cudaMemcpyDeviceToDevice, be_.stream()),
             "state slot copy");
  for (size_t j = 0; j < spec_.tensors.size(); ++j) {
    if (growing_[j] < 0) continue;
    const Cache& src = cache(from, j);
    Cache& dst = cache(to, j);
    dst.rows = 0;  // nothing of the old rows is kept when the room grows
    reserve(dst, j, src.rows);
    if (src.rows)
      cuda_check(cudaMemcpyAsync(dst.p, src.p, size_t(src.rows * shape_numel(spec_.tensors[j].shape)) * sizeof(float),
                                 cudaMemcpyDeviceToDevice, be_.stream()),
                 "state slot copy");
    dst.rows = src.rows;
  }
  n_tokens_[size_t(to)] = n_tokens_[size_t(from)];
}

void CudaStateSlots::reset(int slot) {
  check(slot);
  cuda_check(cudaMemsetAsync(base_ + int64_t(slot) * stride_, 0, size_t(stride_) * sizeof(float), be_.stream()),
             "state slot reset");
  for (size_t j = 0; j < spec_.tensors.size(); ++j)
    if (growing_[j] >= 0) cache(slot, j).rows = 0;  // keeps the rows allocated: a reused slot does not reallocate
  n_tokens_[size_t(slot)] = 0;
}

SlotBinding CudaStateSlots::bind(std::span<const int32_t> ids, const Seqs& seqs) {
  const int64_t n = int64_t(ids.size()), T = int64_t(seqs.positions.size());
  LINFER_CHECK(seqs.n() == n, "bind: {} slots for {} sequences", n, seqs.n());
  const size_t n_growing = caches_.size() / size_t(n_slots());
  // Room for every cache's new rows first, then the counts: running out of memory changes nothing.
  for (int64_t i = 0; i < n; ++i)
    for (size_t j = 0; j < growing_.size(); ++j)
      if (growing_[j] >= 0) {
        Cache& c = cache(ids[size_t(i)], j);
        reserve(c, j, c.rows + seqs.offsets[size_t(i) + 1] - seqs.offsets[size_t(i)]);
      }
  const size_t ids_bytes = (size_t(n) * sizeof(int32_t) + 7) / 8 * 8, offsets_at = ids_bytes,
               positions_at = offsets_at + size_t(n + 1) * sizeof(int64_t),
               rows_at = positions_at + size_t(T) * sizeof(int64_t),
               bytes = rows_at + n_growing * size_t(n) * sizeof(CacheRows);
  call_host_.assign(bytes, std::byte{0});
  std::memcpy(call_host_.data(), ids.data(), ids.size_bytes());
  std::memcpy(call_host_.data() + offsets_at, seqs.offsets.data(), seqs.offsets.size_bytes());
  std::memcpy(call_host_.data() + positions_at, seqs.positions.data(), seqs.positions.size_bytes());
  auto* table = reinterpret_cast<CacheRows*>(call_host_.data() + rows_at);
  for (int64_t i = 0; i < n; ++i)
    for (size_t j = 0; j < growing_.size(); ++j)
      if (growing_[j] >= 0) {
        Cache& c = cache(ids[size_t(i)], j);
        c.rows += seqs.offsets[size_t(i) + 1] - seqs.offsets[size_t(i)];
        table[int64_t(growing_[j]) * n + i] = {.p = c.p, .rows = c.rows};
      }
  if (call_cap_ < bytes) {
    cuda_check(cudaStreamSynchronize(be_.stream()), "slot binding growth");
    be_.forget_recordings();  // they read the binding where it was
    const size_t cap = std::max(bytes, 2 * call_cap_);
    cudaFree(call_);
    call_ = nullptr;
    call_cap_ = 0;
    cuda_check(cudaMalloc(&call_, cap), "cudaMalloc of a slot binding");
    call_cap_ = cap;
  }
  // Stream-ordered after the kernels that read the previous binding.
  cuda_check(cudaMemcpyAsync(call_, call_host_.data(), bytes, cudaMemcpyHostToDevice, be_.stream()),
             "upload of a slot binding");
  return {.base = base_, .stride = stride_, .offsets = offsets_, .ids = reinterpret_cast<const int32_t*>(call_),
          .pool = this, .host_ids = ids, .cache_rows = reinterpret_cast<const CacheRows*>(call_ + rows_at),
          .growing = growing_, .call_offsets = reinterpret_cast<const int64_t*>(call_ + offsets_at),
          .call_positions = reinterpret_cast<const int64_t*>(call_ + positions_at)};
}

}  // namespace linfer
