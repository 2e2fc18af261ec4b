// linfer stream [--model DIR] [--input FILE|-] [--ids] [--chunk N] [--report-every N] [--max-tokens N]
// Feeds an unbounded token stream through the model in chunks, scoring each token against the
// previous position's logits. Memory stays constant for pure-recurrent models (the state is fixed;
// attention layers grow theirs, and the command says so). Progress lines on stderr report tokens,
// tokens/s, running log-perplexity (mean negative log-likelihood, nats/token) and resident memory;
// the final summary goes to stdout.
//
// Input: text (tokenized in 64 KiB blocks cut at line starts, see text_cut) or, with --ids, token ids
// separated by commas or whitespace.

#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/model_args.h"
#include "linfer/core/error.h"
#include "linfer/model.h"
#include "linfer/tokenizer.h"

namespace linfer::cli {

namespace {

// Resident and peak resident memory of this process, in bytes (Linux /proc).
std::pair<int64_t, int64_t> resident_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  int64_t rss = -1, hwm = -1;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) rss = std::stoll(line.substr(6)) * 1024;
    if (line.rfind("VmHWM:", 0) == 0) hwm = std::stoll(line.substr(6)) * 1024;
  }
  return {rss, hwm};
}

// Pulls tokens from the input a block at a time, so the input never has to fit in memory.
class TokenReader {
 public:
  TokenReader(std::istream& in, const Tokenizer* tok, int64_t vocab) : in_(in), tok_(tok), vocab_(vocab) {}

  // Appends up to n tokens to out; returns false once the input is exhausted and nothing was added.
  bool next(size_t n, std::vector<int32_t>& out) {
    while (pending_.size() - pos_ < n && refill()) {
    }
    size_t k = std::min(n, pending_.size() - pos_);
    out.insert(out.end(), pending_.begin() + long(pos_), pending_.begin() + long(pos_ + k));
    pos_ += k;
    return k > 0;
  }

 private:
  bool refill() {
    if (eof_) return false;
    pending_.erase(pending_.begin(), pending_.begin() + long(pos_));
    pos_ = 0;
    std::string block(1 << 16, '\0');
    in_.read(block.data(), std::streamsize(block.size()));
    block.resize(size_t(in_.gcount()));
    eof_ = block.empty() || !in_;
    block = carry_ + block;
    carry_.clear();
    if (!eof_) {  // keep the unfinished tail for the next block
      size_t cut = tok_ ? text_cut(block) : block.find_last_of(" \n\t,");
      if (cut == std::string::npos) cut = 0;
      carry_ = block.substr(cut);
      block.resize(cut);
    }
    if (tok_) {
      auto ids = tok_->encode(block);
      pending_.insert(pending_.end(), ids.begin(), ids.end());
    } else {
      parse_ids_into(block);
    }
    return true;
  }

  // Where to split text so that tokenizing the halves equals tokenizing the whole: between a newline
  // and a letter or digit, a pre-tokenizer boundary in the GPT-2 / Llama-3 / Qwen patterns (letters
  // and digits never absorb a preceding newline; punctuation may absorb following newlines, so a cut
  // right after punctuation would not be safe). Falls back to the last whitespace for text without
  // line breaks.
  static size_t text_cut(const std::string& b) {
    for (size_t i = b.size(); i-- > 1;)
      if (b[i - 1] == '\n' && std::isalnum(static_cast<unsigned char>(b[i]))) return i;
    return b.find_last_of(" \n\t");
  }

  void parse_ids_into(const std::string& text) {
    size_t i = 0;
    while (i < text.size()) {
      if (text[i] == ',' || std::isspace(static_cast<unsigned char>(text[i]))) {
        ++i;
        continue;
      }
      size_t j = i;
      int64_t v = 0;
      for (; j < text.size() && std::isdigit(static_cast<unsigned char>(text[j])); ++j)
        if (v <= vocab_) v = v * 10 + (text[j] - '0');  // saturates past the vocabulary
      LINFER_CHECK(j > i && (j == text.size() || text[j] == ',' || std::isspace(static_cast<unsigned char>(text[j]))),
                   "stream --ids: '{}' is not a token id", text.substr(i, std::min<size_t>(20, text.size() - i)));
      LINFER_CHECK(v < vocab_, "stream --ids: token id {} is outside the vocabulary ({})", v, vocab_);
      pending_.push_back(int32_t(v));
      i = j;
    }
  }

