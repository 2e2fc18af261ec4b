// prefill_streamed against an independent reference: a plain Model::forward over the same tokens,
// then write_state on the finished state. Each sink must receive exactly those bytes (f32 / bf16,
// with and without zstd; from an empty state and from one holding a prefix; a packed batch) on the
// demo model and the golden fixtures of each architecture. Also: a receiver reading a pipe while the
// sender writes gets the same state; a slow sink changes nothing; a ring tensor written while the
// forward has not advanced n_tokens yet; a sink that fails; the reader stops at the first corrupted
// record without waiting for the rest of the stream.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <random>
#include <thread>

#include "linfer/core/error.h"
#include "runtime/prefill_chunks.h"
#include "runtime/prefill_stream.h"

using namespace linfer;

namespace {

const std::string kSource = LINFER_SOURCE_DIR;

std::vector<int32_t> random_ids(int64_t n, int64_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> d(0, int32_t(vocab - 1));
  std::vector<int32_t> v(static_cast<size_t>(n));
  for (auto& x : v) x = d(rng);
  return v;
}

// The reference: forward, then serialize the finished state.
std::vector<uint8_t> saved_after_forward(const Model& m, SequenceState s, std::span<const int32_t> ids,
                                         const StateIdentity& id, const StateWriteOptions& o, bool logits) {
  std::vector<float> lg(size_t(m.info().vocab_size));
  SequenceState* st[] = {&s};
  m.forward(Batch::single(ids), st, logits ? lg.data() : nullptr, logits ? Logits::Last : Logits::None);
  BufferSink b;
  write_state(b, s, id, o, logits ? std::span<const float>(lg) : std::span<const float>());
  return b.take();
}

// Sleeps before every write, in proportion to its size (a slow network).
class SlowSink : public Sink {
 public:
  explicit SlowSink(double bytes_per_s) : rate_(bytes_per_s) {}
  BufferSink inner;

 protected:
  void put(const void* data, size_t n) override {
    std::this_thread::sleep_for(std::chrono::microseconds(50 + int64_t(1e6 * double(n) / rate_)));
    inner.write(data, n);
  }

 private:
  double rate_;
};

struct Streamed {
  std::vector<uint8_t> bytes;
  SequenceState state;
  std::vector<float> logits;
  StreamedPrefillStats stats;
};

Streamed stream(const Model& m, SequenceState s, std::span<const int32_t> ids, const StateIdentity& id,
                const StateWriteOptions& o, bool logits) {
  Streamed r;
  r.logits.resize(size_t(m.info().vocab_size));
  BufferSink b;
  SequenceState* st[] = {&s};
  Sink* sinks[] = {&b};
  r.stats = prefill_streamed(m, Batch::single(ids), st, sinks, id, o, logits ? r.logits.data() : nullptr);
  r.bytes = b.take();
  r.state = std::move(s);
  return r;
}

std::vector<std::string> model_dirs() {
  return {kSource + "/models/demo", kSource + "/tests/golden/qwen3_next_a", kSource + "/tests/golden/mamba2_a"};
}

// Prompts packed into one batch, each sequence with its own fresh state and sink.
struct Packed {
  std::vector<int32_t> tokens;
  Batch batch{{}, {0}};
  std::vector<SequenceState> states;
  std::vector<BufferSink> sinks;
  std::vector<SequenceState*> state_ptrs;
  std::vector<Sink*> sink_ptrs;

  Packed(const Model& m, const std::vector<std::vector<int32_t>>& prompts)
      : states(prompts.size(), SequenceState(m.state_spec())), sinks(prompts.size()) {
    for (const auto& p : prompts) {
      tokens.insert(tokens.end(), p.begin(), p.end());
      batch.offsets.push_back(int64_t(tokens.size()));
    }
    batch.tokens = tokens;
    for (size_t i = 0; i < prompts.size(); ++i) state_ptrs.push_back(&states[i]), sink_ptrs.push_back(&sinks[i]);
  }
};

}  // namespace

