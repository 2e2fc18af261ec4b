#include "models/checkpoint.h"

#include <algorithm>
#include <cstdio>

#include "io/gguf.h"
#include "io/safetensors.h"
#include "linfer/core/error.h"
#include "models/gguf_checkpoint.h"

namespace linfer {

namespace {

std::string read_text(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  LINFER_CHECK(f, "cannot open {}", path);
  std::string s;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
  std::fclose(f);
  return s;
}

bool is_weight_type(DType t) { return t == DType::F32 || t == DType::BF16 || t == DType::F16 || is_quantized(t); }

std::unique_ptr<Checkpoint> open_safetensors(const std::string& dir) {
  const std::string config_path = dir + "/config.json";
  auto ck = std::make_unique<Checkpoint>(dir, read_text(config_path), config_path);
  auto files = std::make_shared<const SafetensorsDir>(dir);
  for (const auto& name : files->names()) {
    const SafetensorsEntry& e = files->entry(name);
    Checkpoint::Entry out{files->file_of(name), e.dtype_name, e.dtype, e.shape, {}};
    std::optional<TensorView> view;
    if (e.dtype) {
      view = files->get(name);
      out.bytes = {static_cast<const std::byte*>(view->data()), e.end - e.begin};
    }
    ck->add(name, std::move(out), view);
  }
  ck->keep(std::move(files));
  return ck;
}

}  // namespace

std::unique_ptr<Checkpoint> Checkpoint::open(const std::string& path) {
  if (is_gguf_file(path)) return open_gguf_checkpoint(path);
  return open_safetensors(path);
}

Checkpoint::Checkpoint(std::string path, std::string config_text, std::string config_label)
    : path_(std::move(path)), config_text_(std::move(config_text)), config_label_(std::move(config_label)) {}

void Checkpoint::add(const std::string& name, Entry e, std::optional<TensorView> view) {
  auto [it, inserted] = index_.emplace(name, Slot{std::move(e), std::move(view)});
  LINFER_CHECK(inserted, "{}: tensor '{}' appears twice", path_, name);
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  out.reserve(index_.size());
  for (const auto& [name, slot] : index_) out.push_back(name);
  std::sort(out.begin(), out.end());
  return out;
}

const Checkpoint::Slot& Checkpoint::slot(const std::string& name) const {
  auto it = index_.find(name);
  LINFER_CHECK(it != index_.end(), "tensor '{}' not found in {}", name, path_);
  return it->second;
}

const Checkpoint::Entry& Checkpoint::entry(const std::string& name) const { return slot(name).entry; }

const TensorView* Checkpoint::find(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) return nullptr;
  const Slot& s = it->second;
  LINFER_CHECK(s.view.has_value(), "{}: tensor '{}' has type {}, which linfer does not support", s.entry.file, name,
               s.entry.dtype_name);
  return &*s.view;
}

TensorView Checkpoint::get(const std::string& name) const {
  const Slot& s = slot(name);
  LINFER_CHECK(s.view.has_value(), "{}: tensor '{}' has type {}, which linfer does not support", s.entry.file, name,
               s.entry.dtype_name);
  return *s.view;
}

TensorView Checkpoint::get(const std::string& name, const Shape& expected) const {
  const Slot& s = slot(name);
  LINFER_CHECK(s.view.has_value() && is_weight_type(s.view->dtype()),
               "{}: tensor '{}' has type {}; expected a float tensor (F32, BF16 or F16) or a quantized one",
               s.entry.file, name, s.entry.dtype_name);
  LINFER_CHECK(s.entry.shape == expected, "{}: tensor '{}' has shape {}; expected {}", s.entry.file, name,
               shape_str(s.entry.shape), shape_str(expected));
  return *s.view;
}

}  // namespace linfer
