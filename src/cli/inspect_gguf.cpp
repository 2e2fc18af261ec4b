#include "cli/inspect_gguf.h"

#include <map>

#include <fmt/format.h>

#include "io/gguf.h"

namespace linfer::cli {

// The GGUF file as llama.cpp wrote it: metadata summary, tensors with their types, bits per weight.
void print_gguf(const std::string& path) {
  const GgufFile f(path);
  const GgufHeader& h = f.header();
  fmt::print("gguf: version {}, {} metadata keys, {} tensors, alignment {}\n", h.version, h.metadata.size(),
             h.tensors.size(), h.alignment);
  for (const char* key : {"general.architecture", "general.name", "general.file_type", "general.quantization_version",
                          "tokenizer.ggml.model", "tokenizer.ggml.pre"}) {
    const GgufValue* v = h.find(key);
    if (!v) continue;
    fmt::print("  {}: {}\n", key, v->type == GgufType::String ? v->str : v->is_int() ? std::to_string(h.get_int(key))
                                                                                        : gguf_type_name(v->type));
  }
  if (const GgufValue* t = h.find("tokenizer.ggml.tokens")) fmt::print("  tokenizer.ggml.tokens: {} tokens\n", t->items.size());
  std::map<std::string, std::pair<int64_t, double>> by_type;  // type -> (elements, bytes)
  int64_t n = 0;
  double bytes = 0;
  fmt::print("tensors (type, shape row-major, bits per weight):\n");
  for (const auto& t : h.tensors) {
    fmt::print("  {:<40} {:<5} {:<20} {:.2f}\n", t.name, t.type->name, shape_str(t.shape), t.bits_per_weight());
    by_type[t.type->name].first += t.numel();
    by_type[t.type->name].second += double(t.end - t.begin);
    n += t.numel();
    bytes += double(t.end - t.begin);
  }
  for (const auto& [type, nb] : by_type)
    fmt::print("  {}: {} weights, {:.1f} KiB, {:.2f} bits per weight\n", type, nb.first, nb.second / 1024, nb.second * 8 / double(nb.first));
  fmt::print("bits per weight (whole file's tensors): {:.2f}\n", n ? bytes * 8 / double(n) : 0.0);
}

}  // namespace linfer::cli