TEST(PrefillStream, BytesEqualSaveAfterPrefillOnEveryArchitecture) {
  for (const auto& dir : model_dirs()) {
    auto m = Model::load(dir);
    SCOPED_TRACE(m->info().architecture);
    const StateIdentity id{m->fingerprint(), "tok"};
    const auto ids = random_ids(300, m->info().vocab_size, 1);
    for (DType dt : {DType::F32, DType::BF16})
      for (bool z : {false, true})
        for (bool logits : {false, true}) {
          SCOPED_TRACE(fmt::format("{} zstd={} logits={}", dtype_name(dt), z, logits));
          StateWriteOptions o{.dtype = dt, .compress = z};
          SequenceState fresh(m->state_spec());
          auto want = saved_after_forward(*m, fresh, ids, id, o, logits);
          Streamed got = stream(*m, fresh, ids, id, o, logits);
          EXPECT_EQ(got.bytes, want);
          EXPECT_EQ(got.stats.bytes.at(0), want.size());
        }
  }
}

TEST(PrefillStream, ContinuesAStateThatHoldsAPrefix) {
  // The header's rows for the attention cache must count the prefix's rows plus the new ones.
  for (const auto& dir : model_dirs()) {
    auto m = Model::load(dir);
    SCOPED_TRACE(m->info().architecture);
    const StateIdentity id{m->fingerprint(), ""};
    const auto ids = random_ids(257, m->info().vocab_size, 2);
    SequenceState s(m->state_spec());
    SequenceState* st[] = {&s};
    m->forward(Batch::single(std::span(ids).first(100)), st, nullptr, Logits::None);
    auto rest = std::span(ids).subspan(100);
    auto want = saved_after_forward(*m, s, rest, id, {}, true);
    Streamed got = stream(*m, s, rest, id, {}, true);
    EXPECT_EQ(got.bytes, want);
    EXPECT_EQ(got.state.n_tokens(), 257);
  }
}

// With a ubatch, a prompt's tokens before its last `ubatch` run first in chunks (forward_chunked), then the
// last `ubatch` in the streamed layerwise pass: the stream must be exactly the state those two steps give
// (forward_chunked's own test bounds how far chunks move it from one pass), packed sequences each their own.
TEST(PrefillStream, UbatchStreamsTheStateOfChunksThenTheLastUbatch) {
  for (const auto& dir : model_dirs()) {
    auto m = Model::load(dir);
    SCOPED_TRACE(m->info().architecture);
    const StateIdentity id{m->fingerprint(), ""};
    const int64_t V = m->info().vocab_size;
    const std::vector<std::vector<int32_t>> prompts = {random_ids(300, V, 11), random_ids(40, V, 12),
                                                       random_ids(129, V, 13)};
    for (int64_t ubatch : {7, 64}) {
      SCOPED_TRACE(fmt::format("ubatch {}", ubatch));
      Packed run(*m, prompts);
      auto& states = run.states;
      std::vector<float> logits(prompts.size() * size_t(V));
      prefill_streamed(*m, run.batch, run.state_ptrs, run.sink_ptrs, id, {}, logits.data(), ubatch);
      // Packed and single forwards of the last ubatch agree to rounding: the bytes are checked against the
      // state this call produced, the state against the two steps run alone.
      for (size_t i = 0; i < prompts.size(); ++i) {
        SCOPED_TRACE(fmt::format("sequence {}", i));
        const auto lg = std::span<const float>(logits).subspan(i * size_t(V), size_t(V));
        BufferSink again;
        write_state(again, states[i], id, {}, lg);
        EXPECT_EQ(run.sinks[i].bytes(), again.bytes());
        const auto ids = std::span<const int32_t>(prompts[i]);
        const size_t head = ids.size() > size_t(ubatch) ? ids.size() - size_t(ubatch) : 0;
        SequenceState ref(m->state_spec());
        if (head > 0) forward_chunked(*m, ids.first(head), ref, nullptr, Logits::None, ubatch);
        std::vector<float> ref_logits(static_cast<size_t>(V));
        SequenceState* rp[] = {&ref};
        m->forward(Batch::single(ids.subspan(head)), rp, ref_logits.data(), Logits::Last);
        ASSERT_EQ(states[i].n_tokens(), int64_t(ids.size()));
        for (size_t t = 0; t < ref.n_tensors(); ++t) {
          ASSERT_EQ(states[i].rows(t), ref.rows(t));
          const int64_t n = ref.rows(t) * ref.row_elems(t);
          for (int64_t k = 0; k < n; ++k)
            ASSERT_NEAR(states[i].data(t)[k], ref.data(t)[k], 1e-4 + 1e-4 * std::abs(ref.data(t)[k])) << "tensor " << t;
        }
        for (int64_t k = 0; k < V; ++k)
          ASSERT_NEAR(lg[size_t(k)], ref_logits[size_t(k)], 1e-3 + 1e-4 * std::abs(ref_logits[size_t(k)]));
      }
    }
  }
}

