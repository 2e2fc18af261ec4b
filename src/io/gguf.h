#pragma once
// GGUF files (llama.cpp's container, versions 2 and 3, little-endian): metadata key/values of every
// GGUF value type (nested arrays included) and tensor infos, parsed and validated against the file
// size before anything is exposed; tensors are views into the read-only mmap (no copy).
//
// Layout: "GGUF", u32 version, u64 tensor count, u64 key/value count, the key/values (string key,
// u32 type, value), the tensor infos (string name, u32 n_dims, u64 ne[n_dims] fastest-varying first,
// u32 ggml type, u64 offset into the data section), padding to general.alignment (default 32), data.
// A truncated or lying file (counts past the end, strings too long, offsets or sizes past the end,
// overlapping or misaligned tensors, unknown types, shapes whose product overflows) is a
// linfer::Error naming the file, the key or tensor, and what is wrong.
//
//   GgufFile f("model.gguf");
//   std::string arch = f.header().get_string("general.architecture");
//   int64_t n = f.header().get_int(arch + ".block_count");
//   const GgufTensorInfo& t = f.header().tensor("token_embd.weight");
//   TensorView v = f.view(t);   // shape row-major: GGUF's ne reversed, e.g. [vocab, hidden]
//
// Thread-safety: immutable after construction; share freely.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "linfer/core/mmap_file.h"
#include "linfer/core/tensor.h"

namespace linfer {

enum class GgufType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, Bool = 7, String = 8, Array = 9,
  U64 = 10, I64 = 11, F64 = 12,
};
const char* gguf_type_name(GgufType t);

// One metadata value. Integers of every width are kept as int64 or uint64 (by signedness), floats
// as double; arrays hold their elements (all of type `elem`).
struct GgufValue {
  GgufType type = GgufType::U8;
  int64_t i = 0;        // I8 .. I64, Bool (0 / 1)
  uint64_t u = 0;       // U8 .. U64
  double f = 0;         // F32, F64
  std::string str;      // String
  GgufType elem = GgufType::U8;  // Array: element type
  std::vector<GgufValue> items;  // Array

  bool is_int() const;
  bool is_float() const { return type == GgufType::F32 || type == GgufType::F64; }
};

// A ggml tensor type as GGUF numbers it.
struct GgmlType {
  uint32_t id;
  const char* name;      // "F32", "BF16", "Q4_K", ...
  int64_t block;         // elements per block (1 for element types)
  size_t block_bytes;    // bytes per block
  std::optional<DType> dtype;  // nullopt: linfer cannot compute with it (yet)
};
// nullptr for an id ggml does not define (or no longer supports).
const GgmlType* find_ggml_type(uint32_t id);

struct GgufTensorInfo {
  std::string name;
  const GgmlType* type = nullptr;
  Shape ne;            // as stored: ne[0] varies fastest (a weight [out, in] is ne = {in, out})
  Shape shape;         // row-major, linfer's order: ne reversed
  uint64_t offset = 0; // into the data section, as stored
  size_t begin = 0;    // absolute byte range in the file
  size_t end = 0;
  int64_t numel() const { return shape_numel(shape); }
  double bits_per_weight() const;
};

struct GgufHeader {
  std::string label;  // the file, for messages
  uint32_t version = 0;
  uint64_t alignment = 32;
  size_t data_begin = 0;
  std::vector<std::pair<std::string, GgufValue>> metadata;  // in file order
  std::vector<GgufTensorInfo> tensors;                      // in file order

  const GgufValue* find(const std::string& key) const;
  const GgufTensorInfo* find_tensor(const std::string& name) const;
  const GgufTensorInfo& tensor(const std::string& name) const;  // throws naming file and tensor
  // Typed getters: throw naming the file and key when absent or of another type.
  int64_t get_int(const std::string& key) const;
  double get_float(const std::string& key) const;  // floats or integers
  bool get_bool(const std::string& key) const;
  const std::string& get_string(const std::string& key) const;
  const GgufValue& get_array(const std::string& key, GgufType elem) const;
  std::optional<int64_t> opt_int(const std::string& key) const;
  std::optional<double> opt_float(const std::string& key) const;
  std::optional<bool> opt_bool(const std::string& key) const;
  std::optional<std::string> opt_string(const std::string& key) const;
  // An integer key written either once (same for every layer) or as one value per layer.
  std::vector<int64_t> per_layer_ints(const std::string& key, int64_t n_layers) const;

  std::unordered_map<std::string, size_t> key_index, tensor_index;  // name -> position
};

// Parses and validates a whole GGUF file held in memory (`file` is every byte of it); `label` names
// it in errors. The in-memory entry point the fuzzer drives.
GgufHeader parse_gguf(std::span<const std::byte> file, const std::string& label);

// True when the file at `path` is a regular file starting with the GGUF magic.
bool is_gguf_file(const std::string& path);

// One mmap'd .gguf file.
class GgufFile {
 public:
  explicit GgufFile(const std::string& path);
  const std::string& path() const { return map_.path(); }
  const GgufHeader& header() const { return header_; }
  // The bytes of tensor t (from header()).
  std::span<const std::byte> bytes(const GgufTensorInfo& t) const { return {map_.data() + t.begin, t.end - t.begin}; }
  // A view of tensor t; throws naming the tensor when linfer cannot compute with its type.
  TensorView view(const GgufTensorInfo& t) const;

 private:
  MappedFile map_;
  GgufHeader header_;
};

}  // namespace linfer
