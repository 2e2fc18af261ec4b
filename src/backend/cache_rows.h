#pragma once
// One sequence's rows of a Growing state tensor (a KV or latent cache) in a device's memory, as a slot pool
// bound them to a call (SlotBinding): room for this call's rows is made at bind time, so `rows` counts them.
// Kernels read these from device memory, so a recorded decode step finds each cache wherever it has moved.

#include <cstdint>

namespace linfer {

struct CacheRows {
  float* p = nullptr;  // row 0
  int64_t rows = 0;    // this call's included
};

}  // namespace linfer
