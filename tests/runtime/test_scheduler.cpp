// plan_iteration: decodes first, prompt chunks next, admission in arrival order under the token
// budget, free slots and KV bytes; chunk alignment; and a simulation of many iterations checked
// against invariants (budget never exceeded, every decode served every iteration, a long prompt
// never takes more than the budget, everything finishes).
#include <gtest/gtest.h>

#include <deque>
#include <random>

#include "runtime/scheduler.h"

using namespace linfer;

TEST(PromptChunk, CutsAtTheBudgetAndAlignsInsidePrompts) {
  EXPECT_EQ(prompt_chunk(0, 100, 512, 0), 100);   // whole prompt fits
  EXPECT_EQ(prompt_chunk(0, 1000, 512, 0), 512);  // budget-limited
  EXPECT_EQ(prompt_chunk(0, 1000, 512, 256), 512);
  EXPECT_EQ(prompt_chunk(0, 1000, 500, 256), 256);   // stops on the last multiple of 256 crossed
  EXPECT_EQ(prompt_chunk(300, 1000, 500, 256), 468);  // 300 + 468 = 768 = 3 x 256
  EXPECT_EQ(prompt_chunk(300, 100, 500, 256), 100);   // ends the prompt: no alignment
  EXPECT_EQ(prompt_chunk(300, 1000, 100, 256), 100);  // crosses no multiple: what the budget allows
  EXPECT_EQ(prompt_chunk(0, 10, 0, 256), 0);
}

TEST(PlanIteration, DecodesFirstThenPromptsThenAdmissions) {
  std::vector<RunningSeqView> running = {
      {.prompt_done = 10, .prompt_left = 50},  // prefilling
      {.prompt_done = 5, .prompt_left = 0},    // decoding
      {.prompt_done = 7, .prompt_left = 0},    // decoding
  };
  std::vector<WaitingRequestView> waiting = {{.prompt_tokens = 30, .n_seqs = 1, .kv_bytes = 0},
                                             {.prompt_tokens = 30, .n_seqs = 1, .kv_bytes = 0}};
  IterationPlan p = plan_iteration(running, waiting, {.free_slots = 4, .kv_free_bytes = 0}, {.max_batch_tokens = 64});
  EXPECT_EQ(p.running_tokens, (std::vector<int64_t>{50, 1, 1}));
  ASSERT_EQ(p.admitted, 1);  // 64 - 52 = 12 tokens left: the first waiting request starts with 12
  EXPECT_EQ(p.admitted_tokens, (std::vector<int64_t>{12}));
  EXPECT_EQ(p.total_tokens, 64);

  // A small budget: decodes still come first, the prompt waits.
  p = plan_iteration(running, waiting, {.free_slots = 4}, {.max_batch_tokens = 2});
  EXPECT_EQ(p.running_tokens, (std::vector<int64_t>{0, 1, 1}));
  EXPECT_EQ(p.admitted, 0);
}

TEST(PlanIteration, AdmissionNeedsSlotsAndKvAndIsFirstComeFirstServed) {
  std::vector<WaitingRequestView> waiting = {{.prompt_tokens = 4, .n_seqs = 2, .kv_bytes = 100},
                                             {.prompt_tokens = 4, .n_seqs = 1, .kv_bytes = 10}};
  // Not enough slots for the first (n = 2): nobody starts, even though the second would fit.
  IterationPlan p = plan_iteration({}, waiting, {.free_slots = 1, .kv_free_bytes = 1000}, {.max_batch_tokens = 64});
  EXPECT_EQ(p.admitted, 0);
  // Not enough KV for the first.
  p = plan_iteration({}, waiting, {.free_slots = 3, .kv_free_bytes = 99}, {.max_batch_tokens = 64});
  EXPECT_EQ(p.admitted, 0);
  // Both fit exactly.
  p = plan_iteration({}, waiting, {.free_slots = 3, .kv_free_bytes = 110}, {.max_batch_tokens = 64});
  EXPECT_EQ(p.admitted, 2);
  // The first takes the slots the second needed.
  p = plan_iteration({}, waiting, {.free_slots = 2, .kv_free_bytes = 110}, {.max_batch_tokens = 64});
  EXPECT_EQ(p.admitted, 1);
  // No budget left: nothing is admitted even with room.
  std::vector<RunningSeqView> busy(8);
  p = plan_iteration(busy, waiting, {.free_slots = 3, .kv_free_bytes = 1000}, {.max_batch_tokens = 8});
  EXPECT_EQ(p.admitted, 0);
  EXPECT_EQ(p.total_tokens, 8);
}

