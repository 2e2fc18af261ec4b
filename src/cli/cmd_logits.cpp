// linfer logits --model DIR --prompt-ids 5,17,42 --out FILE.npy [--device cpu|cuda]
// One full forward pass; writes float32 logits [T, vocab] (C order) at every prompt position.

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
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--model", a->model, "model folder (config.json + *.safetensors)")->required();
  cmd->add_option("--prompt-ids", a->ids, "comma-separated token ids")->required();
  cmd->add_option("--out", a->out, "output .npy file (float32 [T, vocab])")->required();
  add_device_option(cmd, a->device);
  cmd->callback([a] {
    const auto ids = parse_ids(a->ids);
    auto model = Model::load(a->model, parse_device(a->device));
    SequenceState s(model->state_spec());
    SequenceState* sp = &s;
    const int64_t V = model->info().vocab_size;
    std::vector<float> logits(ids.size() * size_t(V));
    model->forward(Batch::single(ids), {&sp, 1}, logits.data(), Logits::All);
    write_npy(a->out, logits.data(), {int64_t(ids.size()), V});
    fmt::print(stderr, "wrote {} x {} logits to {}\n", ids.size(), V, a->out);
  });
}

}  // namespace linfer::cli
