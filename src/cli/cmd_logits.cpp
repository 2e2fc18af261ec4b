// linfer logits --model DIR --prompt-ids 5,17,42 --out FILE.npy [--ubatch N] [--device cpu|cuda]
// Runs the prompt (in chunks of --ubatch tokens: runtime/prefill_chunks.h); writes float32 logits
// [T, vocab] (C order) at every prompt position. With LINFER_DUMP set it runs one pass, since the dump
// (models/model.cpp) writes each forward call's rows over the last call's.

#include <cstdlib>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/model_args.h"
#include "io/npy.h"
#include "linfer/model.h"

namespace linfer::cli {

void add_logits(CLI::App& app) {
  auto* cmd = app.add_subcommand("logits", "write the logits at every prompt position as a .npy file");
  struct Args {
    std::string model, ids, out, device;
    int64_t ubatch = -1;  // -1: the device's default
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--model", a->model, "model folder (config.json + *.safetensors)")->required();
  cmd->add_option("--prompt-ids", a->ids, "comma-separated token ids")->required();
  cmd->add_option("--out", a->out, "output .npy file (float32 [T, vocab])")->required();
  add_ubatch_option(cmd, a->ubatch);
  add_device_option(cmd, a->device);
  cmd->callback([a] {
    const auto ids = parse_ids(a->ids);
    auto model = Model::load(a->model, parse_device(a->device));
    SequenceState s(model->state_spec());
    const int64_t V = model->info().vocab_size;
    std::vector<float> logits(ids.size() * size_t(V));
    const int64_t ubatch = std::getenv("LINFER_DUMP") ? 0 : ubatch_for(a->ubatch, model->device());
    forward_chunked(*model, ids, s, logits.data(), Logits::All, ubatch);
    write_npy(a->out, logits.data(), {int64_t(ids.size()), V});
    fmt::print(stderr, "wrote {} x {} logits to {}\n", ids.size(), V, a->out);
  });
}

}  // namespace linfer::cli
