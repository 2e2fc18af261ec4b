// linfer state info FILE
// Prints a state file's header — format version, model and tokenizer fingerprints, tokens, layers —
// and its bytes per tensor role and per kind, after verifying every checksum (no model needed).

#include <map>
#include <sys/stat.h>

#include <fmt/format.h>

#include "cli/commands.h"
#include "runtime/state_format.h"

namespace linfer::cli {

namespace {

void print_info(const std::string& path) {
  FileSource in(path);
  StateReader reader(in);
  std::vector<uint64_t> stored = reader.verify();
  const StateHeader& h = reader.header();

  struct Row {
    std::string kind, dtype, shape;
    int layers = 0;
    uint64_t raw = 0, stored = 0;
  };
  std::map<std::string, Row> by_role;
  std::map<std::string, uint64_t> by_kind;
  std::map<int, int> layers;
  uint64_t raw_total = 0, stored_total = 0;
  for (size_t i = 0; i < h.tensors.size(); ++i) {
    const auto& t = h.tensors[i];
    Row& r = by_role[t.name];
    r.kind = state_kind_name(t.kind);
    r.dtype = std::string(dtype_name(t.dtype));
    r.shape = t.kind == StateKind::Fixed ? shape_str(t.shape) : fmt::format("{} x {}", t.rows, shape_str(t.shape));
    ++r.layers;
    r.raw += t.raw_bytes;
    r.stored += stored[i];
    by_kind[r.kind] += stored[i];
    ++layers[t.layer];
    raw_total += t.raw_bytes;
    stored_total += stored[i];
  }
  struct stat st {};
  ::stat(path.c_str(), &st);

  fmt::print("file:       {} ({} bytes, verified)\n", path, int64_t(st.st_size));
  fmt::print("format:     linfer state v{}\n", h.version);
  fmt::print("model:      {}\n", h.model_fingerprint);
  fmt::print("tokenizer:  {}\n", h.tokenizer_fingerprint.empty() ? "(none: token ids)" : h.tokenizer_fingerprint);
  fmt::print("tokens:     {}\n", h.n_tokens);
  fmt::print("layers:     {} with state, {} tensors\n", layers.size(), h.tensors.size());
  fmt::print("logits:     {}\n", h.logits_vocab ? fmt::format("last token, vocab {} ({} bytes stored)",
                                                              h.logits_vocab, stored.back())
                                                : std::string("none"));
  fmt::print("\n{:<16} {:>6} {:<8} {:<5} {:<22} {:>14} {:>14}\n", "role", "layers", "kind", "dtype",
             "shape per layer", "bytes", "stored");
  for (const auto& [name, r] : by_role)
    fmt::print("{:<16} {:>6} {:<8} {:<5} {:<22} {:>14} {:>14}\n", name, r.layers, r.kind, r.dtype, r.shape,
               r.raw, r.stored);
  fmt::print("{:<16} {:>6} {:<8} {:<5} {:<22} {:>14} {:>14}\n", "total", "", "", "", "", raw_total,
             stored_total);
  fmt::print("\nstored bytes by kind:");
  for (const auto& [kind, bytes] : by_kind) fmt::print("  {} {}", kind, bytes);
  fmt::print("\n");
}

}  // namespace

void add_state(CLI::App& app) {
  auto* cmd = app.add_subcommand("state", "inspect saved state files");
  cmd->require_subcommand(1);
  auto* info = cmd->add_subcommand("info", "print a state file's header and sizes (checks every checksum)");
  auto path = std::make_shared<std::string>();
  info->add_option("FILE", *path, "state file")->required();
  info->callback([path] { print_info(*path); });
}

}  // namespace linfer::cli
