// The serving engine on the demo model: concurrent greedy requests (more than the slots, prompts
// longer than the token budget, so admission waits and prompts are chunked) each give exactly the
// ids of a plain one-sequence run (forward of the whole prompt, then one step per token); n > 1 with
// seeds equals n separate requests; stop strings cut the text; min_tokens and ignore_eos; a
// cancelled request frees its slots; the prefix cache resumes a later turn and changes nothing.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>

#include "linfer/model.h"
#include "linfer/tokenizer.h"
#include "runtime/engine.h"
#include "runtime/sampling.h"
#include "runtime/state_pool.h"

using namespace linfer;

namespace {

const std::string kDemo = "models/demo";

std::shared_ptr<const Model> demo() {
  static auto m = Model::load(kDemo);
  return m;
}
const Tokenizer& demo_tok() {
  static auto t = Tokenizer::load(kDemo);
  return *t;
}

// The reference: one sequence alone, as `linfer generate` runs it.
std::vector<int32_t> reference(const Model& m, const std::vector<int32_t>& prompt, int n, SamplingParams sp,
                               int32_t eos = -1) {
  const int64_t V = m.info().vocab_size;
  SequenceState s(m.state_spec());
  SequenceState* p = &s;
  std::vector<float> row(V);
  m.forward(Batch::single(prompt), {&p, 1}, row.data(), Logits::Last);
  Sampler sampler(sp);
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    int32_t next = sampler.sample(row.data(), V);
    out.push_back(next);
    if (next == eos) break;
    m.forward(Batch::single({&next, 1}), {&p, 1}, row.data(), Logits::Last);
  }
  return out;
}

// Collects one request's events; wait() blocks until Done or Error.
struct Collector {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::vector<int32_t>> ids;
  std::vector<std::string> text;
  std::vector<std::string> finish;
  RequestSummary summary;
  std::string error;
  bool done = false;
  int events = 0;

  explicit Collector(int n = 1) : ids(n), text(n), finish(n) {}
  EventCallback callback() {
    return [this](const EngineEvent& e) {
      std::lock_guard lock(mu);
      ++events;
      if (e.kind == EngineEvent::Kind::Token) {
        auto& v = ids[size_t(e.choice)];
        v.insert(v.end(), e.ids.begin(), e.ids.end());
        text[size_t(e.choice)] += e.text;
        if (e.finish) finish[size_t(e.choice)] = finish_reason_name(*e.finish);
        return;
      }
      if (e.kind == EngineEvent::Kind::Done) summary = e.summary;
      else error = e.message;
      done = true;
      cv.notify_all();
    };
  }
  void wait() {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return done; });
  }
};

std::vector<int32_t> random_prompt(std::mt19937& rng, int len, int64_t vocab) {
  std::vector<int32_t> p;
  for (int i = 0; i < len; ++i) p.push_back(int32_t(rng() % uint32_t(vocab)));
  return p;
}

SamplingParams greedy() {
  SamplingParams sp;
  sp.greedy = true;
  return sp;
}

// One greedy request (EOS ignored), answered to its end.
struct Answer {
  std::vector<int32_t> ids;
  RequestSummary summary;
};
Answer answer_greedy(Engine& engine, const std::vector<int32_t>& prompt, int64_t max_tokens) {
  Collector c;
  engine.submit({.prompt = prompt, .max_tokens = max_tokens, .ignore_eos = true, .sampling = greedy()}, c.callback());
  c.wait();
  return {c.ids[0], c.summary};
}

}  // namespace