TEST(PlanIteration, IdleForksComputeNothing) {
  std::vector<RunningSeqView> running = {{.prompt_done = 3, .prompt_left = 0, .idle = true},
                                         {.prompt_done = 3, .prompt_left = 0}};
  IterationPlan p = plan_iteration(running, {}, {}, {.max_batch_tokens = 8});
  EXPECT_EQ(p.running_tokens, (std::vector<int64_t>{0, 1}));
}

// Many iterations of a simulated server: requests arrive at random, the plan is applied, sequences
// decode a random number of tokens and leave. Checks the promises of scheduler.h at every step.
TEST(PlanIteration, SimulationKeepsItsPromises) {
  std::mt19937 rng(3);
  struct Seq {
    int64_t done = 0, left = 0, decode_left = 0;
    size_t kv = 0;
  };
  struct Req {
    int64_t prompt;
    int64_t gen;
    size_t kv;
  };
  const int slots = 6;
  const size_t kv_budget = 4000;
  const SchedulerLimits lim{.max_batch_tokens = 48, .chunk_align = 16};
  std::vector<Seq> running;
  std::deque<Req> waiting;
  int free_slots = slots, finished = 0, submitted = 0;
  size_t kv_free = kv_budget;
  for (int it = 0; it < 5000 && (submitted < 300 || !running.empty() || !waiting.empty()); ++it) {
    if (submitted < 300 && rng() % 3 == 0) {
      const int64_t prompt = 1 + rng() % 200, gen = 1 + rng() % 20;
      waiting.push_back({prompt, gen, size_t(prompt + gen) * 4});
      ++submitted;
    }
    std::vector<RunningSeqView> rv;
    for (const Seq& s : running) rv.push_back({s.done, s.left});
    std::vector<WaitingRequestView> wv;
    for (const Req& r : waiting) wv.push_back({r.prompt, 1, r.kv});
    const IterationPlan p = plan_iteration(rv, wv, {free_slots, kv_free}, lim);

    ASSERT_LE(p.total_tokens, lim.max_batch_tokens);
    int64_t sum = 0;
    for (size_t i = 0; i < running.size(); ++i) {
      sum += p.running_tokens[i];
      if (running[i].left == 0) ASSERT_EQ(p.running_tokens[i], 1) << "a decode skipped at iteration " << it;
      ASSERT_LE(p.running_tokens[i], std::max<int64_t>(running[i].left, 1));
    }
    for (int64_t n : p.admitted_tokens) sum += n;
    ASSERT_EQ(sum, p.total_tokens);

    for (size_t i = 0; i < running.size(); ++i) {  // apply
      Seq& s = running[i];
      const int64_t n = p.running_tokens[i];
      if (s.left > 0) {
        const bool ends = n == s.left;
        const int64_t before = s.done;
        s.done += n;
        s.left -= n;
        // A chunk stopping inside the prompt stops on a multiple of the alignment, unless it crosses none.
        if (!ends && n > 0 && before / lim.chunk_align != s.done / lim.chunk_align)
          ASSERT_EQ(s.done % lim.chunk_align, 0) << "unaligned chunk end";
      } else {
        --s.decode_left;
      }
    }
    for (int a = 0; a < p.admitted; ++a) {
      const Req r = waiting.front();
      waiting.pop_front();
      ASSERT_GE(free_slots, 1);
      ASSERT_LE(r.kv, kv_free);
      --free_slots;
      kv_free -= r.kv;
      running.push_back({p.admitted_tokens[size_t(a)], r.prompt - p.admitted_tokens[size_t(a)], r.gen, r.kv});
    }
    for (size_t i = running.size(); i-- > 0;) {
      if (running[i].left == 0 && running[i].decode_left <= 0) {
        ++free_slots;
        kv_free += running[i].kv;
        running.erase(running.begin() + long(i));
        ++finished;
      }
    }
  }
  EXPECT_EQ(finished, 300);
  EXPECT_EQ(free_slots, slots);
  EXPECT_EQ(kv_free, kv_budget);
}
