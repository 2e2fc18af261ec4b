#pragma once
// StateSlots in a device's memory, as a model's forward binds them to a call (backend/backend.h's
// SlotBinding): every Fixed state tensor of a slot at its own offset, slot after slot. The CUDA backend's
// pool; the CPU backend keeps host SequenceStates instead (backend/host_slots.h).

#include <span>

#include "backend/backend.h"

namespace linfer {

class DeviceStateSlots : public StateSlots {
 public:
  virtual const Backend& backend() const = 0;  // whose memory the slots are in
  // The pool bound to a call over `ids` (one slot per sequence, uploaded to the device); valid until the
  // next bind.
  virtual SlotBinding bind(std::span<const int32_t> ids) = 0;
  virtual void advance(int slot, int64_t n_tokens) = 0;  // the slot's sequence grew by n tokens
};

}  // namespace linfer
