// One scheduler iteration and the request life cycle on the engine thread:
//   waiting --admit (slots + KV reserved, prefix-cache lookup)--> prefilling (chunks)
//   --prompt done (its state stored in the prefix cache, forks copied for n > 1, first token sampled)-->
//   decoding --finish--> slots released,
//   final state stored in the prefix cache (a later turn that extends it resumes from there). The cache
//   keeps the engine's states in spare slots of the pool, so those copies stay where the model runs.

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "runtime/engine_loop.h"
#include "runtime/scheduler.h"

namespace linfer {

namespace {

double seconds(std::chrono::steady_clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Which finish reason describes a request whose choices ended differently: the least successful.
int severity(FinishReason r) {
  switch (r) {
    case FinishReason::Stop: return 0;
    case FinishReason::Length: return 1;
    case FinishReason::Cancelled: return 2;
    case FinishReason::Error: return 3;
  }
  return 3;
}

// The prefix cache's spare slots: as many whole states as its budget holds, at most kMaxSpareSlots.
int spare_slots(const Engine& e) {
  constexpr size_t kMaxSpareSlots = 1024;
  const size_t budget = e.options().prefix_cache_bytes;
  if (budget == 0) return 0;
  return int(e.slot_bytes() == 0 ? kMaxSpareSlots : std::min(budget / e.slot_bytes(), kMaxSpareSlots));
}

}  // namespace

Engine::Impl::Impl(Engine& engine)
    : e(engine),
      model(*engine.model_),
      vocab(engine.model_->info().vocab_size),
      pool(*engine.model_, engine.options_.max_seqs, engine.kv_budget_, spare_slots(engine)),
      masked(size_t(vocab)) {
  e.cache_.attach_slots(pool.slots(), pool.n_slots(), pool.n_spare(), e.slot_bytes_, e.kv_per_token_);
}

void Engine::Impl::submit(uint64_t id, GenerationRequest g, EventCallback cb, Clock::time_point arrival) {
  auto r = std::make_shared<Request>();
  r->id = id;
  r->g = std::move(g);
  r->callback = std::move(cb);
  r->arrival = arrival;
  waiting.push_back(std::move(r));
}

void Engine::Impl::cancel(uint64_t id) {
  for (auto it = waiting.begin(); it != waiting.end(); ++it) {
    if ((*it)->id != id) continue;
    std::shared_ptr<Request> r = *it;
    waiting.erase(it);
    --e.waiting_;
    r->worst = FinishReason::Cancelled;
    finish_request(*r);
    return;
  }
  for (Seq& s : running) {
    if (s.slot < 0 || s.req->id != id) continue;
    auto step = s.out->finish(FinishReason::Cancelled);
    emit_token(s, -1, step, {});
    finish_seq(s);
  }
}

void Engine::Impl::cancel_all() {
  while (!waiting.empty()) cancel(waiting.front()->id);
  for (Seq& s : running)
    if (s.slot >= 0) cancel(s.req->id);
  std::erase_if(running, [](const Seq& s) { return s.slot < 0; });
}

void Engine::Impl::admit(std::shared_ptr<Request> r, int64_t planned_tokens) {
  const GenerationRequest& g = r->g;
  const int64_t P = int64_t(g.prompt.size());
  const size_t kv_each = pool.kv_bytes_for(P + g.max_tokens);
  r->admitted = Clock::now();
  r->live = g.n;
  e.metrics_.observe_queue_time(seconds(r->admitted - r->arrival));
  for (int c = 0; c < g.n; ++c) {
    Seq s;
    s.req = r;
    s.choice = c;
    s.slot = pool.acquire(kv_each);
    SamplingParams sp = g.sampling;
    sp.seed += uint64_t(c);
    s.sampler.emplace(sp);
    s.out.emplace(e.tok_, StopRules{g.max_tokens, g.min_tokens, e.eos_, g.ignore_eos, g.stop});
    if (c == 0) {
      // The last prompt token is always computed: its logits choose the first generated token.
      if (e.options_.prefix_cache_bytes > 0) {
        try {
          r->cached = e.cache_.restore(g.prompt, P - 1, s.slot);
        } catch (const std::exception& ex) {  // the cache only saves work: compute the whole prompt instead
          fmt::print(stderr, "linfer serve: prefix cache: a cached state was not restored ({})\n", ex.what());
          pool.slots().reset(s.slot);
          r->cached = 0;
        }
      }
      s.tokens.assign(g.prompt.begin(), g.prompt.begin() + r->cached);
      s.prompt_left = P - r->cached;
      s.now = prompt_chunk(r->cached, s.prompt_left, planned_tokens, e.options_.prefix_spacing);
    } else {
      s.idle = true;
    }
    running.push_back(std::move(s));
  }
}

void Engine::Impl::iteration() {
  const auto start = Clock::now();
  std::erase_if(running, [](const Seq& s) { return s.slot < 0; });  // cancelled since the last iteration
  // ---- plan ------------------------------------------------------------------------------------
  std::vector<RunningSeqView> rv;
  rv.reserve(running.size());
  for (const Seq& s : running) rv.push_back({int64_t(s.tokens.size()), s.prompt_left, s.idle});
  std::vector<WaitingRequestView> wv;
  for (const auto& r : waiting) {
    const int64_t P = int64_t(r->g.prompt.size());
    wv.push_back({P, r->g.n, pool.kv_bytes_for(P + r->g.max_tokens) * size_t(r->g.n)});
  }
  const IterationPlan plan = plan_iteration(rv, wv, {pool.free_slots(), pool.kv_free()},
                                            {e.options_.max_batch_tokens, e.options_.prefix_spacing});
  for (size_t i = 0; i < running.size(); ++i) running[i].now = plan.running_tokens[i];
  for (int a = 0; a < plan.admitted; ++a) {
    std::shared_ptr<Request> r = std::move(waiting.front());
    waiting.pop_front();
    --e.waiting_;
    admit(std::move(r), plan.admitted_tokens[size_t(a)]);
  }

  // ---- one forward over every scheduled sequence --------------------------------------------------
  std::vector<int32_t> tokens;
  std::vector<int64_t> offsets{0};
  std::vector<int32_t> slots;
  std::vector<size_t> rows;  // running index of each batch row
  for (size_t i = 0; i < running.size(); ++i) {
    Seq& s = running[i];
    if (s.now == 0) continue;
    if (s.prompt_left > 0) {
      const auto& p = s.req->g.prompt;
      tokens.insert(tokens.end(), p.begin() + long(s.tokens.size()), p.begin() + long(s.tokens.size() + s.now));
    } else {
      tokens.push_back(s.next);
    }
    offsets.push_back(int64_t(tokens.size()));
    slots.push_back(s.slot);
    rows.push_back(i);
  }
  if (rows.empty()) return;
  logits.resize(rows.size() * size_t(vocab));
  const auto forward_start = Clock::now();
  try {
    model.forward_slots(Batch{tokens, offsets}, pool.slots(), slots, logits.data(), Logits::Last);
  } catch (const std::exception& ex) {
    // Nothing here is the clients' fault (their input was checked at submit): fail the batch's
    // requests and keep serving the others.
    const std::string msg = fmt::format("the model failed on this batch: {}", ex.what());
    for (size_t i : rows)
      if (running[i].slot >= 0) fail_request(*running[i].req, msg);
    std::erase_if(running, [](const Seq& s) { return s.slot < 0; });
    return;
  }
  const double forward_s = seconds(Clock::now() - forward_start);

  // ---- outputs -----------------------------------------------------------------------------------
  for (size_t b = 0; b < rows.size(); ++b) {
    Seq& s = running[rows[b]];
    if (s.slot < 0) continue;  // its request failed earlier in this loop
    const float* row = logits.data() + b * size_t(vocab);
    try {
      if (s.prompt_left > 0) {
        const auto& p = s.req->g.prompt;
        s.tokens.insert(s.tokens.end(), p.begin() + long(s.tokens.size()), p.begin() + long(s.tokens.size() + s.now));
        s.prompt_left -= s.now;
        if (s.prompt_left > 0) {
          const int64_t spacing = e.options_.prefix_spacing;
          if (spacing > 0 && int64_t(s.tokens.size()) % spacing == 0) cache_insert(s);
        } else {
          prompt_done(s, row);
        }
      } else {
        s.tokens.push_back(s.next);
        sample_and_emit(s, row);
      }
    } catch (const std::exception& ex) {  // the sampler refuses non-finite logits
      fail_request(*s.req, ex.what());
    }
  }
  std::erase_if(running, [](const Seq& s) { return s.slot < 0; });
  e.metrics_.count_iteration(int64_t(tokens.size()), int64_t(rows.size()), forward_s, seconds(Clock::now() - start));
}

void Engine::Impl::prompt_done(Seq& seq, const float* row) {
  Request& r = *seq.req;
  // The prompt's own state: a later turn whose template renders this turn's answer otherwise than the
  // ids generated (a reasoning model's history drops its thinking) still resumes from here.
  cache_insert(seq);
  if (r.g.snapshot) {
    auto snap = std::make_shared<StateSnapshot>();
    snap->tokens = seq.tokens;
    snap->state = pool.view(seq.slot);
    snap->logits.assign(row, row + vocab);
    seq.out->finish(FinishReason::Stop);
    r.worst = FinishReason::Stop;
    pool.release(seq.slot);
    seq.slot = -1;
    r.live = 0;
    finish_request(r, std::move(snap));
    return;
  }
  std::vector<Seq*> choices{&seq};
  for (Seq& f : running) {  // n > 1: the forks start from a copy of the prompt's state
    if (f.slot < 0 || f.req.get() != &r || !f.idle) continue;
    pool.copy(seq.slot, f.slot);
    f.tokens = seq.tokens;
    f.idle = false;
    choices.push_back(&f);
  }
  for (Seq* c : choices) {
    if (c->slot >= 0) sample_and_emit(*c, row);
  }
}

void Engine::Impl::sample_and_emit(Seq& seq, const float* row) {
  const float* use = row;
  if (seq.out->eos_banned()) {  // min_tokens: EOS cannot be drawn yet
    std::copy(row, row + vocab, masked.begin());
    masked[size_t(seq.out->eos())] = -std::numeric_limits<float>::infinity();
    use = masked.data();
  }
  const int32_t id = seq.sampler->sample(use, vocab);
  std::vector<TokenLogprobs> lp;
  if (seq.req->g.top_logprobs >= 0) lp.push_back(token_logprobs(row, vocab, id, seq.req->g.top_logprobs));
  seq.next = id;
  const auto step = seq.out->push(id);
  emit_token(seq, id, step, std::move(lp));
  if (step.finish) finish_seq(seq);
}

void Engine::Impl::emit_token(Seq& seq, int32_t id, const SequenceOutput::Step& step, std::vector<TokenLogprobs> lp) {
  Request& r = *seq.req;
  const auto t = Clock::now();
  EngineEvent ev;
  ev.kind = EngineEvent::Kind::Token;
  ev.choice = seq.choice;
  if (id >= 0) {
    ev.ids.push_back(id);
    ++r.generated;
    if (!r.has_first_token) {
      r.has_first_token = true;
      r.first_token = t;
      e.metrics_.observe_ttft(seconds(t - r.arrival));
    } else if (seq.out->n_generated() > 1) {
      e.metrics_.observe_itl(seconds(t - seq.last_token));
    }
    seq.last_token = t;
  }
  ev.text = step.text;
  ev.logprobs = std::move(lp);
  ev.finish = step.finish;
  r.callback(ev);
}

void Engine::Impl::cache_insert(const Seq& seq) {
  if (e.options_.prefix_cache_bytes == 0 || seq.tokens.empty()) return;
  try {
    e.cache_.insert_slot(seq.tokens, seq.slot);
  } catch (const std::exception& ex) {  // out of device memory for a cache's rows, say: the request goes on
    fmt::print(stderr, "linfer serve: prefix cache: a state was not stored ({})\n", ex.what());
  }
}

void Engine::Impl::finish_seq(Seq& seq) {
  Request& r = *seq.req;
  const FinishReason why = seq.out->finish_reason().value_or(FinishReason::Cancelled);
  if (!r.worst || severity(why) > severity(*r.worst)) r.worst = why;
  if (why != FinishReason::Error) cache_insert(seq);
  pool.release(seq.slot);
  seq.slot = -1;
  // A fork that never started (its request was cancelled during the prompt) finishes here too.
  if (--r.live == 0) finish_request(r);
}

void Engine::Impl::finish_request(Request& r, std::shared_ptr<StateSnapshot> snapshot) {
  const auto t = Clock::now();
  const FinishReason why = r.worst.value_or(FinishReason::Stop);
  RequestSummary sum;
  sum.prompt_tokens = int64_t(r.g.prompt.size());
  sum.cached_tokens = r.cached;
  sum.generated_tokens = r.generated;
  const bool admitted = r.admitted != Clock::time_point{};
  sum.queue_s = seconds((admitted ? r.admitted : t) - r.arrival);
  sum.ttft_s = r.has_first_token ? seconds(r.first_token - r.arrival) : 0.0;
  sum.total_s = seconds(t - r.arrival);
  sum.outcome = finish_reason_name(why);
  e.metrics_.count_request(sum.outcome);
  e.metrics_.add_tokens(uint64_t(sum.prompt_tokens), uint64_t(sum.cached_tokens), uint64_t(sum.generated_tokens));
  if (r.has_first_token || r.g.snapshot) e.metrics_.observe_e2e(sum.total_s);
  fmt::print(stderr, "linfer serve: {} prompt {} (cached {}) generated {} queue {:.1f} ms ttft {:.1f} ms total {:.1f} ms {}\n",
             r.g.label.empty() ? fmt::format("#{}", r.id) : r.g.label, sum.prompt_tokens, sum.cached_tokens,
             sum.generated_tokens, sum.queue_s * 1e3, sum.ttft_s * 1e3, sum.total_s * 1e3, sum.outcome);
  EngineEvent ev;
  ev.kind = EngineEvent::Kind::Done;
  ev.summary = sum;
  ev.snapshot = std::move(snapshot);
  r.callback(ev);
  --e.active_;
}

void Engine::Impl::fail_request(Request& r, const std::string& message) {
  for (Seq& s : running) {
    if (s.slot < 0 || s.req.get() != &r) continue;
    pool.release(s.slot);
    s.slot = -1;
  }
  r.live = 0;
  fmt::print(stderr, "linfer serve: {} failed: {}\n", r.g.label.empty() ? fmt::format("#{}", r.id) : r.g.label,
             message);
  e.metrics_.count_request("error");
  EngineEvent ev;
  ev.kind = EngineEvent::Kind::Error;
  ev.message = message;
  r.callback(ev);
  --e.active_;
}

void Engine::Impl::publish_gauges() {
  EngineGauges g;
  g.requests_waiting = int64_t(waiting.size());
  const Request* last = nullptr;
  for (const Seq& s : running) {
    if (s.slot < 0) continue;
    ++g.sequences_running;
    if (s.req.get() != last) ++g.requests_running;
    last = s.req.get();
  }
  g.slots_total = pool.n_slots();
  g.slots_in_use = pool.n_slots() - pool.free_slots();
  g.state_pool_bytes_in_use = pool.fixed_bytes_in_use();
  g.state_pool_bytes_total = StatePool::fixed_bytes(model.state_spec()) * size_t(pool.n_slots());
  g.kv_bytes_in_use = pool.kv_bytes_in_use();
  g.kv_bytes_reserved = pool.kv_reserved();
  g.kv_budget_bytes = pool.kv_budget();
  e.metrics_.set_gauges(g);
}

}  // namespace linfer
