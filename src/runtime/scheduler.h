#pragma once
// The serving loop's scheduling decision, as a pure function of the queue and pool state (vLLM V1
// style): one token budget per iteration; every decoding sequence first (one token each), then
// chunks of prompts being prefilled, oldest first, then new requests admitted in arrival order while
// the budget, a free state slot per sequence and the KV byte budget allow. A prompt longer than the
// budget is cut into chunks, so it delays the others' decoding by at most one chunk per iteration.
// Admission stops at the first waiting request that does not fit (first come, first served).
//
//   SchedulerLimits lim{.max_batch_tokens = 512, .chunk_align = 256};
//   IterationPlan p = plan_iteration(running, waiting, {.free_slots = 3, .kv_free_bytes = kv}, lim);
//   // p.running_tokens[i]: tokens for running[i] this iteration; p.admitted: waiting[0..admitted)
//
// Reserved KV is charged at admission for the whole request (prompt + max_tokens, per sequence), so
// an admitted request never runs out of KV room and nothing is ever preempted.

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace linfer {

struct RunningSeqView {
  int64_t prompt_done = 0;  // prompt tokens already in the state
  int64_t prompt_left = 0;  // prompt tokens still to compute; 0: decoding (one token per iteration)
  bool idle = false;        // holds a slot but computes nothing now (n > 1 forks waiting for the prompt)
};

struct WaitingRequestView {
  int64_t prompt_tokens = 0;  // tokens to compute if nothing is cached
  int n_seqs = 1;             // state slots it needs (n > 1 forks the prompt's state)
  size_t kv_bytes = 0;        // KV it reserves, all its sequences together
};

struct PoolView {
  int free_slots = 0;
  size_t kv_free_bytes = 0;
};

struct SchedulerLimits {
  int64_t max_batch_tokens = 512;  // tokens per forward call, all sequences together
  int64_t chunk_align = 0;         // > 0: a chunk that stops inside a prompt stops on a multiple of
                                   // this (the prefix cache snapshots there, aligned across requests)
};

struct IterationPlan {
  std::vector<int64_t> running_tokens;   // one per running sequence (0: not this iteration)
  int admitted = 0;                      // waiting[0 .. admitted) start now
  std::vector<int64_t> admitted_tokens;  // the first chunk of each admitted request
  int64_t total_tokens = 0;
};

// The chunk of a prompt to compute now: at most `allowed` tokens of the `left` still to compute,
// starting at absolute position `done`; when it stops inside the prompt and crosses a multiple of
// `align`, it stops at the last such multiple instead.
int64_t prompt_chunk(int64_t done, int64_t left, int64_t allowed, int64_t align);

IterationPlan plan_iteration(std::span<const RunningSeqView> running, std::span<const WaitingRequestView> waiting,
                             PoolView pool, const SchedulerLimits& limits);

}  // namespace linfer