TEST(Engine, ConcurrentGreedyEqualsOneAtATime) {
  auto m = demo();
  Engine engine(m, nullptr, {.max_seqs = 4, .max_batch_tokens = 24, .max_context = 512, .prefix_cache_bytes = 0});
  std::mt19937 rng(11);
  const int N = 12;
  std::vector<std::vector<int32_t>> prompts;
  std::vector<int> lens;
  std::vector<std::unique_ptr<Collector>> cs;
  for (int i = 0; i < N; ++i) {
    prompts.push_back(random_prompt(rng, 1 + int(rng() % 60), m->info().vocab_size));
    lens.push_back(1 + int(rng() % 12));
    cs.push_back(std::make_unique<Collector>());
    engine.submit({.prompt = prompts.back(), .max_tokens = lens.back(), .ignore_eos = true, .sampling = greedy()},
                  cs.back()->callback());
  }
  for (int i = 0; i < N; ++i) {
    cs[size_t(i)]->wait();
    EXPECT_EQ(cs[size_t(i)]->error, "");
    EXPECT_EQ(cs[size_t(i)]->ids[0], reference(*m, prompts[size_t(i)], lens[size_t(i)], greedy())) << "request " << i;
    EXPECT_EQ(cs[size_t(i)]->finish[0], "length");
    EXPECT_EQ(cs[size_t(i)]->summary.generated_tokens, lens[size_t(i)]);
    EXPECT_EQ(cs[size_t(i)]->summary.prompt_tokens, int64_t(prompts[size_t(i)].size()));
  }
  EXPECT_EQ(engine.metrics().requests("length"), uint64_t(N));
  // Every iteration computed at most the budget: the batched tokens add up to prompts + decodes.
  int64_t expected = 0;
  for (int i = 0; i < N; ++i) expected += int64_t(prompts[size_t(i)].size()) + lens[size_t(i)] - 1;
  EXPECT_NE(engine.metrics().prometheus({}).find(fmt::format("linfer_batch_tokens_total {}", expected)),
            std::string::npos);
}

TEST(Engine, NChoicesEqualSeparateSeededRequests) {
  auto m = demo();
  Engine engine(m, &demo_tok(), {.max_seqs = 4, .max_batch_tokens = 64, .max_context = 512});
  const auto prompt = demo_tok().encode("ROMEO:");
  SamplingParams sp{.temperature = 0.9f, .top_k = 20, .top_p = 0.9f, .seed = 5};
  Collector c(3);
  engine.submit({.prompt = prompt, .max_tokens = 10, .ignore_eos = true, .sampling = sp, .n = 3}, c.callback());
  c.wait();
  EXPECT_EQ(c.summary.generated_tokens, 30);
  for (int i = 0; i < 3; ++i) {
    SamplingParams si = sp;
    si.seed = sp.seed + uint64_t(i);
    EXPECT_EQ(c.ids[size_t(i)], reference(*m, prompt, 10, si)) << "choice " << i;
    EXPECT_EQ(c.text[size_t(i)], demo_tok().decode(c.ids[size_t(i)], true));
  }
  EXPECT_NE(c.ids[0], c.ids[1]);  // different seeds draw differently (10 tokens at T = 0.9)
}

TEST(Engine, StopStringsCutTheText) {
  auto m = demo();
  const Tokenizer& tok = demo_tok();
  Engine engine(m, &tok, {.max_seqs = 2, .max_batch_tokens = 64, .max_context = 512});
  const auto prompt = tok.encode("ROMEO:\nWhat say you, my lord?\n\nJULIET:");
  const auto ids = reference(*m, prompt, 40, greedy());
  const std::string full = tok.decode(ids, true);
  ASSERT_GT(full.size(), 20u);
  // A stop string from the middle of the greedy text: the output is the text before its first occurrence.
  const std::string stop = full.substr(full.size() / 2, 3);
  Collector c;
  engine.submit({.prompt = prompt, .max_tokens = 40, .ignore_eos = true, .stop = {"@@never@@", stop},
                 .sampling = greedy()}, c.callback());
  c.wait();
  EXPECT_EQ(c.text[0], full.substr(0, full.find(stop)));
  EXPECT_EQ(c.finish[0], "stop");
  EXPECT_LT(c.ids[0].size(), ids.size());
  EXPECT_EQ(c.ids[0], std::vector<int32_t>(ids.begin(), ids.begin() + long(c.ids[0].size())));
}

