// parallel_for allocates nothing: decode calls it hundreds of times per token. Counted with a
// replacement global operator new (tests/alloc_counter.h, this executable only).

#include <gtest/gtest.h>

#include "../alloc_counter.h"
#include "linfer/core/thread_pool.h"

namespace linfer {
namespace {

TEST(ThreadPoolAlloc, ParallelForAllocatesNothing) {
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    double sink[64] = {};
    int64_t a = 1, b = 2, c = 3;  // a capture larger than any std::function small buffer
    auto body = [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) sink[i % 64] += double(i * a + b * c);
    };
    parallel_for(0, 64, body);  // warm-up: the pool exists before counting
    const long before = g_allocations.load();
    for (int call = 0; call < 2000; ++call) parallel_for(0, 1 + call % 64, body);
    EXPECT_EQ(g_allocations.load() - before, 0) << threads << " threads";
    EXPECT_GT(sink[0] + sink[63], 0.0);
  }
  set_num_threads(0);
}

}  // namespace
}  // namespace linfer
