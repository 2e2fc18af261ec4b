// linfer — command-line entry point. Logs go to stderr; results (ids, text, tables) to stdout.

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "linfer/core/error.h"
#include "linfer/core/quant_activations.h"
#include "linfer/core/thread_pool.h"
#include "linfer/core/weight_arena.h"

int main(int argc, char** argv) {
  CLI::App app{"linfer: inference for language models with a fixed-size recurrent state"};
  app.require_subcommand(1);
  app.fallthrough();
  int threads = 0;
  app.add_option("--threads", threads, "worker threads including the caller: 1..4x cores (default 0: all cores)");
  std::string activations = "f32";
  app.add_option("--activations", activations,
                 "what the CPU rounds activations to before multiplying lower-precision weights: f32 (nothing, the "
                 "default), bf16 (the prefill GEMM of BF16 and quantized weights and every product of BF16 "
                 "weights, on AVX-512 BF16 CPUs, as llama.cpp does for BF16 files: less exact; faster prefill on "
                 "Zen 4, faster batched decode) or q8 (bf16's, and Q8_0 / Q4_0 / Q4_K / Q6_K weights in "
                 "decode-sized products: int8 per run of 32, as llama.cpp does; faster decode of one sequence at 4 "
                 "bits, less exact; docs/quantization.md)")
      ->check(CLI::Validator(
          [](std::string& name) {
            if (linfer::parse_quant_activations(name)) return std::string();
            std::vector<std::string> names;
            for (auto a : linfer::kQuantActivations) names.emplace_back(linfer::quant_activations_name(a));
            return fmt::format("one of {} expected", fmt::join(names, ", "));
          },
          ""));
  bool mmap = false;
  app.add_flag("--mmap", mmap,
               "read CPU weights where the checkpoint file is mapped, in the page cache's 4 KiB pages, instead of "
               "copies in huge pages made at load (the default: decode streams them faster): less memory where a "
               "model is larger than RAM or shared by several processes");
  app.parse_complete_callback([&] {
    linfer::set_resident_weights(!mmap);
    linfer::set_num_threads(threads);
    linfer::set_quant_activations(*linfer::parse_quant_activations(activations));
  });
  for (auto add : linfer::cli::kCommands) add(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const linfer::Error& e) {
    fmt::print(stderr, "linfer: error: {}\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "linfer: internal error: {}\n", e.what());
    return 2;
  }
  return 0;
}