  std::istream& in_;
  const Tokenizer* tok_;
  int64_t vocab_;
  std::vector<int32_t> pending_;
  size_t pos_ = 0;
  std::string carry_;
  bool eof_ = false;
};

// -log softmax(row)[target]
double nll(const float* row, int64_t vocab, int32_t target) {
  float mx = row[0];
  for (int64_t v = 1; v < vocab; ++v) mx = std::max(mx, row[v]);
  double sum = 0;
  for (int64_t v = 0; v < vocab; ++v) sum += std::exp(double(row[v] - mx));
  return std::log(sum) + mx - row[target];
}

}  // namespace

void add_stream(CLI::App& app) {
  auto* cmd = app.add_subcommand("stream", "run an unbounded token stream through the model in constant memory");
  struct Args {
    std::string model, input = "-";
    bool ids = false;
    int64_t chunk = 256, report_every = 100000, max_tokens = -1;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--model", a->model, "model folder (default: the embedded demo model)");
  cmd->add_option("--input", a->input, "input file, or - for stdin (default)");
  cmd->add_flag("--ids", a->ids, "the input is token ids separated by commas or whitespace, not text");
  cmd->add_option("--chunk", a->chunk, "tokens per forward call")->check(CLI::PositiveNumber);
  cmd->add_option("--report-every", a->report_every, "tokens between progress lines (0: none)");
  cmd->add_option("--max-tokens", a->max_tokens, "stop after this many tokens (default: end of input)");
  cmd->callback([a] {
    const std::string dir = a->model.empty() ? demo_model_dir() : a->model;
    auto model = Model::load(dir);
    std::unique_ptr<Tokenizer> tok = a->ids ? nullptr : Tokenizer::load(dir);
    const int64_t V = model->info().vocab_size;

    std::ifstream file;
    if (a->input != "-") {
      file.open(a->input, std::ios::binary);
      LINFER_CHECK(file.good(), "stream: cannot open {}", a->input);
    }
    TokenReader reader(a->input == "-" ? std::cin : file, tok.get(), V);

    bool growing = false;
    for (const auto& t : model->state_spec().tensors) growing = growing || t.kind == StateKind::Growing;
    if (growing)
      fmt::print(stderr, "stream: this model has full-attention layers; their KV grows with the stream "
                         "(memory is constant only for pure-recurrent models)\n");

    SequenceState s(model->state_spec());
    SequenceState* sp = &s;
    std::vector<float> logits(size_t(a->chunk * V)), prev(static_cast<size_t>(V));
    std::vector<int32_t> chunk;
    bool have_prev = false;
    double nll_sum = 0;
    int64_t scored = 0, total = 0, next_report = a->report_every;
    using clock = std::chrono::steady_clock;
    const auto t0 = clock::now();
    auto report = [&](FILE* out, const char* tag) {
      double secs = std::chrono::duration<double>(clock::now() - t0).count();
      auto [rss, hwm] = resident_bytes();
      fmt::print(out, "{} tokens: {}  tokens/s: {:.1f}  log-ppl: {:.4f} nats/token  state: {} bytes  "
                      "rss: {:.1f} MiB  peak rss: {:.1f} MiB\n",
                 tag, total, double(total) / std::max(secs, 1e-9), scored ? nll_sum / double(scored) : 0.0,
                 s.bytes(), double(rss) / (1 << 20), double(hwm) / (1 << 20));
      std::fflush(out);
    };

    while (a->max_tokens < 0 || total < a->max_tokens) {
      chunk.clear();
      size_t want = size_t(a->max_tokens < 0 ? a->chunk : std::min(a->chunk, a->max_tokens - total));
      if (!reader.next(want, chunk)) break;
      model->forward(Batch::single(chunk), {&sp, 1}, logits.data(), Logits::All);
      // token i is predicted by the row before it: the previous chunk's last row for i == 0
      for (size_t i = 0; i < chunk.size(); ++i) {
        const float* row = i == 0 ? (have_prev ? prev.data() : nullptr) : logits.data() + (i - 1) * size_t(V);
        if (!row) continue;
        nll_sum += nll(row, V, chunk[i]);
        ++scored;
      }
      std::copy_n(logits.data() + (chunk.size() - 1) * size_t(V), size_t(V), prev.data());
      have_prev = true;
      total += int64_t(chunk.size());
      if (a->report_every > 0 && total >= next_report) {
        report(stderr, "stream:");
        next_report += a->report_every;
      }
    }
    report(stdout, "done:");
  });
}

}  // namespace linfer::cli
