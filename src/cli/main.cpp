// linfer — command-line entry point. Logs go to stderr; results (ids, text, tables) to stdout.

#include <fmt/format.h>

#include <cstdio>
#include <exception>

#include "cli/commands.h"
#include "linfer/core/error.h"
#include "linfer/core/thread_pool.h"

int main(int argc, char** argv) {
  CLI::App app{"linfer: inference for language models with a fixed-size recurrent state"};
  app.require_subcommand(1);
  app.fallthrough();
  int threads = 0;
  app.add_option("--threads", threads, "worker threads including the caller: 1..4x cores (default 0: all cores)");
  app.parse_complete_callback([&] { linfer::set_num_threads(threads); });
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
