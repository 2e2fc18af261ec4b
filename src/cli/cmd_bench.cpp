// linfer bench --model DIR [-p 512[,4096]] [-n 128] [-b 1[,8]] [-r 3] [--ubatch N] [--json] [--profile]
//              [--device cpu|cuda]
// End-to-end speed, like llama-bench: for each prompt length pp, prefill pp random tokens into an
// empty sequence (in chunks of --ubatch tokens as `generate` does, runtime/prefill_chunks.h; logits of
// the last token only) -> "ppN"; for each generation length tg and batch B, decode tg tokens one at a
// time in each of B sequences from empty ones, the B sequences together (one forward per step, logits
// of every sequence) -> "tgN" (B = 1) or "tgN x B"; tokens/s counts every sequence's tokens, as a
// server decoding B users would. Each test runs once untimed (warm-up: page in the mmap'd weights,
// grow scratch buffers), then r times; the median tokens/s is reported, with every sample in --json.
// Threads: the global --threads option. Random-weight models of realistic shape:
// tools/make_random_model.py.
// --profile adds the wall time per part of the forward pass (mixer / FFN kind, head; see
// models/profile.h), summed over the timed repetitions.

#include <time.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <random>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/weight_summary.h"
#include "cli/model_args.h"
#include "kernels/cpu/matmul.h"
#include "linfer/core/error.h"
#include "linfer/core/quant_activations.h"
#include "linfer/core/thread_pool.h"
#include "linfer/model.h"
#include "models/profile.h"

namespace linfer::cli {

namespace {

struct BenchTest {
  std::string name;  // "pp512", "tg128", "tg128 x 8"
  int64_t n_prompt = 0, n_gen = 0, batch = 1;
  std::vector<double> seconds;      // wall, one per timed repetition
  std::vector<double> cpu_seconds;  // CPU time of the whole process (all threads), same runs
  std::map<std::string, ProfileEntry> profile;

