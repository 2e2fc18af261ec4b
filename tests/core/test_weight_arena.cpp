// core/weight_arena: copies hold the source's bytes, 64-byte aligned, small ones packed in shared chunks that start
// on a 2 MiB boundary and large ones in mappings of their own, and they stay valid after the arena is gone; a copy
// memory cannot hold is refused.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "linfer/core/weight_arena.h"

using namespace linfer;

TEST(WeightArena, CopiesHoldTheBytesAlignedAndOutliveTheArena) {
  std::mt19937 rng(4);
  std::vector<std::vector<uint8_t>> src;
  for (size_t n : {size_t(1), size_t(100), size_t(4096), size_t(3) << 20, size_t(20) << 20, size_t(777)}) {
    src.emplace_back(n);
    for (auto& b : src.back()) b = uint8_t(rng());
  }
  std::vector<std::shared_ptr<const std::byte>> copies;
  {
    WeightArena arena;
    for (const auto& s : src) copies.push_back(arena.copy(s.data(), s.size()));
    const auto first = reinterpret_cast<uintptr_t>(copies[0].get());
    EXPECT_EQ(first % (uintptr_t(2) << 20), 0u) << "a chunk starts on a huge page";
    EXPECT_EQ(reinterpret_cast<uintptr_t>(copies[1].get()), first + 64) << "small copies share the chunk";
    EXPECT_EQ(reinterpret_cast<uintptr_t>(copies[4].get()) % (uintptr_t(2) << 20), 0u)
        << "a large copy gets a mapping of its own";
  }
  for (size_t i = 0; i < src.size(); ++i) {
    EXPECT_EQ(reinterpret_cast<uintptr_t>(copies[i].get()) % 64, 0u) << i;
    EXPECT_EQ(0, std::memcmp(copies[i].get(), src[i].data(), src[i].size())) << i;
  }
}

// A copy that would leave less than an eighth of the machine's memory available is refused (the caller reads the
// source where it is): 1 TiB here, which no test machine has; the source is not read when refused.
TEST(WeightArena, RefusesWhatMemoryCannotHold) {
  WeightArena arena;
  const std::vector<uint8_t> small(64, 7);
  EXPECT_EQ(arena.copy(small.data(), size_t(1) << 40), nullptr);
  EXPECT_NE(arena.copy(small.data(), small.size()), nullptr);
}
