// gpu_model_speed MODEL_DIR [PROMPT=512] [GEN=128] [REPS=3] [BATCH=16] [DEPTH=0]   (MODEL_SPEED_DEVICES=cuda: GPU only)
// Whole-model speed on the CPU and on CUDA, side by side in one run, the way `linfer bench` measures
// (tools/gpu_check.sh runs it on a GPU machine, where the CLI's tokenizer and server libraries are not
// built): ppN = prefill N random tokens into an empty state slot (one forward, last logits), tgN = decode
// N tokens one at a time from an empty slot (logits every token, copied to the host), tgN x B = the same
// for B sequences decoded together (one batched forward per step, B slots), tgN @ D = tgN after an untimed
// prefill of D tokens (DEPTH > 0: what attention's cache costs a decode step). One untimed warm-up, then the
// median of REPS runs. Prints a markdown table; tokens/s counts every sequence's tokens.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "linfer/core/error.h"
#include "linfer/core/thread_pool.h"
#include "linfer/model.h"

using namespace linfer;

namespace {

double run_once(const Model& m, int64_t prompt, int64_t gen, int batch, int64_t depth, std::mt19937& rng) {
  std::uniform_int_distribution<int32_t> tok(0, int32_t(m.info().vocab_size - 1));
  auto slots = m.make_slots(batch);
  const int32_t slot = 0;
  std::vector<float> logits(size_t(m.info().vocab_size) * size_t(batch));
  auto prefill = [&](int64_t n) {  // n random tokens into slot 0
    std::vector<int32_t> ids(static_cast<size_t>(n));
    for (auto& id : ids) id = tok(rng);
    m.forward_slots(Batch::single(ids), *slots, {&slot, 1}, logits.data(), Logits::Last);
  };
  if (depth > 0) prefill(depth);
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  if (prompt > 0) prefill(prompt);
  std::vector<int32_t> ids(static_cast<size_t>(batch)), all(static_cast<size_t>(batch));
  Batch step{ids, {}};
  for (int b = 0; b <= batch; ++b) step.offsets.push_back(b);
  for (int b = 0; b < batch; ++b) all[b] = b;
  for (int64_t i = 0; i < gen; ++i) {
    for (auto& id : ids) id = tok(rng);
    m.forward_slots(step, *slots, all, logits.data(), Logits::Last);
  }
  return std::chrono::duration<double>(clock::now() - t0).count();
}

double median_tokens_per_s(const Model& m, int64_t prompt, int64_t gen, int batch, int64_t depth, int reps,
                           std::mt19937& rng) {
  run_once(m, prompt, gen, batch, depth, rng);  // warm-up: page in weights, grow scratch
  std::vector<double> s;
  for (int r = 0; r < reps; ++r) s.push_back(run_once(m, prompt, gen, batch, depth, rng));
  std::sort(s.begin(), s.end());
  return double(prompt + gen * batch) / s[s.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL_DIR [PROMPT=512] [GEN=128] [REPS=3] [BATCH=16] [DEPTH=0]\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const int64_t prompt = argc > 2 ? std::atoll(argv[2]) : 512, gen = argc > 3 ? std::atoll(argv[3]) : 128;
  const int reps = argc > 4 ? std::atoi(argv[4]) : 3, batch = argc > 5 ? std::atoi(argv[5]) : 16;
  const int64_t depth = argc > 6 ? std::atoll(argv[6]) : 0;
  try {
    std::printf("| model | params | device | threads | test | tokens/s (median of %d) |\n|---|---|---|---|---|---|\n",
                reps);
    const char* only = std::getenv("MODEL_SPEED_DEVICES");  // a 1B model on the CPU would take minutes
    for (Device d : {Device::Cpu, Device::Cuda}) {
      if (only && std::string(only).find(device_name(d)) == std::string::npos) continue;
      auto m = Model::load(dir, d);
      std::mt19937 rng(1);
      const ModelInfo& info = m->info();
      struct Test {
        int64_t p, g;
        int b;
        int64_t depth;
      };
      std::vector<Test> tests = {{prompt, 0, 1, 0}, {0, gen, 1, 0}, {0, gen, batch, 0}};
      if (depth > 0) tests.push_back({0, gen, 1, depth});
      for (const Test& t : tests) {
        if (t.p + t.g == 0 || t.b < 1) continue;
        const double tps = median_tokens_per_s(*m, t.p, t.g, t.b, t.depth, reps, rng);
        const std::string name = (t.p ? "pp" + std::to_string(t.p)
                                      : "tg" + std::to_string(t.g) + (t.b > 1 ? " x " + std::to_string(t.b) : "")) +
                                 (t.depth ? " @ " + std::to_string(t.depth) : "");
        std::printf("| %s | %.1f M | %s | %d | %s | %.1f |\n", info.architecture.c_str(), info.n_params / 1e6,
                    device_name(d), num_threads(), name.c_str(), tps);
        std::fflush(stdout);
      }
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "gpu_model_speed: %s\n", e.what());
    return 1;
  }
  return 0;
}
