// prefill_streamed: the forward runs on the calling thread and reports each finished layer; one
// writer thread turns finished layers into records, so the sinks' time overlaps the next layers.

#include "runtime/prefill_stream.h"

#include <chrono>
#include <condition_variable>
#include <algorithm>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>

#include "linfer/core/error.h"
#include "runtime/prefill_chunks.h"

namespace linfer {

namespace {

using Clock = std::chrono::steady_clock;

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Layers handed from the forward to the writer; finish() ends the queue once the forward is over,
// saying whether it succeeded (a failed forward's streams are left unfinished: no trailer).
class LayerQueue {
 public:
  void push(int layer) {
    {
      std::lock_guard lock(mu_);
      layers_.push_back(layer);
    }
    cv_.notify_one();
  }
  void finish(bool ok) {
    {
      std::lock_guard lock(mu_);
      done_ = true;
      ok_ = ok;
    }
    cv_.notify_one();
  }
  // The next finished layer, or -1 once the forward is over and every layer was taken.
  int pop() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !layers_.empty() || done_; });
    if (layers_.empty()) return -1;
    int l = layers_.front();
    layers_.pop_front();
    return l;
  }
  bool ok() {
    std::lock_guard lock(mu_);
    return ok_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<int> layers_;
  bool done_ = false, ok_ = false;
};

}  // namespace

StreamedPrefillStats prefill_streamed(const Model& model, const Batch& whole, std::span<SequenceState* const> states,
                                      std::span<Sink* const> sinks, const StateIdentity& id,
                                      const StateWriteOptions& options, float* logits, int64_t ubatch) {
  const int n_seqs = whole.n_seqs();
  LINFER_CHECK(n_seqs >= 1 && int(states.size()) == n_seqs && int(sinks.size()) == n_seqs,
               "prefill_streamed: {} sequences, {} states, {} sinks", n_seqs, states.size(), sinks.size());
  LINFER_CHECK(ubatch >= 0, "prefill_streamed: ubatch {} must be >= 0 (0: whole prompts streamed)", ubatch);
  const int64_t vocab = model.info().vocab_size;
  const auto t0 = Clock::now();

  // Each sequence's tokens before its last `ubatch`, in chunks, unstreamed; `batch` is what is left.
  Batch batch = whole;
  std::vector<int32_t> tail;
  if (ubatch > 0 && whole.offsets.back() > ubatch) {
    check_token_ids(whole.tokens, vocab);
    batch.offsets = {0};
    for (int i = 0; i < n_seqs; ++i) {
      LINFER_CHECK(states[i], "prefill_streamed: sequence {} has no state", i);
      const int64_t from = whole.offsets[i], to = whole.offsets[i + 1], head = std::max<int64_t>(0, to - from - ubatch);
      if (head > 0)
        forward_chunked(model, whole.tokens.subspan(size_t(from), size_t(head)), *states[i], nullptr, Logits::None,
                        ubatch);
      tail.insert(tail.end(), whole.tokens.begin() + from + head, whole.tokens.begin() + to);
      batch.offsets.push_back(int64_t(tail.size()));
    }
    batch.tokens = tail;
  }

  // Headers are planned from the states as they are before the forward changes them.
  std::vector<std::unique_ptr<StateWriter>> writers;
  std::vector<uint64_t> start_bytes;
  for (int i = 0; i < n_seqs; ++i) {
    LINFER_CHECK(states[i] && sinks[i], "prefill_streamed: sequence {} has no state or no sink", i);
    int64_t n_after = states[i]->n_tokens() + batch.offsets[i + 1] - batch.offsets[i];
    writers.push_back(std::make_unique<StateWriter>(*sinks[i], *states[i], n_after, id, options,
                                                    logits ? vocab : 0));
    start_bytes.push_back(sinks[i]->n_bytes());
  }

  LayerQueue queue;
  std::exception_ptr write_error;
  std::vector<std::pair<Clock::time_point, Clock::time_point>> busy;  // the writer's working spans
  std::thread writer([&] {
    auto timed = [&](auto&& work) {
      auto a = Clock::now();
      work();
      busy.emplace_back(a, Clock::now());
    };
    try {
      for (int l; (l = queue.pop()) >= 0;)
        timed([&] {
          for (int i = 0; i < n_seqs; ++i) writers[size_t(i)]->write_layer(*states[i], l);
        });
      if (queue.ok())
        timed([&] {
          for (int i = 0; i < n_seqs; ++i)
            writers[size_t(i)]->finish(logits ? std::span<const float>(logits + int64_t(i) * vocab, size_t(vocab))
                                              : std::span<const float>());
        });
    } catch (...) {
      write_error = std::current_exception();
    }
  });

  std::exception_ptr forward_error;
  try {
    model.forward_layerwise(batch, states, logits, logits ? Logits::Last : Logits::None,
                            [&](int layer) { queue.push(layer); });
  } catch (...) {
    forward_error = std::current_exception();
  }
  const auto t_forward = Clock::now();
  queue.finish(!forward_error);
  writer.join();
  const auto t_end = Clock::now();
  if (forward_error) std::rethrow_exception(forward_error);
  if (write_error) std::rethrow_exception(write_error);

  StreamedPrefillStats st;
  st.forward_s = seconds(t_forward - t0);
  st.total_s = seconds(t_end - t0);
  st.tail_s = seconds(t_end - t_forward);
  for (auto [a, b] : busy) {
    st.write_busy_s += seconds(b - a);
    st.write_hidden_s += seconds(std::min(b, t_forward) - std::min(a, t_forward));
  }
  for (int i = 0; i < n_seqs; ++i) st.bytes.push_back(sinks[i]->n_bytes() - start_bytes[size_t(i)]);
  return st;
}

}  // namespace linfer
