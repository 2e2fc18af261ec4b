// The engine's thread-facing half: checking and queueing requests, cancellation, shutdown, and the
// loop that hands tasks to the engine thread's state (runtime/engine_loop.cpp).

#include "runtime/engine.h"

#include "runtime/engine_loop.h"
#include "runtime/state_pool.h"

namespace linfer {

Engine::Engine(std::shared_ptr<const Model> model, const Tokenizer* tok, EngineOptions options)
    : model_(std::move(model)),
      tok_(tok),
      options_(options),
      cache_({.byte_budget = options.prefix_cache_bytes, .spacing = options.prefix_spacing}) {
  LINFER_CHECK(options_.max_seqs >= 1, "--max-seqs must be at least 1, not {}", options_.max_seqs);
  LINFER_CHECK(options_.max_batch_tokens >= options_.max_seqs,
               "--max-batch-tokens ({}) must be at least --max-seqs ({}): every running sequence decodes one "
               "token per iteration", options_.max_batch_tokens, options_.max_seqs);
  LINFER_CHECK(options_.max_context >= 2, "--max-context must be at least 2, not {}", options_.max_context);
  LINFER_CHECK(options_.max_waiting >= 1, "the waiting queue needs room for at least one request");
  eos_ = tok_ && tok_->eos_id() >= 0 ? tok_->eos_id() : int32_t(model_->info().eos_token_id);
  slot_bytes_ = StatePool::fixed_bytes(model_->state_spec());
  kv_per_token_ = StatePool::kv_bytes_for(model_->state_spec(), 1);
  kv_budget_ = options_.kv_budget_bytes > 0
                   ? options_.kv_budget_bytes
                   : kv_per_token_ * size_t(options_.max_context) * size_t(options_.max_seqs);
  impl_ = std::make_unique<Impl>(*this);
  thread_ = std::thread([this] { run(); });
}

Engine::~Engine() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    tasks_.push_back(Task::control(Task::Kind::CancelAll));
    stop_now_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

uint64_t Engine::submit(GenerationRequest g, EventCallback callback) {
  const int64_t V = model_->info().vocab_size;
  const int64_t P = int64_t(g.prompt.size());
  LINFER_CHECK(P >= 1, "the prompt has no tokens");
  if (g.snapshot) g.max_tokens = g.min_tokens = 0;  // the prompt only
  for (size_t i = 0; i < g.prompt.size(); ++i)
    LINFER_CHECK(g.prompt[i] >= 0 && g.prompt[i] < V, "prompt token {} is {}, outside the vocabulary [0, {})", i,
                 g.prompt[i], V);
  LINFER_CHECK(g.max_tokens >= 1 || g.snapshot, "max_tokens must be at least 1, not {}", g.max_tokens);
  LINFER_CHECK(P <= options_.max_context && g.max_tokens <= options_.max_context - P,
               "this server's context is {} tokens, but the prompt has {} and max_tokens asks for {} more",
               options_.max_context, P, g.max_tokens);
  LINFER_CHECK(g.min_tokens >= 0 && g.min_tokens <= g.max_tokens, "min_tokens must be in [0, max_tokens = {}], not {}",
               g.max_tokens, g.min_tokens);
  LINFER_CHECK(g.n >= 1 && g.n <= options_.max_seqs, "n must be in [1, {}] (this server's --max-seqs), not {}",
               options_.max_seqs, g.n);
  LINFER_CHECK(tok_ || g.stop.empty(), "stop strings need a tokenizer, and this model has none");
  LINFER_CHECK(!g.snapshot || g.n == 1, "a state snapshot is taken of one sequence (n = 1)");
  const size_t kv = StatePool::kv_bytes_for(model_->state_spec(), P + g.max_tokens) * size_t(g.n);
  LINFER_CHECK(kv <= kv_budget_, "this request needs {} bytes of attention KV, more than the server's budget of {}",
               kv, kv_budget_);

  const uint64_t id = next_id_++;
  {
    std::lock_guard lock(mu_);
    if (stopping_) throw ShuttingDown("the server is shutting down");
    if (waiting_ >= options_.max_waiting)
      throw QueueFull(fmt::format("{} requests are already waiting; try again shortly", waiting_.load()));
    ++waiting_;
    ++active_;
    tasks_.push_back({Task::Kind::Submit, id, std::move(g), std::move(callback), std::chrono::steady_clock::now()});
  }
  cv_.notify_all();
  return id;
}

void Engine::cancel(uint64_t id) {
  {
    std::lock_guard lock(mu_);
    tasks_.push_front(Task::control(Task::Kind::Cancel, id));  // ahead of any other task
  }
  cv_.notify_all();
}

bool Engine::idle() const { return active_ == 0; }

void Engine::shutdown(std::chrono::milliseconds grace) {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (active_ > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  {
    std::lock_guard lock(mu_);
    tasks_.push_back(Task::control(Task::Kind::CancelAll));
  }
  cv_.notify_all();
  while (active_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  {
    std::lock_guard lock(mu_);
    stop_now_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Engine::run() {
  for (;;) {
    std::deque<Task> batch;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_now_ || !tasks_.empty() || impl_->has_work(); });
      batch.swap(tasks_);
    }
    // Submits first: a cancel is queued in front of everything, possibly ahead of its own submit.
    for (Task& t : batch)
      if (t.kind == Task::Kind::Submit) impl_->submit(t.id, std::move(t.request), std::move(t.callback), t.arrival);
    for (Task& t : batch) {
      if (t.kind == Task::Kind::Cancel) impl_->cancel(t.id);
      else if (t.kind == Task::Kind::CancelAll) impl_->cancel_all();
    }
    {
      std::lock_guard lock(mu_);
      if (stop_now_ && tasks_.empty()) break;
    }
    if (impl_->has_work()) impl_->iteration();
    impl_->publish_gauges();
  }
  impl_->cancel_all();
  impl_->publish_gauges();
}

}  // namespace linfer
