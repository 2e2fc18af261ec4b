// core/: dtype conversions against exact known encodings, tensor views, the thread pool.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <random>

#include "linfer/core/dtype.h"
#include "linfer/core/error.h"
#include "linfer/core/tensor.h"
#include "linfer/core/thread_pool.h"

using namespace linfer;

TEST(DType, Bf16KnownEncodings) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(-2.0f), 0xc000);
  EXPECT_EQ(bf16_to_f32(0x3f80), 1.0f);
  // 1 + 2^-8 is a tie between 1 and 1 + 2^-7: round to even (1.0)
  EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);
  EXPECT_EQ(f32_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
}

TEST(DType, F16RoundTripAllHalfValues) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    float f = f16_to_f32(uint16_t(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_f16(f), h) << std::hex << h;
  }
  EXPECT_EQ(f16_to_f32(0x3c00), 1.0f);
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);  // rounds to inf
}

TEST(DType, F16RoundsToNearest) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-70000.f, 70000.f);
  for (int i = 0; i < 100000; ++i) {
    float f = u(rng) * std::ldexp(1.0f, -int(rng() % 30));
    uint16_t h = f32_to_f16(f);
    float back = f16_to_f32(h);
    if (std::isinf(back)) continue;
    // no other half value is strictly closer
    float up = f16_to_f32(uint16_t(h + 1)), down = f16_to_f32(uint16_t(h - 1));
    ASSERT_LE(std::fabs(back - f), std::fabs(up - f) + 0.0f) << f;
    if ((h & 0x7fff) != 0) {
      ASSERT_LE(std::fabs(back - f), std::fabs(down - f)) << f;
    }
  }
}

TEST(Tensor, NumelIsZeroWithAZeroDimWhateverTheOthers) {
  // left to right, 146 · 2^62 would overflow before the 0 (undefined behaviour, reported by UBSan)
  EXPECT_EQ(shape_numel({146, int64_t(1) << 62, 0}), 0);
  EXPECT_EQ(shape_numel({0, int64_t(1) << 62, 146}), 0);
  EXPECT_EQ(shape_numel({2, 3, 4}), 24);
  EXPECT_EQ(shape_numel({}), 1);
}

TEST(Tensor, SliceAndConvert) {
  Tensor t = Tensor::zeros({4, 3}, DType::BF16);
  auto* p = t.view().as<uint16_t>();
  for (int i = 0; i < 12; ++i) p[i] = f32_to_bf16(float(i));
  Tensor f = Tensor::to_f32(t.view().slice0(1, 3));
  ASSERT_EQ(f.shape(), (Shape{2, 3}));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(f.f32()[i], float(i + 3));
  EXPECT_THROW(t.view().slice0(2, 5), Error);
  EXPECT_THROW(t.view().reshape({5}), Error);
}

TEST(ThreadPool, CoversRangeExactlyOnce) {
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    for (int64_t n : {0, 1, 7, 1000}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      parallel_for(0, n, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) hits[size_t(i)]++;
        // nested calls run inline and still cover their range
        parallel_for(0, 3, [&](int64_t, int64_t) {});
      });
      for (auto& h : hits) ASSERT_EQ(h.load(), 1);
    }
  }
  set_num_threads(0);
}
