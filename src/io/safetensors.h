#pragma once
// Safetensors checkpoints: one file, a sharded set with model.safetensors.index.json, or a folder of
// *.safetensors without an index. Files are mmap'd; tensors are views into the mapping (no copy).
// Every header is validated before any tensor is exposed: a truncated file, a lying offset, bad JSON
// or an overflowing shape is a linfer::Error naming the file and the tensor, never an out-of-bounds
// read.
//
//   SafetensorsDir w("path/to/hf-folder");
//   TensorView emb = w.get("model.embed_tokens.weight", {vocab, hidden});  // float, shape checked
//   if (const TensorView* b = w.find("lm_head.bias")) ...                  // optional tensor
//
// Thread-safety: immutable after construction; share freely.

#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "linfer/core/mmap_file.h"
#include "linfer/core/tensor.h"

namespace linfer {

// Block-quantized weights (docs/quantization.md): a U8 tensor whose last dimension holds a row's blocks
// (shape [..., K / block · block_bytes]) and a "__metadata__" entry "linfer.quant.<tensor name>" naming its
// type ("q8_0", "q4_0", "q4_k", "q6_k"). Such a tensor is exposed with that DType and its logical shape
// [..., K], its dtype_name the type in capitals ("Q4_K").
inline constexpr std::string_view kQuantMetadataPrefix = "linfer.quant.";

// One tensor as its header describes it.
struct SafetensorsEntry {
  std::string name;
  std::string dtype_name;      // as written: "BF16", "F32", "BOOL", "U8", ... ("Q4_K" ...: see above)
  std::optional<DType> dtype;  // nullopt for types linfer never computes in (BOOL, U8, I8, F8_*, ...)
  Shape shape;
  size_t begin = 0;            // byte range within the file (absolute, header included)
  size_t end = 0;
};

struct SafetensorsHeader {
  std::vector<SafetensorsEntry> tensors;           // in header order
  std::map<std::string, std::string> metadata;     // "__metadata__", if any
  size_t data_begin = 0;                           // 8 + header length
};

// Parses and validates the header of a whole safetensors file held in memory (`file` is every byte
// of it); `label` names the file in errors. The in-memory entry point the fuzzer drives.
SafetensorsHeader parse_safetensors(std::span<const std::byte> file, const std::string& label);

// One mmap'd .safetensors file.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  const std::string& path() const { return map_.path(); }
  const SafetensorsHeader& header() const { return header_; }
  // A view of entry e (which must come from header()); throws if linfer cannot represent its dtype.
  TensorView view(const SafetensorsEntry& e) const;

 private:
  MappedFile map_;
  SafetensorsHeader header_;
};

// Every tensor of a checkpoint folder, by name.
class SafetensorsDir {
 public:
  // dir holds model.safetensors, or model.safetensors.index.json + its shards, or *.safetensors.
  explicit SafetensorsDir(const std::string& dir);

  const std::string& dir() const { return dir_; }
  bool has(const std::string& name) const { return index_.count(name) != 0; }
  std::vector<std::string> names() const;  // sorted
  // The view of `name`, or nullptr. Throws if the tensor exists with a dtype linfer cannot represent.
  const TensorView* find(const std::string& name) const;
  // Any representable dtype; throws "tensor 'x' not found in <dir>".
  TensorView get(const std::string& name) const;
  // A weight: must be F32 / BF16 / F16 or block-quantized and have exactly `expected` shape; errors
  // name tensor + file.
  TensorView get(const std::string& name, const Shape& expected) const;
  // The file that holds `name` (for error messages); throws if absent.
  const std::string& file_of(const std::string& name) const;
  const SafetensorsEntry& entry(const std::string& name) const;

 private:
  struct Slot {
    const SafetensorsFile* file;
    const SafetensorsEntry* entry;
    std::optional<TensorView> view;  // nullopt: dtype not representable
  };
  const Slot& slot(const std::string& name) const;
  void add_file(const std::string& path);

  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::unordered_map<std::string, Slot> index_;
};

}  // namespace linfer
