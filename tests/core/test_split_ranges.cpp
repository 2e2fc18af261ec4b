// SplitRanges hands every unit out exactly once, in claims that run front to back within a range, and a
// thread that finishes early takes over the rest of a slow one's range.

#include "linfer/core/split_ranges.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <random>
#include <thread>
#include <vector>

namespace linfer {
namespace {

// Runs every part on its own std::thread (parts at once, whatever the pool's size) and counts each unit.
std::vector<int> run_parts(SplitRanges& r, int64_t units, int parts, int slow_part = -1,
                           std::vector<int64_t>* units_by_part = nullptr) {
  std::vector<std::atomic<int>> seen(static_cast<size_t>(units));
  std::vector<int64_t> by_part(static_cast<size_t>(parts));
  r.reset(units, parts);
  std::vector<std::thread> threads;
  for (int p = 0; p < parts; ++p)
    threads.emplace_back([&, p] {
      r.run(p, [&](int64_t u0, int64_t u1) {
        ASSERT_LT(u0, u1);
        if (p == slow_part) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        for (int64_t u = u0; u < u1; ++u) seen[size_t(u)].fetch_add(1);
        by_part[size_t(p)] += u1 - u0;
      });
    });
  for (auto& t : threads) t.join();
  if (units_by_part) *units_by_part = by_part;
  std::vector<int> counts;
  for (auto& s : seen) counts.push_back(s.load());
  return counts;
}

TEST(SplitRanges, EveryUnitExactlyOnce) {
  SplitRanges r;  // reused across calls of different sizes, as gemv_many does
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    const int parts = 1 + int(rng() % 7);
    const int64_t units = parts + int64_t(rng() % 3000);
    const std::vector<int> counts = run_parts(r, units, parts);
    for (int64_t u = 0; u < units; ++u) ASSERT_EQ(counts[size_t(u)], 1) << "unit " << u << " of " << units << ", " << parts << " parts";
  }
}

TEST(SplitRanges, ClaimsRunFrontToBackWithinAPart) {
  SplitRanges r;
  r.reset(1000, 1);
  int64_t next = 0;
  r.run(0, [&](int64_t u0, int64_t u1) {
    EXPECT_EQ(u0, next);
    EXPECT_GE(u1 - u0, 1);
    EXPECT_LE(u1 - u0, std::max<int64_t>(1, (1000 - u0) / 4));  // a quarter of what is left, at least one
    next = u1;
  });
  EXPECT_EQ(next, 1000);
}

TEST(SplitRanges, FastThreadsTakeOverASlowOnesRange) {
  SplitRanges r;
  std::vector<int64_t> by_part;
  const std::vector<int> counts = run_parts(r, 4000, 4, /*slow_part=*/2, &by_part);
  for (int c : counts) ASSERT_EQ(c, 1);
  // Part 2 sleeps 20 ms per claim: fixed ranges would leave it its 1000 units; the others take most of them.
  EXPECT_LT(by_part[2], 500) << "the slow part kept " << by_part[2] << " of its 1000 units";
}

TEST(SplitRanges, RefusesBadSizes) {
  SplitRanges r;
  EXPECT_THROW(r.reset(-1, 2), Error);
  EXPECT_THROW(r.reset(10, 0), Error);
  EXPECT_THROW(r.reset(SplitRanges::kMaxUnits, 2), Error);
}

}  // namespace
}  // namespace linfer
