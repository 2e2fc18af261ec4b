// The thread pool under stress: many thousand back-to-back parallel calls (run under
// ThreadSanitizer in CI), concurrent callers, exceptions, and the bounds on --threads.

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "linfer/core/error.h"
#include "linfer/core/thread_pool.h"

namespace linfer {
namespace {

// Every call must run each index exactly once and return only after the last sub-range finished.
void back_to_back(int calls, std::atomic<int>& running, std::vector<std::atomic<int>>& hits) {
  for (int c = 0; c < calls; ++c) {
    const int64_t n = 1 + c % 17;
    for (int64_t i = 0; i < n; ++i) hits[size_t(i)].store(0, std::memory_order_relaxed);
    parallel_for(0, n, [&](int64_t lo, int64_t hi) {
      running.fetch_add(1);
      if (c % 5 == 0) std::this_thread::yield();  // widen the window a late worker could race in
      for (int64_t i = lo; i < hi; ++i) hits[size_t(i)].fetch_add(1, std::memory_order_relaxed);
      running.fetch_sub(1);
    });
    ASSERT_EQ(running.load(), 0) << "call " << c << " returned while a sub-range still ran";
    for (int64_t i = 0; i < n; ++i)
      ASSERT_EQ(hits[size_t(i)].load(std::memory_order_relaxed), 1) << "call " << c << " index " << i;
  }
}

TEST(ThreadPoolStress, ThousandsOfBackToBackCalls) {
  for (int threads : {2, 3, 4}) {
    set_num_threads(threads);
    std::atomic<int> running{0};
    std::vector<std::atomic<int>> hits(17);
    back_to_back(5000, running, hits);
  }
  set_num_threads(0);
}

TEST(ThreadPoolStress, ConcurrentCallersAreSerialised) {
  set_num_threads(3);
  std::vector<std::thread> callers;
  std::vector<std::atomic<int>> running(3);
  std::vector<std::vector<std::atomic<int>>> hits;
  for (int t = 0; t < 3; ++t) hits.emplace_back(17);
  for (int t = 0; t < 3; ++t)
    callers.emplace_back([&, t] { back_to_back(2000, running[size_t(t)], hits[size_t(t)]); });
  for (auto& c : callers) c.join();
  set_num_threads(0);
}

TEST(ThreadPool, ExceptionReachesTheCallerAfterEveryRangeFinished) {
  set_num_threads(3);
  for (int round = 0; round < 200; ++round) {
    std::atomic<int> finished{0};
    EXPECT_THROW(parallel_for(0, 12,
                              [&](int64_t lo, int64_t) {
                                if (lo == 0) throw std::runtime_error("task failed");
                                finished.fetch_add(1);
                              }),
                 std::runtime_error);
    // every other sub-range still ran to its end before the exception came back
    EXPECT_EQ(finished.load(), 11);
  }
  std::atomic<int> after{0};
  parallel_for(0, 100, [&](int64_t lo, int64_t hi) { after.fetch_add(int(hi - lo)); });
  EXPECT_EQ(after.load(), 100) << "the pool stays usable after an exception";
  set_num_threads(0);
}

TEST(ThreadPool, RejectsThreadCountsOutOfRange) {
  set_num_threads(2);
  for (int bad : {-1, -100, max_threads() + 1, 100000}) {
    try {
      set_num_threads(bad);
      ADD_FAILURE() << "set_num_threads(" << bad << ") was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("out of range"), std::string::npos) << e.what();
    }
    EXPECT_EQ(num_threads(), 2) << "a refused count leaves the pool as it was";
  }
  set_num_threads(max_threads());
  EXPECT_EQ(num_threads(), max_threads());
  set_num_threads(0);
  EXPECT_EQ(num_threads(), available_cores());
}

}  // namespace
}  // namespace linfer
