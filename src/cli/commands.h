#pragma once
// The `linfer` subcommands. Each lives in its own cmd_<name>.cpp and adds itself to the app through
// one function listed here; main.cpp calls them in this order (the order of `linfer --help`).

#include <CLI/CLI.hpp>

namespace linfer::cli {

void add_version(CLI::App& app);
void add_logits(CLI::App& app);
void add_generate(CLI::App& app);
void add_inspect(CLI::App& app);
void add_eval(CLI::App& app);
void add_bench(CLI::App& app);
void add_quantize(CLI::App& app);
void add_tokenize(CLI::App& app);
void add_prefill(CLI::App& app);
void add_state(CLI::App& app);
void add_stream(CLI::App& app);
void add_serve(CLI::App& app);

// Every command function, in help order.
inline constexpr void (*kCommands[])(CLI::App&) = {
    add_version,
    add_generate,
    add_logits,
    add_inspect,
    add_eval,
    add_bench,
    add_quantize,
    add_tokenize,
    add_prefill,
    add_state,
    add_stream,
    add_serve,
};

}  // namespace linfer::cli