TEST(PrefillStream, UbatchRefusesABadIdBeforeAnyStateChanges) {
  auto m = Model::load(kSource + "/models/demo");
  std::vector<int32_t> ids = random_ids(200, m->info().vocab_size, 14);
  ids.push_back(int32_t(m->info().vocab_size));  // out of the vocabulary, in the streamed tail
  SequenceState s(m->state_spec());
  BufferSink b;
  SequenceState* st[] = {&s};
  Sink* sinks[] = {&b};
  EXPECT_THROW(prefill_streamed(*m, Batch::single(ids), st, sinks, {m->fingerprint(), ""}, {}, nullptr, 64), Error);
  EXPECT_EQ(s.n_tokens(), 0);
  EXPECT_EQ(b.bytes().size(), 0u);
}

TEST(PrefillStream, PackedBatchGivesEachSequenceItsOwnStream) {
  auto m = Model::load(kSource + "/models/demo");
  const StateIdentity id{m->fingerprint(), ""};
  const int64_t V = m->info().vocab_size;
  std::vector<std::vector<int32_t>> prompts = {random_ids(65, V, 3), random_ids(1, V, 4), random_ids(200, V, 5)};
  Packed run(*m, prompts);
  auto& states = run.states;
  auto& sinks = run.sinks;
  std::vector<float> logits(prompts.size() * size_t(V));
  prefill_streamed(*m, run.batch, run.state_ptrs, run.sink_ptrs, id, {.dtype = DType::BF16, .compress = true},
                   logits.data());
  for (size_t i = 0; i < prompts.size(); ++i) {
    SequenceState fresh(m->state_spec());
    // Packed and single forwards agree to rounding, not bit for bit: compare decoded states instead of
    // bytes, and bytes against the state this very call produced.
    BufferSink again;
    write_state(again, states[i], id, {.dtype = DType::BF16, .compress = true},
                std::span<const float>(logits).subspan(i * size_t(V), size_t(V)));
    EXPECT_EQ(sinks[i].bytes(), again.bytes()) << "sequence " << i;
    BufferSource src(sinks[i].bytes());
    StateReader r(src);
    SequenceState back = r.read(m->state_spec(), id);
    EXPECT_EQ(back.n_tokens(), int64_t(prompts[i].size()));
    auto single = saved_after_forward(*m, fresh, prompts[i], id, {.dtype = DType::BF16, .compress = true}, true);
    BufferSource ssrc(single);
    StateReader sr(ssrc);
    SequenceState alone = sr.read(m->state_spec(), id);
    for (size_t t = 0; t < back.n_tensors(); ++t) {
      ASSERT_EQ(back.rows(t), alone.rows(t));
      int64_t n = back.rows(t) * back.row_elems(t);
      for (int64_t k = 0; k < n; ++k) ASSERT_NEAR(back.data(t)[k], alone.data(t)[k], 2e-2 + 2e-2 * std::abs(alone.data(t)[k]));
    }
  }
}

TEST(PrefillStream, ReceiverOnAPipeGetsTheSameState) {
  auto m = Model::load(kSource + "/models/demo");
  const StateIdentity id{m->fingerprint(), ""};
  const auto ids = random_ids(1000, m->info().vocab_size, 6);
  SequenceState fresh(m->state_spec());
  auto want = saved_after_forward(*m, fresh, ids, id, {}, true);
  ASSERT_GT(want.size(), 64u << 10);  // more than a pipe holds: the sender blocks until the receiver reads

  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ::fcntl(fds[1], F_SETPIPE_SZ, 4096);
  SequenceState sent(m->state_spec());
  std::vector<float> sent_logits(size_t(m->info().vocab_size));
  std::thread sender([&] {
    FdSink out(fds[1], "pipe");
    SequenceState* st[] = {&sent};
    Sink* sinks[] = {&out};
    prefill_streamed(*m, Batch::single(ids), st, sinks, id, {}, sent_logits.data());
    ::close(fds[1]);
  });
  FdSource in(fds[0], "pipe");
  StateReader r(in);
  SequenceState got = r.read(m->state_spec(), id);
  sender.join();
  ::close(fds[0]);
  EXPECT_EQ(in.n_bytes(), want.size());
  EXPECT_EQ(r.logits(), sent_logits);
  BufferSink again;
  write_state(again, got, id, {}, r.logits());
  EXPECT_EQ(again.bytes(), want);
}

