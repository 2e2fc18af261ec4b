#pragma once
// A checkpoint as the model loader sees it, whichever files hold it: config.json's text and every
// tensor by its Hugging Face name. A folder (config.json + *.safetensors) is read as is; a .gguf file
// (llama.cpp's converter output) is mapped back: its metadata becomes the config.json the
// architecture factory reads, its tensors get the names and layouts the model code expects
// (models/gguf_checkpoint.h), as views where the bytes are unchanged and as tensors made once at
// load where the converter transformed them.
//
//   auto ck = Checkpoint::open(path);                       // folder or .gguf
//   Config c = Config::parse(ck->config_text(), ck->config_label());
//   TensorView w = ck->get("model.layers.0.mlp.up_proj.weight", {I, hidden});
//
// Thread-safety: immutable after open(); share freely.

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "linfer/core/tensor.h"

namespace linfer {

class Checkpoint {
 public:
  struct Entry {
    std::string file;            // the file that holds it (for messages)
    std::string dtype_name;      // as the file names its type: "BF16", "Q4_K", "U8", ...
    std::optional<DType> dtype;  // nullopt: a type linfer does not compute with
    Shape shape;                 // row-major
    std::span<const std::byte> bytes;  // the stored bytes (fingerprinting); empty if dtype is nullopt
  };

  // A folder with config.json + safetensors, or a .gguf file.
  static std::unique_ptr<Checkpoint> open(const std::string& path);

  Checkpoint(std::string path, std::string config_text, std::string config_label);
  const std::string& dir() const { return path_; }  // the folder or the .gguf file
  const std::string& config_text() const { return config_text_; }
  const std::string& config_label() const { return config_label_; }

  bool has(const std::string& name) const { return index_.count(name) != 0; }
  std::vector<std::string> names() const;  // sorted
  // The view of `name`, or nullptr. Throws if the tensor exists with a type linfer cannot use.
  const TensorView* find(const std::string& name) const;
  // Any representable type; throws "tensor 'x' not found in <path>".
  TensorView get(const std::string& name) const;
  // A weight: float (F32 / BF16 / F16) or block-quantized, of exactly `expected` shape.
  TensorView get(const std::string& name, const Shape& expected) const;
  const std::string& file_of(const std::string& name) const { return entry(name).file; }
  const Entry& entry(const std::string& name) const;

  // Building (open() and the GGUF mappers): `view` must stay valid while `owner` (kept) lives.
  void add(const std::string& name, Entry e, std::optional<TensorView> view);
  void keep(std::shared_ptr<const void> owner) { owners_.push_back(std::move(owner)); }
  void set_config(std::string text, std::string label) {
    config_text_ = std::move(text);
    config_label_ = std::move(label);
  }

 private:
  struct Slot {
    Entry entry;
    std::optional<TensorView> view;
  };
  const Slot& slot(const std::string& name) const;

  std::string path_, config_text_, config_label_;
  std::unordered_map<std::string, Slot> index_;
  std::vector<std::shared_ptr<const void>> owners_;  // mmaps and tensors the views point into
};

}  // namespace linfer