TEST(Engine, MinTokensMasksEosAndIgnoreEosContinues) {
  // The demo model practically never says EOS; a golden fixture (random weights, vocabulary 256) does.
  auto m = Model::load("tests/golden/mamba2_b");
  Engine engine(m, nullptr, {.max_seqs = 2, .max_batch_tokens = 64, .max_context = 512});
  const int32_t eos = engine.eos_id();
  ASSERT_GE(eos, 0);
  // A prompt whose greedy continuation reaches EOS after k tokens.
  std::mt19937 rng(9);
  std::vector<int32_t> prompt;
  size_t k = 0;
  for (int trial = 0; trial < 100 && k == 0; ++trial) {
    prompt = random_prompt(rng, 1 + int(rng() % 30), m->info().vocab_size);
    auto r = reference(*m, prompt, 60, greedy(), eos);
    if (r.back() == eos) k = r.size();
  }
  ASSERT_GT(k, 0u) << "no prompt found whose greedy continuation ends in EOS within 60 tokens";
  Collector plain, min, ignore;
  engine.submit({.prompt = prompt, .max_tokens = 60, .sampling = greedy()}, plain.callback());
  engine.submit({.prompt = prompt, .max_tokens = 60, .min_tokens = int64_t(k) + 3, .sampling = greedy()}, min.callback());
  engine.submit({.prompt = prompt, .max_tokens = int64_t(k) + 2, .ignore_eos = true, .sampling = greedy()},
                ignore.callback());
  plain.wait();
  min.wait();
  ignore.wait();
  EXPECT_EQ(plain.ids[0].size(), k);  // EOS is generated, counted, and ends it
  EXPECT_EQ(plain.ids[0].back(), eos);
  EXPECT_EQ(plain.finish[0], "stop");
  ASSERT_GE(min.ids[0].size(), k + 3);
  for (size_t i = 0; i < k + 3; ++i) EXPECT_NE(min.ids[0][i], eos) << i;
  // Before the masked position the output is the plain one; at it, the runner-up token.
  EXPECT_EQ(std::vector<int32_t>(min.ids[0].begin(), min.ids[0].begin() + long(k) - 1),
            std::vector<int32_t>(plain.ids[0].begin(), plain.ids[0].end() - 1));
  EXPECT_EQ(ignore.ids[0].size(), k + 2);
  EXPECT_EQ(ignore.ids[0][k - 1], eos);
  EXPECT_EQ(ignore.finish[0], "length");
}

