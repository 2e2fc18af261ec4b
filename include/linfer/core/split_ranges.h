#pragma once
// Work units [0, n) cut into one contiguous range per part (a part: one task of a parallel_for), which
// threads with nothing left split among themselves. A part's thread claims units from the front of its
// range, a quarter of what is left at a time (at least one): it goes through them in address order, so a
// weight stream stays one stream. A thread whose range is empty takes the back half of the largest
// remainder of another's and goes on with that as its own. The threads of a call then finish within about
// one claim of each other, where fixed tasks leave the length of the last one (the decode GEMV: a thread
// would wait for the other's last task at every one of a token's ~100 parallel calls).
//
//   SplitRanges& r = ...;                 // reused: allocates only when a call has more parts than before
//   r.reset(n_units, parts);
//   parallel_for(0, parts, [&](int64_t p0, int64_t p1) {
//     for (int64_t p = p0; p < p1; ++p) r.run(int(p), [&](int64_t u0, int64_t u1) { ... units [u0, u1) ... });
//   });
//
// Every unit is handed out exactly once: a range's front moves only by its owner's claims and its end only by
// a thief's, each one compare-and-swap of the range as a whole. run() returns when no range has two or
// more units left that another thread could take (the last units of a range are its owner's).
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>

#include "linfer/core/error.h"

namespace linfer {

class SplitRanges {
 public:
  static constexpr int64_t kMaxUnits = int64_t(1) << 31;

  void reset(int64_t units, int parts) {
    LINFER_CHECK(units >= 0 && units < kMaxUnits && parts >= 1, "SplitRanges: {} units in {} parts", units, parts);
    if (parts > capacity_) slots_ = std::make_unique<Slot[]>(size_t(capacity_ = parts));
    parts_ = parts;
    for (int p = 0; p < parts; ++p)
      slots_[p].range.store(pack(units * p / parts, units * (p + 1) / parts), std::memory_order_relaxed);
  }

  template <class Fn>
  void run(int part, Fn&& fn) {
    std::atomic<uint64_t>& own = slots_[part].range;
    for (;;) {
      uint64_t r = own.load(std::memory_order_relaxed);
      while (front(r) < end(r)) {
        const uint64_t take = std::max<uint64_t>(1, (end(r) - front(r)) / 4);
        if (!own.compare_exchange_weak(r, pack(front(r) + take, end(r)), std::memory_order_relaxed)) continue;
        fn(int64_t(front(r)), int64_t(front(r) + take));
        r = own.load(std::memory_order_relaxed);
      }
      if (!steal_into(own)) return;
    }
  }

 private:
  struct alignas(64) Slot {
    std::atomic<uint64_t> range{0};  // front (low 32 bits) and end (high 32 bits) of the unclaimed units
  };
  static uint64_t pack(int64_t front, int64_t end) { return uint64_t(front) | uint64_t(end) << 32; }
  static uint64_t front(uint64_t r) { return r & 0xffffffffu; }
  static uint64_t end(uint64_t r) { return r >> 32; }

  // Moves the back half of the largest remainder (two units or more) into `own`, which is empty and written
  // by nothing else meanwhile (a thief changes only ranges of two or more). False: nothing left to take.
  bool steal_into(std::atomic<uint64_t>& own) {
    for (;;) {
      int victim = -1;
      uint64_t seen = 0, most = 1;
      for (int p = 0; p < parts_; ++p) {
        const uint64_t r = slots_[p].range.load(std::memory_order_relaxed);
        if (end(r) > front(r) + most) most = end(r) - front(r), victim = p, seen = r;
      }
      if (victim < 0) return false;
      const uint64_t mid = end(seen) - most / 2;
      if (slots_[victim].range.compare_exchange_strong(seen, pack(front(seen), mid), std::memory_order_relaxed)) {
        own.store(pack(mid, end(seen)), std::memory_order_relaxed);
        return true;
      }
    }
  }

  std::unique_ptr<Slot[]> slots_;
  int capacity_ = 0, parts_ = 0;
};

}  // namespace linfer