TEST(PrefillStream, ASlowSinkChangesNothing) {
  auto m = Model::load(kSource + "/models/demo");
  const StateIdentity id{m->fingerprint(), ""};
  const auto ids = random_ids(500, m->info().vocab_size, 7);
  SequenceState fresh(m->state_spec());
  for (bool z : {false, true}) {
    StateWriteOptions o{.compress = z};
    auto want = saved_after_forward(*m, fresh, ids, id, o, true);
    SlowSink slow(20e6);  // 20 MB/s and 50 us per write
    SequenceState s = fresh;
    std::vector<float> logits(size_t(m->info().vocab_size));
    SequenceState* st[] = {&s};
    Sink* sinks[] = {&slow};
    auto stats = prefill_streamed(*m, Batch::single(ids), st, sinks, id, o, logits.data());
    EXPECT_EQ(slow.inner.bytes(), want);
    EXPECT_GE(stats.write_busy_s, 1e-6 * double(want.size()) / 20.0);
  }
}

TEST(PrefillStream, AFailingSinkIsReportedAfterTheForward) {
  struct Broken : Sink {
    void put(const void*, size_t) override { fail("peer went away"); }
  } broken;
  auto m = Model::load(kSource + "/models/demo");
  const auto ids = random_ids(64, m->info().vocab_size, 8);
  SequenceState s(m->state_spec());
  SequenceState* st[] = {&s};
  Sink* sinks[] = {&broken};
  try {
    prefill_streamed(*m, Batch::single(ids), st, sinks, {m->fingerprint(), ""}, {}, nullptr);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("peer went away"), std::string::npos) << e.what();
  }
  EXPECT_EQ(s.n_tokens(), 64);  // the forward itself ran to its end
}

TEST(PrefillStream, RefusedForwardSendsNothing) {
  auto m = Model::load(kSource + "/models/demo");
  std::vector<int32_t> ids = {1, 2, int32_t(m->info().vocab_size)};  // out of the vocabulary
  SequenceState s(m->state_spec());
  BufferSink b;
  SequenceState* st[] = {&s};
  Sink* sinks[] = {&b};
  EXPECT_THROW(prefill_streamed(*m, Batch::single(ids), st, sinks, {m->fingerprint(), ""}, {}, nullptr), Error);
  EXPECT_EQ(b.bytes().size(), 0u);
}

