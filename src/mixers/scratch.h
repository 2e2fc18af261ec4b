#pragma once
// Per-thread scratch buffers, grown on demand and reused across calls, so that decode allocates
// nothing after the first token. A forward pass runs on one calling thread (kernels fan out on the
// pool with their own buffers), so thread_local storage is safe.
//
//   Scratch s;                       // slots released when s goes out of scope
//   float* q = s.get(T * H * K);     // 64-byte aligned, contents undefined

#include <algorithm>
#include <cstdint>
#include <vector>

#include "linfer/core/aligned.h"

namespace linfer {

class Scratch {
 public:
  Scratch() : base_(top()) {}
  ~Scratch() { top() = base_; }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;

  float* get(int64_t n) {
    auto& slots = pool();
    size_t& t = top();
    if (t == slots.size()) slots.emplace_back();
    auto& v = slots[t++];
    if (int64_t(v.size()) < n) v.resize(size_t(n));
    return v.data();
  }
  // Zero-filled.
  float* zeros(int64_t n) {
    float* p = get(n);
    std::fill(p, p + n, 0.0f);
    return p;
  }

 private:
  static std::vector<AlignedVector<float>>& pool() {
    thread_local std::vector<AlignedVector<float>> slots;
    return slots;
  }
  static size_t& top() {
    thread_local size_t t = 0;
    return t;
  }
  size_t base_;
};

}  // namespace linfer