  int64_t tokens() const { return (n_prompt + n_gen) * batch; }
};

double median(std::vector<double> s) {
  std::sort(s.begin(), s.end());
  const size_t n = s.size();
  return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

// One run of a test on fresh sequences, kept where the model runs (state slots); returns wall seconds.
double run_once(const Model& model, const BenchTest& test, int64_t ubatch, std::mt19937& rng) {
  const int64_t V = model.info().vocab_size, B = test.batch;
  std::uniform_int_distribution<int32_t> tok(0, int32_t(V - 1));
  auto slots = model.make_slots(int(B));
  const int32_t slot = 0;
  std::vector<float> logits(static_cast<size_t>(B * V));
  using clock = std::chrono::steady_clock;
  if (test.n_prompt > 0) {
    std::vector<int32_t> ids(size_t(test.n_prompt));
    for (auto& id : ids) id = tok(rng);
    const auto t0 = clock::now();
    forward_chunked(model, ids, *slots, slot, logits.data(), Logits::Last, ubatch);
    return std::chrono::duration<double>(clock::now() - t0).count();
  }
  // One token per sequence per step; the batch is built once (the loop times the model alone).
  std::vector<int32_t> ids(static_cast<size_t>(B)), slot_ids(static_cast<size_t>(B));
  Batch batch{ids, {}};
  for (int64_t i = 0; i <= B; ++i) batch.offsets.push_back(i);
  for (int64_t i = 0; i < B; ++i) slot_ids[size_t(i)] = int32_t(i);
  const auto t0 = clock::now();
  for (int64_t i = 0; i < test.n_gen; ++i) {
    for (auto& id : ids) id = tok(rng);
    model.forward_slots(batch, *slots, slot_ids, logits.data(), Logits::Last);
  }
  return std::chrono::duration<double>(clock::now() - t0).count();
}

std::string human_params(int64_t n) {
  return n >= 1'000'000'000 ? fmt::format("{:.2f} B", n / 1e9) : fmt::format("{:.1f} M", n / 1e6);
}

}  // namespace

void add_bench(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench", "prefill and decode speed (tokens/s), like llama-bench");
  struct Args {
    std::string model, device;
    std::vector<int64_t> pp{512}, tg{128}, batch{1};
    int reps = 3;
    int64_t ubatch = -1;  // -1: the device's default
    bool json = false, profile = false;
    uint32_t seed = 1;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--model", a->model, "model folder (tools/make_random_model.py writes random ones)")->required();
  cmd->add_option("-p,--n-prompt", a->pp, "prompt lengths to prefill (comma-separated; 0: none)")->delimiter(',');
  cmd->add_option("-n,--n-gen", a->tg, "tokens to decode one at a time (comma-separated; 0: none)")->delimiter(',');
  cmd->add_option("-b,--batch", a->batch,
                  "sequences decoded together in each -n test (comma-separated; tokens/s counts all of them)")
      ->delimiter(',');
  cmd->add_option("-r,--repetitions", a->reps, "timed repetitions per test (the median is reported)")
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--seed", a->seed, "seed of the random token ids");
  add_ubatch_option(cmd, a->ubatch);
  cmd->add_flag("--json", a->json, "print the results as JSON instead of a table");
  cmd->add_flag("--profile", a->profile, "also report the time per part of the forward pass");
  add_device_option(cmd, a->device);
  cmd->callback([a] {
    auto model = Model::load(a->model, parse_device(a->device));
    std::vector<BenchTest> tests;
    for (int64_t p : a->pp) {
      LINFER_CHECK(p >= 0, "bench: -p {} must be >= 0", p);
      if (p > 0) tests.push_back(BenchTest{fmt::format("pp{}", p), p, 0, 1, {}, {}, {}});
    }
    for (int64_t b : a->batch) LINFER_CHECK(b >= 1 && b <= 4096, "bench: -b {} must be in 1..4096", b);
    for (int64_t n : a->tg) {
      LINFER_CHECK(n >= 0, "bench: -n {} must be >= 0", n);
      if (n > 0)
        for (int64_t b : a->batch)
          tests.push_back(BenchTest{b == 1 ? fmt::format("tg{}", n) : fmt::format("tg{} x {}", n, b), 0, n, b, {}, {}, {}});
    }
    LINFER_CHECK(!tests.empty(), "bench: nothing to run (every -p and -n is 0)");

    const int64_t ubatch = ubatch_for(a->ubatch, model->device());
    std::mt19937 rng(a->seed);
    for (auto& t : tests) {
      run_once(*model, t, ubatch, rng);  // warm-up
      profile_reset();
      profile_enable(a->profile);
      for (int r = 0; r < a->reps; ++r) {
        const double cpu0 = process_cpu_seconds();
        t.seconds.push_back(run_once(*model, t, ubatch, rng));
        t.cpu_seconds.push_back(process_cpu_seconds() - cpu0);
        fmt::print(stderr, "{} {} rep {}: {:.1f} tokens/s\n", model->info().architecture, t.name, r + 1,
                   double(t.tokens()) / t.seconds.back());
      }
      profile_enable(false);
      t.profile = profile_totals();
    }

    const ModelInfo& info = model->info();
    const int threads = num_threads();
    const WeightSummary weights = summarize_folder(a->model);
    const std::string weight_types = weights.known() ? weights.types_short() : "?";
    // What the weights multiply (linfer/core/quant_activations.h): a CPU setting only, and only where this
    // CPU has the kernels it asks for, for these weights' types (elsewhere the products stay float32)
    using kernels::ActivationRounding;
    const std::vector<DType> dtypes = weights.dtypes();
    const ActivationRounding rounds = model->device() == Device::Cpu
                                          ? kernels::activation_rounding(quant_activations(), dtypes)
                                          : ActivationRounding{};
    const QuantActivations acts =
        rounds.bf16_prefill || rounds.bf16_decode || rounds.int8_decode ? quant_activations() : QuantActivations::F32;
    const std::string acts_label =
        std::string(rounds.int8_decode ? ", int8 activations in decode" : "") +
        (rounds.bf16_decode && rounds.bf16_prefill ? ", bf16 activations"
         : rounds.bf16_decode                      ? ", bf16 activations in decode"
         : rounds.bf16_prefill                     ? ", bf16 activations in prefill"
                                                   : "");
    if (a->json) {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& t : tests) {
        nlohmann::json j{{"model", a->model},        {"architecture", info.architecture},
                         {"n_params", info.n_params}, {"threads", threads},
                         {"weights", weight_types},   {"bits_per_weight", weights.bits_per_weight()},
                         {"activations", quant_activations_name(acts)},
                         {"device", device_name(model->device())},
                         {"test", t.name},            {"n_prompt", t.n_prompt},
                         {"n_gen", t.n_gen},          {"batch", t.batch}, {"ubatch", ubatch},
                         {"repetitions", t.seconds.size()},
                         {"samples_s", t.seconds},    {"cpu_samples_s", t.cpu_seconds},
                         {"median_s", median(t.seconds)},
                         {"tokens_per_s", double(t.tokens()) / median(t.seconds)},
                         {"tokens_per_cpu_s", double(t.tokens()) / median(t.cpu_seconds)}};
        if (a->profile) {
          nlohmann::json parts = nlohmann::json::object();
          for (const auto& [part, e] : t.profile) parts[part] = {{"seconds", e.seconds}, {"calls", e.calls}};
          j["profile"] = parts;
        }
        out.push_back(j);
      }
      fmt::print("{}\n", out.dump(1));
      return;
    }
    // Tokens per CPU-second: what the cores deliver while they run this, whatever else shares them.
    fmt::print("| model | params | weights | device | threads | test | tokens/s (median of {}) | range | tokens per "
               "CPU-second |\n|---|---|---|---|---|---|---|---|---|\n", a->reps);
    for (const auto& t : tests) {
      const auto [lo, hi] = std::minmax_element(t.seconds.begin(), t.seconds.end());
      const double n = double(t.tokens());
      fmt::print("| {} | {} | {} ({:.2f} bits/weight{}) | {} | {} | {} | {:.1f} | {:.1f}..{:.1f} | {:.1f} |\n",
                 info.architecture, human_params(info.n_params), weight_types, weights.bits_per_weight(),
                 acts_label,
                 device_name(model->device()), threads, t.name, n / median(t.seconds), n / *hi, n / *lo,
                 n / median(t.cpu_seconds));
    }
    if (!a->profile) return;
    for (const auto& t : tests) {
      double total = 0;
      for (const auto& [part, e] : t.profile) total += e.seconds;
      fmt::print("\n{} profile ({} repetitions):\n", t.name, t.seconds.size());
      std::vector<std::pair<std::string, ProfileEntry>> parts(t.profile.begin(), t.profile.end());
      std::sort(parts.begin(), parts.end(), [](const auto& x, const auto& y) { return x.second.seconds > y.second.seconds; });
      for (const auto& [part, e] : parts)
        fmt::print("  {:<18} {:8.3f} s  {:5.1f} %  {:7} calls\n", part, e.seconds, 100 * e.seconds / total, e.calls);
    }
  });
}

}  // namespace linfer::cli
