#pragma once
// The serving engine: one thread owns the model, the state pool and the prefix-state cache and runs
// the scheduler loop; other threads only submit requests, cancel them and receive their events.
// Each iteration: plan (runtime/scheduler.h) -> one Model::forward_slots over every running sequence's
// next token plus chunks of prompts (the states stay in the model's slots, on its device) -> sample each sequence with its own seeded Sampler -> decode text,
// check stop conditions -> events to each request's callback.
//
//   Engine engine(model, tok.get(), {.max_seqs = 16, .max_batch_tokens = 512});
//   GenerationRequest r{.prompt = ids, .max_tokens = 32};
//   uint64_t id = engine.submit(std::move(r), [](const EngineEvent& e) { ... });  // may throw QueueFull
//   engine.cancel(id);                  // frees its slots within one iteration
//   engine.shutdown(std::chrono::seconds(10));  // finish in-flight work, cancel what remains
//
// Callbacks run on the engine thread, one request's events in order: keep them short and never call
// back into the engine from them except cancel(). Thread-safety: submit, cancel, shutdown, metrics
// and the stats accessors may be called from any thread.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "linfer/core/error.h"
#include "linfer/model.h"
#include "linfer/tokenizer.h"
#include "runtime/logprobs.h"
#include "runtime/metrics.h"
#include "runtime/prefix_cache.h"
#include "runtime/sampling.h"
#include "runtime/sequence_output.h"

namespace linfer {

struct EngineOptions {
  int max_seqs = 16;                 // state slots (sequences decoding or prefilling at once)
  int64_t max_batch_tokens = 512;    // tokens per forward call; must be >= max_seqs
  int64_t max_context = 32768;       // prompt + generated tokens per sequence
  size_t kv_budget_bytes = 0;        // 0: max_seqs x max_context tokens of KV (never the limit)
  size_t prefix_cache_bytes = size_t(1) << 30;  // 0: no prefix-state cache
  int64_t prefix_spacing = 256;      // snapshot every this many prompt tokens (0: only at request ends)
  int max_waiting = 256;             // requests waiting for a slot; more are refused (QueueFull)
};

struct GenerationRequest {
  std::vector<int32_t> prompt{};     // >= 1 token, ids < vocab, prompt + max_tokens <= max_context
  int64_t max_tokens = 16;
  int64_t min_tokens = 0;
  bool ignore_eos = false;
  std::vector<std::string> stop{};
  SamplingParams sampling{};         // choice i draws with seed sampling.seed + i
  int n = 1;                         // choices: the prompt is computed once, its state copied n times
  int top_logprobs = -1;             // < 0: no logprobs; >= 0: the sampled token's + this many others
  bool snapshot = false;             // compute the prompt only; the Done event carries its state
  std::string label{};               // for the log line (e.g. the HTTP request id)
};

// The prompt's state for /v1/state/save (GenerationRequest::snapshot).
struct StateSnapshot {
  std::vector<int32_t> tokens;
  SequenceState state;               // holds exactly `tokens`
  std::vector<float> logits;         // after the last token [vocab]
};

struct RequestSummary {
  int64_t prompt_tokens = 0;
  int64_t cached_tokens = 0;         // of the prompt, taken from the prefix cache
  int64_t generated_tokens = 0;      // all choices together
  double queue_s = 0, ttft_s = 0, total_s = 0;
  std::string outcome;               // "stop", "length", "cancelled", "error" (the worst of the choices)
};

struct EngineEvent {
  enum class Kind {
    Token,  // new output of one choice (ids, text, logprobs; finish set on its last event)
    Done,   // every choice finished: summary (and snapshot)
    Error,  // the request failed (message); no further events
  } kind = Kind::Token;
  int choice = 0;
  std::vector<int32_t> ids;
  std::string text;
  std::vector<TokenLogprobs> logprobs;
  std::optional<FinishReason> finish;
  RequestSummary summary;
  std::shared_ptr<StateSnapshot> snapshot;
  std::string message;
};

using EventCallback = std::function<void(const EngineEvent&)>;

// Thrown by submit() when max_waiting requests are already waiting (HTTP 429).
class QueueFull : public Error {
 public:
  using Error::Error;
};
// Thrown by submit() once shutdown has begun (HTTP 503).
class ShuttingDown : public Error {
 public:
  using Error::Error;
};

class Engine {
 public:
  // tok may be null (token-id interfaces only: no text, no stop strings). Starts the engine thread.
  Engine(std::shared_ptr<const Model> model, const Tokenizer* tok, EngineOptions options);
  ~Engine();  // cancels what is left and joins the thread
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Checks the request (throws linfer::Error naming the field), then queues it. Returns its id.
  uint64_t submit(GenerationRequest request, EventCallback callback);
  void cancel(uint64_t id);
  // Refuses new requests; lets running and waiting ones finish for up to `grace`, cancels the rest,
  // then stops the thread. Returns once the engine is stopped.
  void shutdown(std::chrono::milliseconds grace);

  const EngineOptions& options() const { return options_; }
  const Model& model() const { return *model_; }
  const Tokenizer* tokenizer() const { return tok_; }
  int32_t eos_id() const { return eos_; }
  size_t slot_bytes() const { return slot_bytes_; }      // fixed bytes of one state slot
  size_t kv_bytes_per_token() const { return kv_per_token_; }
  size_t kv_budget() const { return kv_budget_; }
  ServerMetrics& metrics() { return metrics_; }
  PrefixCache& prefix_cache() { return cache_; }
  bool idle() const;  // nothing waiting, nothing running

 private:
  struct Impl;  // the engine thread's state (runtime/engine_loop.cpp)

  void run();

  std::shared_ptr<const Model> model_;
  const Tokenizer* tok_;
  EngineOptions options_;
  int32_t eos_ = -1;
  size_t slot_bytes_ = 0, kv_per_token_ = 0, kv_budget_ = 0;
  ServerMetrics metrics_;
  PrefixCache cache_;

  struct Task {
    enum class Kind { Submit, Cancel, CancelAll } kind = Kind::Submit;
    uint64_t id = 0;
    GenerationRequest request;
    EventCallback callback;
    std::chrono::steady_clock::time_point arrival;
    static Task control(Kind k, uint64_t id = 0) {
      Task t;
      t.kind = k;
      t.id = id;
      return t;
    }
  };
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> tasks_;
  bool stopping_ = false;            // no more submits
  bool stop_now_ = false;            // the thread exits at its next check
  std::atomic<int> waiting_{0};      // submitted, not yet admitted (queued tasks included)
  std::atomic<int> active_{0};       // submitted, not yet finished
  std::atomic<uint64_t> next_id_{1};
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
};

}  // namespace linfer