TEST(Engine, CancelFreesTheSlots) {
  auto m = demo();
  Engine engine(m, nullptr, {.max_seqs = 2, .max_batch_tokens = 16, .max_context = 4096});
  std::mt19937 rng(2);
  Collector c(2);
  std::atomic<uint64_t> id{0};
  std::atomic<bool> cancelled{false};
  auto inner = c.callback();
  // Cancel from inside the callback at the second token: the slots must be free afterwards.
  auto cb = [&](const EngineEvent& e) {
    inner(e);
    if (e.kind == EngineEvent::Kind::Token && e.choice == 0 && !cancelled && c.ids[0].size() >= 2) {
      while (id == 0) std::this_thread::yield();  // tokens may come before submit() has returned the id
      cancelled = true;
      engine.cancel(id);
    }
  };
  id = engine.submit({.prompt = random_prompt(rng, 40, m->info().vocab_size), .max_tokens = 3000,
                      .ignore_eos = true, .sampling = greedy(), .n = 2}, cb);
  c.wait();
  EXPECT_EQ(c.summary.outcome, "cancelled");
  EXPECT_EQ(c.finish[0], "cancelled");
  EXPECT_EQ(c.finish[1], "cancelled");
  EXPECT_LT(c.ids[0].size(), 10u);
  // The engine is idle and its pool empty (gauges are published after each iteration).
  for (int i = 0; i < 200 && engine.metrics().gauges().slots_in_use != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(engine.metrics().gauges().slots_in_use, 0);
  EXPECT_TRUE(engine.idle());
  // A cancelled request leaves nothing behind that a later one could trip over.
  Collector after;
  const auto prompt = random_prompt(rng, 30, m->info().vocab_size);
  engine.submit({.prompt = prompt, .max_tokens = 6, .ignore_eos = true, .sampling = greedy()}, after.callback());
  after.wait();
  EXPECT_EQ(after.error, "");
  EXPECT_EQ(after.ids[0], reference(*m, prompt, 6, greedy()));
  // Cancelling a waiting request: both slots busy with one request, the next waits, is cancelled.
  Collector busy(2), queued;
  const uint64_t b = engine.submit({.prompt = {1, 2, 3}, .max_tokens = 3000, .ignore_eos = true,
                                    .sampling = greedy(), .n = 2}, busy.callback());
  const uint64_t q = engine.submit({.prompt = {4, 5}, .max_tokens = 5, .sampling = greedy()}, queued.callback());
  engine.cancel(q);
  queued.wait();
  EXPECT_EQ(queued.summary.outcome, "cancelled");
  EXPECT_EQ(queued.summary.generated_tokens, 0);
  engine.cancel(b);
  busy.wait();
}

TEST(Engine, ACancelledSlotGoesToTheNextRequestInTheSameIteration) {
  auto m = demo();
  Engine engine(m, nullptr, {.max_seqs = 1, .max_batch_tokens = 64, .max_context = 4096});
  std::mt19937 rng(8);
  const auto prompt = random_prompt(rng, 20, m->info().vocab_size);
  Collector a, b;
  std::atomic<uint64_t> id{0};
  std::atomic<bool> submitted_b{false}, cancelled{false};
  auto inner = a.callback();
  // At A's third token: queue B, then cancel A. Both tasks are taken at the start of the next
  // iteration, which frees A's slot and admits B into it.
  id = engine.submit({.prompt = {1, 2, 3}, .max_tokens = 3000, .ignore_eos = true, .sampling = greedy()},
                     [&](const EngineEvent& e) {
                       inner(e);
                       if (e.kind == EngineEvent::Kind::Token && !cancelled && a.ids[0].size() >= 3) {
                         // A's tokens may come before submit() has returned its id: wait for it (the engine
                         // thread runs callbacks outside its locks), or the cancel would name no request.
                         while (id == 0) std::this_thread::yield();
                         cancelled = true;
                         engine.submit({.prompt = prompt, .max_tokens = 5, .ignore_eos = true, .sampling = greedy()},
                                       b.callback());
                         submitted_b = true;
                         engine.cancel(id);
                       }
                     });
  a.wait();
  b.wait();
  EXPECT_EQ(a.summary.outcome, "cancelled");
  EXPECT_EQ(b.error, "");
  EXPECT_EQ(b.ids[0], reference(*m, prompt, 5, greedy()));
  EXPECT_EQ(engine.metrics().requests("error"), 0u);
}

TEST(Engine, PrefixCacheResumesALaterTurnAndChangesNothing) {  // from the answer's end or the prompt's
  auto m = demo();
  Engine engine(m, nullptr, {.max_seqs = 2, .max_batch_tokens = 64, .max_context = 1024, .prefix_spacing = 32});
  std::mt19937 rng(4);
  auto turn1 = random_prompt(rng, 50, m->info().vocab_size);
  const Answer a = answer_greedy(engine, turn1, 8);
  EXPECT_EQ(a.summary.cached_tokens, 0);
  // Turn 2: the whole first turn (prompt + answer) plus new tokens.
  auto turn2 = turn1;
  turn2.insert(turn2.end(), a.ids.begin(), a.ids.end());
  auto more = random_prompt(rng, 20, m->info().vocab_size);
  turn2.insert(turn2.end(), more.begin(), more.end());
  const Answer b = answer_greedy(engine, turn2, 8);
  // The state after turn 1 holds its prompt and all generated tokens but the last (never fed).
  EXPECT_EQ(b.summary.cached_tokens, int64_t(turn1.size() + a.ids.size() - 1));
  EXPECT_EQ(b.ids, reference(*m, turn2, 8, greedy()));
  // A chat template may render the previous answer otherwise than the ids generated (a reasoning model's
  // history drops its thinking): such a second turn still finds the first turn's whole prompt.
  auto rewritten = turn1;
  for (int32_t id : a.ids) rewritten.push_back((id + 1) % int32_t(m->info().vocab_size));  // not what was generated
  rewritten.push_back(9);
  const Answer c = answer_greedy(engine, rewritten, 5);
  EXPECT_EQ(c.summary.cached_tokens, int64_t(turn1.size()));
  EXPECT_EQ(c.ids, reference(*m, rewritten, 5, greedy()));
  const auto st = engine.prefix_cache().stats();
  EXPECT_GE(st.hits, 2u);
  EXPECT_GE(st.slot_entries, 1u);  // the engine's states stay in spare slots of its pool
}

TEST(Engine, APrefixCacheOfTwoSlotsEvictsAndStillChangesNothing) {
  // Room for two states: six conversations of two turns each, interleaved, keep evicting one another.
  auto m = demo();
  const size_t slot = StatePool::fixed_bytes(m->state_spec());
  Engine engine(m, nullptr, {.max_seqs = 2, .max_batch_tokens = 64, .max_context = 1024,
                             .prefix_cache_bytes = 2 * slot + 4096, .prefix_spacing = 0});
  EXPECT_EQ(engine.prefix_cache().stats().slots, 2u);
  std::mt19937 rng(5);
  std::vector<std::vector<int32_t>> turn1(6);
  std::vector<Collector> first(6);
  for (size_t i = 0; i < 6; ++i) {
    turn1[i] = random_prompt(rng, 10 + int(i), m->info().vocab_size);
    engine.submit({.prompt = turn1[i], .max_tokens = 3, .ignore_eos = true, .sampling = greedy()}, first[i].callback());
  }
  for (auto& c : first) c.wait();
  int64_t cached = 0;
  for (size_t i = 6; i-- > 0;) {  // the last to finish first: its state is still cached
    auto turn2 = turn1[i];
    turn2.insert(turn2.end(), first[i].ids[0].begin(), first[i].ids[0].end());
    turn2.push_back(7);
    const Answer c = answer_greedy(engine, turn2, 4);
    EXPECT_EQ(c.ids, reference(*m, turn2, 4, greedy())) << "conversation " << i;
    cached += c.summary.cached_tokens;
  }
  const auto st = engine.prefix_cache().stats();
  EXPECT_LE(st.slot_entries, 2u);
  EXPECT_GE(st.evictions, 4u);
  EXPECT_GT(cached, 0);
}

TEST(Engine, RefusesBadRequestsAndAFullQueue) {
  auto m = demo();
  Engine engine(m, nullptr, {.max_seqs = 1, .max_batch_tokens = 8, .max_context = 4096, .max_waiting = 1});
  auto noop = [](const EngineEvent&) {};
  EXPECT_THROW(engine.submit({.prompt = {}}, noop), Error);
  EXPECT_THROW(engine.submit({.prompt = {int32_t(m->info().vocab_size)}}, noop), Error);
  EXPECT_THROW(engine.submit({.prompt = {1}, .max_tokens = 4096}, noop), Error);  // 1 + 4096 > 4096
  EXPECT_THROW(engine.submit({.prompt = {1}, .max_tokens = 0}, noop), Error);
  EXPECT_THROW(engine.submit({.prompt = {1}, .max_tokens = INT64_MAX}, noop), Error);
  EXPECT_THROW(engine.submit({.prompt = {1}, .max_tokens = 4, .min_tokens = 5}, noop), Error);
  EXPECT_THROW(engine.submit({.prompt = {1}, .max_tokens = 4, .stop = {"x"}}, noop), Error);  // no tokenizer
  EXPECT_THROW(engine.submit({.prompt = {1}, .max_tokens = 4, .n = 2}, noop), Error);         // > max_seqs
  // The single slot busy, one waiting: the next is refused with QueueFull.
  Collector a, b;
  const uint64_t ia = engine.submit({.prompt = {1, 2}, .max_tokens = 4000, .ignore_eos = true, .sampling = greedy()},
                                    a.callback());
  // Let `a` be admitted, so exactly one request can wait.
  for (int i = 0; i < 400 && engine.metrics().gauges().slots_in_use == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const uint64_t ib = engine.submit({.prompt = {3}, .max_tokens = 2, .sampling = greedy()}, b.callback());
  EXPECT_THROW(engine.submit({.prompt = {4}, .max_tokens = 2}, noop), QueueFull);
  engine.cancel(ia);
  engine.cancel(ib);
  a.wait();
  b.wait();
}
