#pragma once
// Internal, for x86-64 files compiled with F16C (AVX2 and up): an fp16 value at any address as a float (the
// block formats' scales sit at any even address). Internal linkage: each instruction set's file its own copy.

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace linfer::kernels {
namespace {

inline float half_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

}  // namespace
}  // namespace linfer::kernels
