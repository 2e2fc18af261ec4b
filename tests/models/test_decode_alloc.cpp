// Decode does not allocate per step once warm. After a prefill and warm-up steps have grown the per-thread
// scratch, and with room reserved in the Growing (KV) tensors (the one thing that must grow with the
// context; forward() reserves it itself otherwise, by doubling), a decode step of B sequences calls
// operator new no more than a worker's first use of a kernel's buffers needs (not once per step), for
// one and several sequences, with the pool's threads running. Counted
// with a replacement global operator new (tests/alloc_counter.h, this executable only), like
// tests/core/test_thread_pool_alloc.cpp. Mamba2 only so far: the hybrids' attention and MLA decode
// kernels still allocate per call (docs/benchmarks.md, "Decode at batch 1 and 8").

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "../alloc_counter.h"
#include "linfer/core/thread_pool.h"
#include "linfer/model.h"

namespace linfer {
namespace {

const std::string kGolden = std::string(LINFER_SOURCE_DIR) + "/tests/golden/";

class DecodeAlloc : public ::testing::TestWithParam<std::string> {};

TEST_P(DecodeAlloc, WarmDecodeStepsAllocateNothing) {
  set_num_threads(2);
  const auto model = Model::load(kGolden + GetParam());
  const int64_t V = model->info().vocab_size;
  for (int64_t B : {1, 3}) {
    std::vector<SequenceState> states(size_t(B), SequenceState(model->state_spec()));
    std::vector<SequenceState*> ptrs;
    for (auto& s : states) ptrs.push_back(&s);
    std::vector<float> logits(static_cast<size_t>(B * V));

    // Prefill 5 tokens into each sequence (one packed call), then warm-up steps.
    std::vector<int32_t> prompt(static_cast<size_t>(5 * B));
    for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = int32_t((i * 37 + 11) % size_t(V));
    Batch prefill{prompt, {}};
    for (int64_t i = 0; i <= B; ++i) prefill.offsets.push_back(5 * i);
    model->forward(prefill, ptrs, logits.data(), Logits::Last);
    std::vector<int32_t> ids(static_cast<size_t>(B));
    Batch step{ids, {}};
    for (int64_t i = 0; i <= B; ++i) step.offsets.push_back(i);
    auto decode = [&](int n) {
      for (int t = 0; t < n; ++t) {
        for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t((t * 13 + i * 7 + 1) % size_t(V));
        model->forward(step, ptrs, logits.data(), Logits::Last);
      }
    };
    // Warm up until three steps in a row allocate nothing: kernels keep per-thread buffers, which a
    // pool thread grows the first time it happens to run a task of that kernel. Tasks go to whichever
    // thread takes them first, so under load a worker can meet a kernel for the first time even after
    // the warm-up: each (thread, buffer) pair grows at most once, a handful in all. The count below is
    // therefore bounded by a quarter of the steps: code that allocates on every step exceeds it.
    const int kSteps = 64, kMaxWarm = 200;
    int warm = 0;
    for (int clean = 0; clean < 3 && warm < kMaxWarm; ++warm) {
      const long a = g_allocations.load();
      decode(1);
      clean = g_allocations.load() == a ? clean + 1 : 0;
    }
    ASSERT_LT(warm, kMaxWarm) << GetParam() << ": decode steps kept allocating";
    for (auto& s : states)
      for (size_t j = 0; j < s.n_tensors(); ++j)
        if (s.spec().tensors[j].kind == StateKind::Growing) s.reserve_rows(j, kSteps);

    const long before = g_allocations.load();
    decode(kSteps);
    EXPECT_LT(g_allocations.load() - before, kSteps / 4)
        << GetParam() << ", " << B << " sequences, " << kSteps << " steps";
    EXPECT_EQ(states[0].n_tokens(), 5 + warm + kSteps);
  }
  set_num_threads(0);
}

INSTANTIATE_TEST_SUITE_P(Golden, DecodeAlloc,
                         ::testing::Values("mamba2_a", "mamba2_b"));

}  // namespace
}  // namespace linfer
