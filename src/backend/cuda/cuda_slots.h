#pragma once
// The CUDA backend's state pool: one device allocation of n slots, each holding every Fixed state tensor
// of a model at its own 16-byte-aligned offset (the decode kernels' 16-byte state accesses need it). States
// enter and leave through SequenceState on the host. Growing tensors (attention's KV cache) are not kept
// on the device yet: a spec with one is refused.

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
  void reset(int slot) override;
  int64_t n_tokens(int slot) const override { return n_tokens_[size_t(check(slot))]; }

  const Backend& backend() const override;
  SlotBinding bind(std::span<const int32_t> ids) override;
  void advance(int slot, int64_t n) override { n_tokens_[size_t(check(slot))] += n; }

 private:
  int check(int slot) const;

  CudaBackend& be_;
  StateSpec spec_;
  std::vector<int64_t> offsets_;  // floats from a slot's start to each tensor
  int64_t stride_ = 0;            // floats per slot
  float* base_ = nullptr;
  int32_t* ids_ = nullptr;        // bind()'s slot ids on the device
  size_t ids_cap_ = 0;
  std::vector<int64_t> n_tokens_;
};

}  // namespace linfer
