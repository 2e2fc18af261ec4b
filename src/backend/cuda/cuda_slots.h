#pragma once
// The CUDA backend's state pool: one device allocation of n slots, each holding every Fixed state tensor
// of a model at its own 16-byte-aligned offset (the decode kernels' 16-byte state accesses need it), and
// per slot one device buffer for each Growing tensor (attention's K and V, MLA's latent rows), grown by
// doubling like SequenceState's. States enter and leave through SequenceState on the host (every row of
// a cache too), so a state saved here loads on the CPU and the reverse. Ring tensors are refused.

#include <vector>

#include "backend/device_slots.h"

namespace linfer {

class CudaBackend;

class CudaStateSlots final : public DeviceStateSlots {
 public:
  CudaStateSlots(CudaBackend& be, const StateSpec& spec, int n);
  ~CudaStateSlots() override;
  CudaStateSlots(const CudaStateSlots&) = delete;
  CudaStateSlots& operator=(const CudaStateSlots&) = delete;

  int n_slots() const override { return int(n_tokens_.size()); }
  void load(int slot, const SequenceState& s) override;
  void save(int slot, SequenceState& out) const override;
  void copy(int from, int to) override;
  void reset(int slot) override;
  int64_t n_tokens(int slot) const override { return n_tokens_[size_t(check(slot))]; }

  const Backend& backend() const override;
  SlotBinding bind(std::span<const int32_t> ids, const Seqs& seqs) override;
  void advance(int slot, int64_t n) override { n_tokens_[size_t(check(slot))] += n; }
  void save_tensors(int slot, size_t first, size_t last, SequenceState& out) const override;
  const float* rows_data(int slot, size_t j) const override { return cache(slot, j).p; }
  int64_t rows(int slot, size_t j) const override { return cache(slot, j).rows; }

 private:
  struct Cache {  // one Growing tensor of one slot
    float* p = nullptr;
    int64_t rows = 0, cap = 0;  // rows in use, rows allocated
  };
  int check(int slot) const;
  Cache& cache(int slot, size_t j);
  const Cache& cache(int slot, size_t j) const { return const_cast<CudaStateSlots*>(this)->cache(slot, j); }
  void reserve(Cache& c, size_t j, int64_t rows);  // room for `rows` rows, contents kept
  float* append_rows(int slot, size_t j, int64_t n);  // n more rows (contents undefined): the first of them

  CudaBackend& be_;
  StateSpec spec_;
  std::vector<int64_t> offsets_;  // floats from a slot's start to each Fixed tensor
  std::vector<int> growing_;      // per state tensor: its index among the Growing ones, or -1
  int64_t stride_ = 0;            // floats per slot
  float* base_ = nullptr;
  // What bind() uploads, packed: slot ids (padded to 8 bytes), the call's offsets and positions, the
  // table of cache rows. One host copy, one device copy (its capacity in bytes).
  std::vector<std::byte> call_host_;
  std::byte* call_ = nullptr;
  size_t call_cap_ = 0;
  std::vector<int64_t> n_tokens_;
  std::vector<Cache> caches_;     // [slot][Growing tensor]
};

}  // namespace linfer
