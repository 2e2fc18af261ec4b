// linfer tokenize: text -> ids (comma-separated, one line) or, with --decode, ids -> text.
//   linfer tokenize --model DIR --text "Hello"        ->  9707,11
//   linfer tokenize --model DIR --decode 9707,11      ->  Hello
//   linfer tokenize --model DIR --text-file F --stats ->  ids, and the encode speed on stderr

#include <fmt/format.h>

#include <chrono>
#include <ctime>
#include <fstream>
#include <sstream>

#include "cli/commands.h"
#include "linfer/core/error.h"
#include "linfer/tokenizer.h"

namespace linfer::cli {
namespace {

struct TokenizeArgs {
  std::string model;
  std::string text;
  std::string text_file;
  std::string decode;
  bool special_as_text = false;
  bool stats = false;
};

std::vector<int32_t> parse_ids(const std::string& list) {
  std::vector<int32_t> ids;
  std::stringstream in(list);
  std::string item;
  while (std::getline(in, item, ',')) {
    size_t used = 0;
    long long id = -1;
    try {
      id = std::stoll(item, &used);
    } catch (const std::exception&) {
    }
    LINFER_CHECK(used > 0 && item.find_first_not_of(" \t", used) == std::string::npos && id >= 0 && id <= INT32_MAX,
                 "--decode: '{}' is not a token id (expected comma-separated integers)", item);
    ids.push_back(static_cast<int32_t>(id));
  }
  return ids;
}

void run(const TokenizeArgs& a) {
  const auto tokenizer = Tokenizer::load(a.model);
  if (!a.decode.empty()) {
    fmt::print("{}\n", tokenizer->decode(parse_ids(a.decode)));
    return;
  }
  std::string text = a.text;
  if (!a.text_file.empty()) {
    std::ifstream in(a.text_file, std::ios::binary);
    LINFER_CHECK(in, "--text-file {}: cannot open", a.text_file);
    std::stringstream buf;
    buf << in.rdbuf();
    text = buf.str();
  }
  const auto start = std::chrono::steady_clock::now();
  const std::clock_t cpu_start = std::clock();
  const std::vector<int32_t> ids =
      tokenizer->encode(text, a.special_as_text ? SpecialTokens::kAsText : SpecialTokens::kRecognize);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double cpu_seconds = static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
  fmt::print("{}\n", fmt::join(ids, ","));
  if (a.stats) {
    // CPU time as well: on a busy machine it is the steadier figure.
    fmt::print(stderr, "{} bytes -> {} tokens in {:.3f} s wall ({:.2f} MB/s), {:.3f} s CPU ({:.2f} MB/s), 1 thread; {}\n",
               text.size(), ids.size(), seconds, text.size() / 1e6 / seconds, cpu_seconds,
               text.size() / 1e6 / cpu_seconds, tokenizer->fingerprint());
  }
}

}  // namespace

void add_tokenize(CLI::App& app) {
  auto args = std::make_shared<TokenizeArgs>();
  auto* cmd = app.add_subcommand("tokenize", "text -> token ids (comma-separated), or --decode ids -> text");
  cmd->add_option("--model", args->model, "model folder with tokenizer.json or tiktoken.model")->required();
  auto* text = cmd->add_option("--text", args->text, "text to encode");
  auto* file = cmd->add_option("--text-file", args->text_file, "encode this file's contents");
  auto* decode = cmd->add_option("--decode", args->decode, "comma-separated ids to decode");
  text->excludes(file)->excludes(decode);
  file->excludes(decode);
  cmd->add_flag("--special-as-text", args->special_as_text, "tokenize special tokens in the text as plain text");
  cmd->add_flag("--stats", args->stats, "print size and encode speed to stderr");
  cmd->callback([args, text, file, decode] {
    LINFER_CHECK(text->count() + file->count() + decode->count() == 1, "tokenize: give --text, --text-file or --decode");
    run(*args);
  });
}

}  // namespace linfer::cli
