// linfer prefill [--model DIR] (--prompt-ids 5,17,42 | --prompt TEXT) --save-state FILE
//                [--state-dtype f32|bf16] [--compress] [--ubatch N] [--device cpu|cuda]
// Runs the prompt through the model (in chunks of --ubatch tokens: runtime/prefill_chunks.h) and saves
// the resulting state, with the last token's logits, in the wire format (docs/state-format.md). `linfer generate --load-state FILE` continues from it
// exactly as if the prompt had been given to generate (on any device: the file is the host state). A
// summary goes to stderr.

#include <chrono>
#include <sys/stat.h>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/model_args.h"
#include "linfer/core/error.h"
#include "linfer/model.h"
#include "linfer/tokenizer.h"
#include "runtime/state_file.h"

namespace linfer::cli {

void add_prefill(CLI::App& app) {
  auto* cmd = app.add_subcommand("prefill", "run a prompt and save the model's state to a file");
  struct Args {
    std::string model, prompt, ids, out, dtype = "f32", device;
    bool compress = false;
    int64_t ubatch = -1;  // -1: the device's default
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--model", a->model, "model folder (default: the embedded demo model)");
  auto* text = cmd->add_option("--prompt", a->prompt, "prompt text (needs the model's tokenizer)");
  cmd->add_option("--prompt-ids", a->ids, "prompt as comma-separated token ids")->excludes(text);
  cmd->add_option("--save-state", a->out, "state file to write")->required();
  cmd->add_option("--state-dtype", a->dtype, "storage type of float32 state tensors")
      ->check(CLI::IsMember({"f32", "bf16"}));
  cmd->add_flag("--compress", a->compress, "zstd-compress each record");
  add_ubatch_option(cmd, a->ubatch);
  add_device_option(cmd, a->device);
  cmd->callback([a] {
    const std::string dir = a->model.empty() ? demo_model_dir() : a->model;
    LINFER_CHECK(!a->prompt.empty() || !a->ids.empty(), "prefill: give --prompt or --prompt-ids");
    auto model = Model::load(dir, parse_device(a->device));
    // A text prompt ties the state to its tokenizer; token ids do not need one.
    std::unique_ptr<Tokenizer> tok = a->prompt.empty() ? nullptr : Tokenizer::load(dir);
    std::vector<int32_t> prompt = tok ? tok->encode(a->prompt) : parse_ids(a->ids);
    LINFER_CHECK(!prompt.empty(), "prefill: the prompt has no tokens");

    SequenceState s(model->state_spec());
    std::vector<float> logits(size_t(model->info().vocab_size));
    const auto t0 = std::chrono::steady_clock::now();
    forward_chunked(*model, prompt, s, logits.data(), Logits::Last, ubatch_for(a->ubatch, model->device()));
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    save_state_file(a->out, *model, tok.get(), s, logits,
                    {.dtype = a->dtype == "bf16" ? DType::BF16 : DType::F32, .compress = a->compress});
    struct stat st {};
    ::stat(a->out.c_str(), &st);
    fmt::print(stderr, "prefill: {} tokens in {:.3f} s ({:.1f} tokens/s); state: {} bytes in memory, {} bytes in {}\n",
               prompt.size(), secs, double(prompt.size()) / std::max(secs, 1e-9), s.bytes(),
               int64_t(st.st_size), a->out);
  });
}

}  // namespace linfer::cli
