// How much of writing the state the layer-by-layer streaming hides behind the prefill compute, on the
// demo model (kimi_linear, 6 KDA + 2 MLA layers). For each prompt length and sink:
//   sequential: forward over the whole prompt, then write_state of the finished state;
//   streamed:   prefill_streamed (layer l's records written while layer l + 1 computes); ubatch 512: the
//               tokens before the last 512 in chunks first, unstreamed, only the last 512 streamed.
// Sinks: memory, and a sink paced to 1 Gbit/s and to 100 Mbit/s (a network link's rate, no delay).
// Time is the streamed run's total; counters: forward_s, write_busy_s, hidden (the fraction of the
// writer's work done while the forward ran), tail_s (what the caller still waited for after the
// forward), sequential_s (forward + write one after the other) and bytes of the stream.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <thread>

#include "runtime/prefill_stream.h"

using namespace linfer;

namespace {

using Clock = std::chrono::steady_clock;

// A serial link of `rate` bytes/s (0: unlimited): each write leaves once the bytes before it have,
// n / rate seconds after that. An idle link earns no credit, so a burst at the end waits its turn.
class PacedSink : public Sink {
 public:
  explicit PacedSink(double rate) : rate_(rate) {}

 protected:
  void put(const void*, size_t n) override {
    if (rate_ <= 0) return;
    free_at_ = std::max(free_at_, Clock::now()) +
               std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(double(n) / rate_));
    std::this_thread::sleep_until(free_at_);
  }

 private:
  double rate_;
  Clock::time_point free_at_;
};

const Model& demo() {
  static auto m = Model::load(std::string(LINFER_SOURCE_DIR) + "/models/demo");
  return *m;
}

void BM_PrefillStream(benchmark::State& st) {
  const Model& m = demo();
  const int64_t T = st.range(0);
  const double rate = double(st.range(1)) * 1e6 / 8;  // Mbit/s -> bytes/s; 0: memory
  const int64_t ubatch = st.range(2);
  std::mt19937 rng(1);
  std::vector<int32_t> ids(static_cast<size_t>(T));
  for (auto& x : ids) x = int32_t(rng() % uint32_t(m.info().vocab_size));
  const StateIdentity id{m.fingerprint(), ""};
  std::vector<float> logits(size_t(m.info().vocab_size));
  StreamedPrefillStats sum;
  double sequential = 0;
  for (auto _ : st) {
    {  // sequential reference, untimed by the benchmark
      SequenceState s(m.state_spec());
      SequenceState* states[] = {&s};
      auto a = Clock::now();
      m.forward(Batch::single(ids), states, logits.data(), Logits::Last);
      PacedSink out(rate);
      write_state(out, s, id, {}, logits);
      sequential += std::chrono::duration<double>(Clock::now() - a).count();
    }
    SequenceState s(m.state_spec());
    SequenceState* states[] = {&s};
    PacedSink out(rate);
    Sink* sinks[] = {&out};
    auto r = prefill_streamed(m, Batch::single(ids), states, sinks, id, {}, logits.data(), ubatch);
    st.SetIterationTime(r.total_s);
    sum.forward_s += r.forward_s;
    sum.write_busy_s += r.write_busy_s;
    sum.write_hidden_s += r.write_hidden_s;
    sum.tail_s += r.tail_s;
    sum.bytes = r.bytes;
  }
  double n = double(st.iterations());
  st.counters["forward_s"] = sum.forward_s / n;
  st.counters["write_busy_s"] = sum.write_busy_s / n;
  st.counters["hidden"] = sum.write_busy_s > 0 ? sum.write_hidden_s / sum.write_busy_s : 0;
  st.counters["tail_s"] = sum.tail_s / n;
  st.counters["sequential_s"] = sequential / n;
  st.counters["bytes"] = double(sum.bytes.at(0));
}

}  // namespace

BENCHMARK(BM_PrefillStream)
    ->ArgNames({"T", "Mbit", "ubatch"})
    ->ArgsProduct({{1024, 4096}, {0, 1000, 100}, {0, 512}})
    ->Iterations(2)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
