// linfer inspect --model DIR [--config-only] [--tensors]
// Architecture, parameter count, layer pattern, the recurrent state a sequence needs and the KV
// cache it grows per token (both as linfer stores them: float32). --config-only reads config.json
// alone (no weights needed: for sizing a checkpoint before downloading it). With weights: each stored
// type's share and the file's bits per weight; --tensors lists every tensor's type and shape. A .gguf
// file (--model FILE.gguf) shows its metadata summary and every tensor's type, shape and bits per weight.

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/inspect_gguf.h"
#include "cli/weight_summary.h"
#include "io/config.h"
#include "io/gguf.h"
#include "linfer/model.h"
#include "models/checkpoint.h"
#include "models/load_layers.h"
#include "models/registry.h"

namespace linfer::cli {

namespace {

// "kda+dense, kda+moe x2, mla+moe" (runs of equal layers collapsed).
std::string pattern(const std::vector<std::string>& layers) {
  std::string out;
  for (size_t i = 0; i < layers.size();) {
    size_t j = i;
    while (j < layers.size() && layers[j] == layers[i]) ++j;
    out += fmt::format("{}{}{}", out.empty() ? "" : ", ", layers[i], j - i > 1 ? fmt::format(" x{}", j - i) : "");
    i = j;
  }
  return out;
}

std::string human(double bytes) {
  const char* unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) bytes /= 1024, ++u;
  return fmt::format("{:.1f} {}", bytes, unit[u]);
}

void print_report(const std::string& arch, int64_t params, const std::vector<std::string>& layers,
                  const StateSpec& spec) {
  int64_t state = 0, kv = 0;
  for (const auto& t : spec.tensors) {
    const int64_t bytes = shape_numel(t.shape) * 4;
    if (t.kind == StateKind::Growing) kv += bytes;
    else state += bytes * (t.kind == StateKind::Ring ? t.capacity : 1);
  }
  fmt::print("architecture: {}\n", arch);
  fmt::print("parameters: {} ({:.2f} B)\n", params, params / 1e9);
  fmt::print("layers: {}\n", layers.size());
  fmt::print("layer pattern: {}\n", pattern(layers));
  fmt::print("recurrent state per sequence: {} bytes ({}, float32)\n", state, human(double(state)));
  fmt::print("kv cache per token: {} bytes ({}, float32)\n", kv, human(double(kv)));
  for (int64_t ctx : {4096, 32768, 131072, 1048576})
    fmt::print("  per sequence at {:>7} tokens: {}\n", ctx, human(double(state) + double(kv) * double(ctx)));
}

// Each stored type's share of the parameters and bytes, the file's bits per weight, and with --tensors
// every tensor.
void print_weights(const std::string& dir, bool tensors) {
  const SafetensorsDir files(dir);
  const WeightSummary w = summarize_weights(files);
  fmt::print("weights: {} ({})\n", w.line(), human(w.bytes));
  for (const auto& [type, t] : w.types)
    fmt::print("  {:<5} {:6} tensors {:>14} parameters {:>11}  {:.4g} bits/weight\n", type, t.tensors, t.params,
               human(t.bytes), t.params ? 8 * t.bytes / double(t.params) : 0.0);
  if (!tensors) return;
  for (const auto& name : files.names()) {
    const auto& e = files.entry(name);
    fmt::print("  {} {} {}\n", name, e.dtype ? std::string(dtype_name(*e.dtype)) : e.dtype_name, shape_str(e.shape));
  }
}

}  // namespace

void add_inspect(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect", "describe a model: architecture, size, state and KV bytes");
  struct Args {
    std::string model;
    bool config_only = false, tensors = false;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--model", a->model, "model folder, or a .gguf file")->required();
  cmd->add_flag("--config-only", a->config_only, "read config.json only (no weights needed)");
  cmd->add_flag("--tensors", a->tensors, "list every tensor with its type and shape");
  cmd->callback([a] {
    if (a->config_only) {
      const auto ck = Checkpoint::open(a->model);  // a .gguf file's config comes from its metadata
      const ModelConfig m = build_model_config(Config::parse(ck->config_text(), ck->config_label()));
      StateSpec spec;
      std::vector<std::string> layers;
      for (size_t i = 0; i < m.layers.size(); ++i) {
        declare_layer_state(m.layers[i], int(i), spec.tensors);
        layers.push_back(fmt::format("{}+{}", mixer_name(m.layers[i].mixer), ffn_name(m.layers[i].ffn)));
      }
      print_report(m.architecture, count_params(m), layers, spec);
      return;
    }
    // A .gguf file's own summary first: it names the types even when linfer cannot load them.
    if (is_gguf_file(a->model)) print_gguf(a->model);
    auto model = Model::load(a->model);
    print_report(model->info().architecture, model->info().n_params, model->info().layers, model->state_spec());
    fmt::print("fingerprint: {}\n", model->fingerprint());
    if (!is_gguf_file(a->model)) print_weights(a->model, a->tensors);
  });
}

}  // namespace linfer::cli
