// linfer eval --model DIR --text-file F [--window N] [--ubatch N]
// Mean negative log-likelihood (nats/token) of a text: the file is tokenized, cut into consecutive
// windows of N tokens, and tokens 1..N-1 of each window are scored given the tokens before them in
// the window (a last partial window of at least 2 tokens is scored too). A window runs through the
// model in chunks of --ubatch tokens (runtime/prefill_chunks.h).

#include <cmath>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/model_args.h"
#include "linfer/core/error.h"
#include "linfer/model.h"
#include "linfer/tokenizer.h"

namespace linfer::cli {

void add_eval(CLI::App& app) {
  auto* cmd = app.add_subcommand("eval", "mean nats/token of a text file");
  struct Args {
    std::string model, file;
    int64_t window = 512;
    int64_t ubatch = -1;  // -1: the CPU's default
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--model", a->model, "model folder")->required();
  cmd->add_option("--text-file", a->file, "UTF-8 text to score")->required();
  cmd->add_option("--window", a->window, "tokens per window")->check(CLI::Range(int64_t(2), int64_t(1) << 30));
  add_ubatch_option(cmd, a->ubatch);
  cmd->callback([a] {
    std::ifstream f(a->file, std::ios::binary);
    LINFER_CHECK(f, "cannot open --text-file {}", a->file);
    std::stringstream text;
    text << f.rdbuf();
    auto model = Model::load(a->model);
    auto tok = Tokenizer::load(a->model);
    const auto ids = tok->encode(text.str(), SpecialTokens::kAsText);
    const int64_t V = model->info().vocab_size, n = int64_t(ids.size());
    std::vector<float> logits;
    double nll = 0;
    int64_t scored = 0, windows = 0;
    for (int64_t b = 0; b + 1 < n; b += a->window) {
      const int64_t len = std::min(a->window, n - b);
      if (len < 2) break;
      SequenceState s(model->state_spec());
      logits.resize(size_t(len * V));
      forward_chunked(*model, {ids.data() + b, size_t(len)}, s, logits.data(), Logits::All,
                      ubatch_for(a->ubatch, model->device()));
      for (int64_t t = 1; t < len; ++t) {
        const float* row = logits.data() + (t - 1) * V;
        double m = row[0];
        for (int64_t v = 1; v < V; ++v) m = std::max(m, double(row[v]));
        double z = 0;
        for (int64_t v = 0; v < V; ++v) z += std::exp(double(row[v]) - m);
        nll += m + std::log(z) - double(row[ids[b + t]]);
        ++scored;
      }
      ++windows;
    }
    LINFER_CHECK(scored > 0, "eval: {} has fewer than 2 tokens", a->file);
    fmt::print("{:.6f} nats/token over {} tokens ({} windows of up to {})\n", nll / double(scored), scored, windows,
               a->window);
  });
}

}  // namespace linfer::cli
