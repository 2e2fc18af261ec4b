#pragma once
// Internal to the engine: the state the engine thread owns and one scheduler iteration over it.
// Only the engine thread touches anything here.

#include <deque>
#include <memory>
#include <optional>
#include <vector>

#include "runtime/engine.h"
#include "runtime/state_pool.h"

namespace linfer {

struct Engine::Impl {
  using Clock = std::chrono::steady_clock;

  struct Request {
    uint64_t id = 0;
    GenerationRequest g;
    EventCallback callback;
    Clock::time_point arrival, admitted, first_token;
    bool has_first_token = false;
    int64_t cached = 0;                 // prompt tokens taken from the prefix cache
    int64_t generated = 0;              // all choices together
    int live = 0;                       // choices not finished
    std::optional<FinishReason> worst;  // the outcome reported for the whole request
  };

  struct Seq {
    std::shared_ptr<Request> req;
    int choice = 0;
    int slot = -1;                      // -1: finished, to be dropped from `running`
    std::vector<int32_t> tokens;        // what the state holds: prompt (so far), then generated ids fed
    int64_t prompt_left = 0;            // prompt tokens still to compute (choice 0 while prefilling)
    bool idle = false;                  // a fork (choice > 0) waiting for the prompt's state
    int64_t now = 0;                    // tokens to compute this iteration
    int32_t next = -1;                  // sampled, fed at the next decode step
    std::optional<Sampler> sampler;
    std::optional<SequenceOutput> out;
    Clock::time_point last_token;
  };

  Impl(Engine& e);

  void submit(uint64_t id, GenerationRequest g, EventCallback cb, Clock::time_point arrival);
  void cancel(uint64_t id);
  void cancel_all();
  bool has_work() const { return !waiting.empty() || !running.empty(); }
  void iteration();
  void publish_gauges();

 private:
  void admit(std::shared_ptr<Request> r, int64_t planned_tokens);
  void prompt_done(Seq& seq, const float* row);
  void sample_and_emit(Seq& seq, const float* row);
  void emit_token(Seq& seq, int32_t id, const SequenceOutput::Step& step, std::vector<TokenLogprobs> lp);
  void finish_seq(Seq& seq);
  void finish_request(Request& r, std::shared_ptr<StateSnapshot> snapshot = nullptr);
  void fail_request(Request& r, const std::string& message);
  void cache_insert(const Seq& seq);

  Engine& e;
  const Model& model;
  const int64_t vocab;
  StatePool pool;
  std::deque<std::shared_ptr<Request>> waiting;
  std::vector<Seq> running;             // in admission order
  std::vector<float> logits;            // [rows, vocab] of the last forward
  std::vector<float> masked;            // [vocab] a row with EOS masked (min_tokens)
};

}  // namespace linfer
