#pragma once
// A .gguf file written by llama.cpp's converter, mapped back to what the Hugging Face checkpoint
// it came from looks like to linfer: `general.architecture` picks a mapper (one file per
// architecture: gguf_kimi_linear.cpp, gguf_qwen3_next.cpp, gguf_mamba2.cpp) that
//   - writes the config.json the architecture factory reads, from the `<arch>.*` metadata and the
//     tensor shapes;
//   - names every tensor as the model code expects it: a view of the file's bytes where the
//     converter only renamed or reshaped it, a tensor computed once at load where it changed the
//     values (A_log stored as -exp(A_log), (1 + w) norms stored with the 1 added, packed projections
//     split, MLA's kv_b split into k_b^T and v_b, experts stacked into one 3-D tensor per kind);
//   - accounts for every tensor in the file: one no mapping used is an error naming it.

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "io/gguf.h"
#include "models/checkpoint.h"

namespace linfer {

std::unique_ptr<Checkpoint> open_gguf_checkpoint(const std::string& path);

// What a per-architecture mapper works with.
class GgufMapper {
 public:
  GgufMapper(std::shared_ptr<const GgufFile> file, Checkpoint& out);

  const GgufHeader& meta() const { return file_->header(); }
  const std::string& label() const { return file_->path(); }
  const std::string& arch() const { return arch_; }
  // "<arch>.<suffix>", the converter's per-architecture keys.
  std::string key(const std::string& suffix) const { return arch_ + "." + suffix; }
  static std::string blk(int64_t layer, const std::string& name) { return fmt::format("blk.{}.{}", layer, name); }

  bool has(const std::string& gguf) const { return meta().find_tensor(gguf) != nullptr; }
  const GgufTensorInfo& info(const std::string& gguf) const { return meta().tensor(gguf); }
  TensorView view(const std::string& gguf) const { return file_->view(info(gguf)); }
  Tensor f32(const std::string& gguf) const { return Tensor::to_f32(view(gguf)); }  // dequantized copy

  // The GGUF tensor under its Hugging Face name, bytes unchanged (`shape`: a reshape).
  void alias(const std::string& gguf, const std::string& hf, std::optional<Shape> shape = std::nullopt);
  // alias() for each (gguf suffix, hf suffix) present in layer `layer`.
  void alias_layer(int64_t layer, const std::string& hf_prefix,
                   std::initializer_list<std::pair<const char*, const char*>> names);
  // A stacked expert tensor [E, rows, cols] as E views named fmt::format(hf_pattern, e).
  void split_experts(const std::string& gguf, const std::string& hf_pattern);
  // A tensor computed at load from `sources` (GGUF names, marked used).
  void owned(const std::vector<std::string>& sources, const std::string& hf, Tensor t);
  // Every tensor whose name starts with `prefix` is known and deliberately unused (e.g. MTP layers).
  void ignore_prefix(const std::string& prefix) { ignored_.push_back(prefix); }
  // Throws naming the tensors nothing used.
  void check_all_used() const;

 private:
  std::shared_ptr<const GgufFile> file_;
  Checkpoint& out_;
  std::string arch_;
  std::set<std::string> used_;
  std::vector<std::string> ignored_;
};

// The per-architecture mappers: add the tensors to m's checkpoint, return config.json.
nlohmann::json kimi_linear_from_gguf(GgufMapper& m);
nlohmann::json qwen3_next_from_gguf(GgufMapper& m);
nlohmann::json mamba2_from_gguf(GgufMapper& m);

// Helpers the mappers share.
// A = -exp(A_log) as the converter stores it, back to A_log (float32, same shape).
Tensor a_log_from_a(const Tensor& a, const std::string& what);
// tokenizer.ggml.{bos,eos}_token_id, vocab from token_embd, hidden, layers, tie: the fields every
// architecture's config.json has.
nlohmann::json common_config(const GgufMapper& m, const std::string& model_type);

}  // namespace linfer
