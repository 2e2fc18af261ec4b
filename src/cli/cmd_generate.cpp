// linfer generate [--model DIR] (--prompt TEXT | --prompt-ids 5,17,42) [-n N] [--greedy]
//                 [--temperature T] [--top-k K] [--top-p P] [--seed S] [--print-ids] [--ubatch N]
//                 [--device cpu|cuda]
// Prefills the prompt (in chunks of --ubatch tokens: runtime/prefill_chunks.h), then decodes one token
// per step. With --prompt the text is tokenized and the continuation is printed as it is generated
// (stopping at EOS); with --prompt-ids exactly n ids are generated. --print-ids prints the generated
// ids comma-separated on one stdout line. Without --model the embedded demo model is used. Speed goes
// to stderr. --load-state FILE (from `linfer prefill`) continues a saved sequence; the prompt, if any,
// is the tokens that follow it.

#include <chrono>
#include <cstdio>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/model_args.h"
#include "linfer/core/error.h"
#include "linfer/model.h"
#include "linfer/tokenizer.h"
#include "runtime/sampling.h"
#include "runtime/state_file.h"

namespace linfer::cli {

void add_generate(CLI::App& app) {
  auto* cmd = app.add_subcommand("generate", "generate tokens from a prompt");
  struct Args {
    std::string model, prompt, ids, load_state, device;
    int n = 64;
    int64_t ubatch = -1;  // -1: the device's default
    bool print_ids = false, ignore_eos = false, other_weights = false;
    SamplingParams sp{.temperature = 0.8f, .top_k = 40, .top_p = 0.95f, .seed = 0};
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--model", a->model, "model folder (default: the embedded demo model)");
  auto* text = cmd->add_option("--prompt", a->prompt, "prompt text (needs the model's tokenizer)");
  cmd->add_option("--prompt-ids", a->ids, "prompt as comma-separated token ids")->excludes(text);
  cmd->add_option("-n,--max-tokens", a->n, "tokens to generate")->check(CLI::NonNegativeNumber);
  cmd->add_flag("--greedy", a->sp.greedy, "always take the most likely token");
  cmd->add_option("--temperature", a->sp.temperature, "sampling temperature (<= 0: greedy)");
  cmd->add_option("--top-k", a->sp.top_k, "sample among the k most likely tokens (0: all)");
  cmd->add_option("--top-p", a->sp.top_p, "nucleus sampling mass");
  cmd->add_option("--seed", a->sp.seed, "random seed");
  cmd->add_flag("--print-ids", a->print_ids, "print the generated ids, comma-separated, on one line");
  cmd->add_flag("--ignore-eos", a->ignore_eos, "do not stop at the end-of-sequence token");
  cmd->add_option("--load-state", a->load_state, "continue from a state saved by `linfer prefill`");
  cmd->add_flag("--state-other-weights", a->other_weights,
                "accept a --load-state written by other weights of this architecture (e.g. the bf16 model's state "
                "into its quantized copy; docs/state-format.md says what it costs)");
  add_ubatch_option(cmd, a->ubatch);
  add_device_option(cmd, a->device);
  cmd->callback([a] {
    const std::string dir = a->model.empty() ? demo_model_dir() : a->model;
    LINFER_CHECK(!a->prompt.empty() || !a->ids.empty() || !a->load_state.empty(),
                 "generate: give --prompt, --prompt-ids or --load-state");
    auto model = Model::load(dir, parse_device(a->device));
    std::unique_ptr<Tokenizer> tok;
    if (!a->prompt.empty() || !a->print_ids) {
      try {
        tok = Tokenizer::load(dir);
      } catch (const Error& e) {
        if (!a->prompt.empty()) throw;
      }
    }
    std::vector<int32_t> prompt = !a->prompt.empty() ? tok->encode(a->prompt)
                                  : a->ids.empty()   ? std::vector<int32_t>{}
                                                     : parse_ids(a->ids);
    LINFER_CHECK(!prompt.empty() || !a->load_state.empty(), "generate: the prompt has no tokens");
    // Text generation stops at EOS; id mode generates exactly n tokens (a testing interface).
    int64_t eos = -1;
    if (!a->prompt.empty() && !a->ignore_eos) eos = tok->eos_id() >= 0 ? tok->eos_id() : model->info().eos_token_id;

    const int64_t V = model->info().vocab_size;
    auto slots = model->make_slots(1);  // the sequence's state stays where the model runs
    const int32_t slot = 0;
    std::vector<float> row(V);
    Sampler sampler(a->sp);
    std::unique_ptr<StreamDecoder> stream;
    const bool print_text = tok && !a->print_ids;
    if (print_text) {
      stream = std::make_unique<StreamDecoder>(*tok);
      if (!a->prompt.empty()) fmt::print("{}", a->prompt);
      std::fflush(stdout);
    }

    using clock = std::chrono::steady_clock;
    const auto t0 = clock::now();
    if (!a->load_state.empty()) {
      LoadedState loaded = load_state_file(a->load_state, *model, tok.get(),
                                           a->other_weights ? StateOrigin::OtherWeights : StateOrigin::SameModel);
      slots->load(slot, loaded.state);
      LINFER_CHECK(!prompt.empty() || !loaded.logits.empty(),
                   "generate: {} holds no logits to continue from; give the next tokens with --prompt-ids",
                   a->load_state);
      if (prompt.empty()) row = std::move(loaded.logits);
    }
    if (!prompt.empty())
      forward_chunked(*model, prompt, *slots, slot, row.data(), Logits::Last, ubatch_for(a->ubatch, model->device()));
    const auto t1 = clock::now();
    std::vector<int32_t> out;
    for (int i = 0; i < a->n; ++i) {
      int32_t next = sampler.sample(row.data(), V);
      if (next == eos) break;
      out.push_back(next);
      if (print_text) {
        fmt::print("{}", stream->push(next));
        std::fflush(stdout);
      }
      if (i + 1 < a->n) model->forward_slots(Batch::single({&next, 1}), *slots, {&slot, 1}, row.data(), Logits::Last);
    }
    const auto t2 = clock::now();
    if (print_text) fmt::print("{}\n", stream->flush());
    if (a->print_ids || !tok) fmt::print("{}\n", fmt::join(out, ","));
    std::fflush(stdout);
    const double pre = std::chrono::duration<double>(t1 - t0).count();
    const double dec = std::chrono::duration<double>(t2 - t1).count();
    fmt::print(stderr, "prefill: {} tokens in {:.3f} s ({:.1f} tokens/s); decode: {} tokens in {:.3f} s ({:.1f} tokens/s)\n",
               prompt.size(), pre, prompt.size() / std::max(pre, 1e-9), out.size(), dec,
               out.size() > 1 ? (out.size() - 1) / std::max(dec, 1e-9) : 0.0);
  });
}

}  // namespace linfer::cli
