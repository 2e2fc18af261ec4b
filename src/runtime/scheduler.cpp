#include "runtime/scheduler.h"

#include <algorithm>

namespace linfer {

int64_t prompt_chunk(int64_t done, int64_t left, int64_t allowed, int64_t align) {
  const int64_t n = std::min(left, allowed);
  if (n <= 0 || n == left || align <= 0) return std::max<int64_t>(n, 0);
  const int64_t end = (done + n) / align * align;  // last multiple of align within the chunk
  return end > done ? end - done : n;              // none crossed: take what the budget allows
}

IterationPlan plan_iteration(std::span<const RunningSeqView> running, std::span<const WaitingRequestView> waiting,
                             PoolView pool, const SchedulerLimits& limits) {
  IterationPlan plan;
  plan.running_tokens.assign(running.size(), 0);
  int64_t budget = limits.max_batch_tokens;

  for (size_t i = 0; i < running.size() && budget > 0; ++i) {  // decodes: one token each
    if (running[i].idle || running[i].prompt_left > 0) continue;
    plan.running_tokens[i] = 1;
    --budget;
  }
  for (size_t i = 0; i < running.size() && budget > 0; ++i) {  // prompts under way, oldest first
    const RunningSeqView& r = running[i];
    if (r.idle || r.prompt_left == 0) continue;
    const int64_t n = prompt_chunk(r.prompt_done, r.prompt_left, budget, limits.chunk_align);
    plan.running_tokens[i] = n;
    budget -= n;
  }
  for (const WaitingRequestView& w : waiting) {  // new requests, in arrival order
    if (budget <= 0 || w.n_seqs > pool.free_slots || w.kv_bytes > pool.kv_free_bytes) break;
    const int64_t n = prompt_chunk(0, w.prompt_tokens, budget, limits.chunk_align);
    pool.free_slots -= w.n_seqs;
    pool.kv_free_bytes -= w.kv_bytes;
    plan.admitted_tokens.push_back(n);
    ++plan.admitted;
    budget -= n;
  }
  plan.total_tokens = limits.max_batch_tokens - budget;
  return plan;
}

}  // namespace linfer