namespace {

// A model whose forward follows the layerwise contract literally: every layer's tensors are written
// over all tokens, then on_layer(l), and n_tokens advances only after the last layer. Its layers
// include a ring (sliding-window KV), which no loaded architecture has yet; each layer sleeps a
// little so the writer really runs while later layers are still to come.
class ScriptedModel : public Model {
 public:
  ScriptedModel() {
    spec_.tensors.push_back({0, "rec.S", StateKind::Fixed, {3, 4}, 0, "[3, 4]"});
    spec_.tensors.push_back({1, "swa.k", StateKind::Ring, {2}, 5, "[T, 2] ring"});
    spec_.tensors.push_back({2, "attn.kv", StateKind::Growing, {3}, 0, "[T, 3]"});
    info_.vocab_size = 7;
    info_.layers = {"rec", "swa", "attn"};
  }
  const ModelInfo& info() const override { return info_; }
  const StateSpec& state_spec() const override { return spec_; }
  const std::string& fingerprint() const override { return fp_; }
  const std::string& dir() const override { return fp_; }
  void forward(const Batch& batch, std::span<SequenceState* const> states, float* logits,
               Logits mode) const override {
    forward_layerwise(batch, states, logits, mode, [](int) {});
  }
  void forward_layerwise(const Batch& batch, std::span<SequenceState* const> states, float* logits, Logits mode,
                         FunctionRef<void(int)> on_layer) const override {
    for (int l = 0; l < 3; ++l) {
      for (int i = 0; i < batch.n_seqs(); ++i) {
        SequenceState& s = *states[i];
        for (int64_t t = batch.offsets[i]; t < batch.offsets[i + 1]; ++t) {
          float tok = float(batch.tokens[size_t(t)]);
          int64_t pos = s.n_tokens() + t - batch.offsets[i];
          if (l == 0)
            for (int k = 0; k < 12; ++k) s.data(0)[k] = 0.9f * s.data(0)[k] + tok * float(k + 1);
          if (l == 1) {
            float* row = s.data(1) + (pos % 5) * 2;
            row[0] = tok;
            row[1] = float(pos);
          }
          if (l == 2) {
            float* row = s.append_rows(2, 1);
            row[0] = tok, row[1] = float(pos), row[2] = -tok;
          }
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      on_layer(l);
    }
    for (int i = 0; i < batch.n_seqs(); ++i) {
      SequenceState& s = *states[i];
      s.set_n_tokens(s.n_tokens() + batch.offsets[i + 1] - batch.offsets[i]);
      if (mode == Logits::Last)
        for (int v = 0; v < 7; ++v) logits[i * 7 + v] = s.data(0)[v] - float(v);
    }
  }

 private:
  ModelInfo info_;
  StateSpec spec_;
  std::string fp_ = "scripted-0000000000000000";
};

}  // namespace

TEST(PrefillStream, RingRowsAreOrderedByTheTokenCountAfterTheForward) {
  ScriptedModel m;
  const StateIdentity id{m.fingerprint(), ""};
  for (int64_t before : {0, 3, 9})
    for (int64_t n : {1, 2, 4, 7}) {
      SCOPED_TRACE(fmt::format("{} tokens after {}", n, before));
      SequenceState s(m.state_spec());
      SequenceState* st[] = {&s};
      auto head = random_ids(before, 7, 9);
      if (before) m.forward(Batch::single(head), st, nullptr, Logits::None);
      auto ids = random_ids(n, 7, uint32_t(10 + n));
      auto want = saved_after_forward(m, s, ids, id, {}, true);
      Streamed got = stream(m, s, ids, id, {}, true);
      EXPECT_EQ(got.bytes, want);
      EXPECT_GT(got.stats.write_hidden_s, 0.0);  // layers 0 and 1 went out while later ones slept
    }
}

TEST(PrefillStream, ReaderStopsAtTheFirstBadRecordWhileTheStreamIsStillOpen) {
  // The sender writes the header, a good record and a corrupted one, then keeps the pipe open: the
  // receiver must refuse the corrupted record as soon as it has arrived, not at the end of the stream.
  ScriptedModel m;
  const StateIdentity id{m.fingerprint(), ""};
  SequenceState fresh(m.state_spec());
  auto bytes = saved_after_forward(m, fresh, random_ids(8, 7, 11), id, {}, false);
  // Record boundaries: header = 16 + body + 8; a record = 24 + stored_len + 8.
  uint32_t body_len;
  std::memcpy(&body_len, bytes.data() + 12, 4);
  size_t rec0 = 16 + body_len + 8;
  auto record_end = [&](size_t at) {
    uint64_t stored;
    std::memcpy(&stored, bytes.data() + at + 16, 8);
    return at + 24 + stored + 8;
  };
  size_t rec1 = record_end(rec0), rec2 = record_end(rec1);
  bytes[rec1 + 24] ^= 0x10;  // a payload bit of record 1 (layer 1 'swa.k')

  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  std::promise<void> release;
  std::thread sender([&] {
    FdSink out(fds[1], "pipe");
    out.write(bytes.data(), rec2);
    release.get_future().wait();
    out.write(bytes.data() + rec2, bytes.size() - rec2);
    ::close(fds[1]);
  });
  auto result = std::async(std::launch::async, [&]() -> std::string {
    FdSource in(fds[0], "peer");
    StateReader r(in);
    try {
      r.read(m.state_spec(), id);
    } catch (const Error& e) {
      return e.what();
    }
    return "<no error>";
  });
  bool early = result.wait_for(std::chrono::seconds(20)) == std::future_status::ready;
  release.set_value();
  sender.join();
  std::string err = result.get();
  ::close(fds[0]);
  EXPECT_TRUE(early) << "the reader waited for the rest of the stream";
  EXPECT_NE(err.find("checksum mismatch in the record of state tensor layer 1 'swa.k'"), std::string::npos) << err;
}
