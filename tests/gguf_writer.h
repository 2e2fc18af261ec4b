#pragma once
// A GGUF writer for tests only, written from the format's specification (not from llama.cpp's
// writer): key/values and tensors in, file bytes out. Every field can be set to a lie (counts,
// offsets, types, dims), so that tests can build each malformed file the reader must refuse.
//
//   GgufWriter w;
//   w.kv_string("general.architecture", "mamba2");
//   w.tensor("token_embd.weight", {hidden, vocab}, GgufWriter::kF32, bytes);   // ne order
//   std::string file = w.build();

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace linfer::test {

class GgufWriter {
 public:
  // GGUF value types and ggml tensor types used by the tests.
  enum Value : uint32_t { kU8 = 0, kI8, kU16, kI16, kU32, kI32, kF32v, kBool, kString, kArray, kU64, kI64, kF64 };
  enum Tensor : uint32_t { kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ8_0 = 8, kQ4_K = 12, kQ6_K = 14, kBF16 = 30 };

  static std::string le(uint64_t v, int bytes) {
    std::string s(size_t(bytes), '\0');
    for (int i = 0; i < bytes; ++i) s[size_t(i)] = char((v >> (8 * i)) & 0xff);
    return s;
  }
  static std::string str(const std::string& s) { return le(s.size(), 8) + s; }
  static std::string f32(float f) {
    uint32_t b;
    std::memcpy(&b, &f, 4);
    return le(b, 4);
  }
  static std::string f64(double f) {
    uint64_t b;
    std::memcpy(&b, &f, 8);
    return le(b, 8);
  }
  // An array value's encoding (element type, count, the already-encoded elements).
  static std::string array(uint32_t elem, const std::vector<std::string>& items) {
    std::string s = le(elem, 4) + le(items.size(), 8);
    for (const auto& it : items) s += it;
    return s;
  }

  // A key/value with its value already encoded.
  void kv(const std::string& key, uint32_t type, const std::string& value) {
    kvs_ += str(key) + le(type, 4) + value;
    ++n_kv_;
  }
  void kv_u32(const std::string& key, uint32_t v) { kv(key, kU32, le(v, 4)); }
  void kv_i32(const std::string& key, int32_t v) { kv(key, kI32, le(uint32_t(v), 4)); }
  void kv_u64(const std::string& key, uint64_t v) { kv(key, kU64, le(v, 8)); }
  void kv_f32(const std::string& key, float v) { kv(key, kF32v, f32(v)); }
  void kv_bool(const std::string& key, bool v) { kv(key, kBool, le(v, 1)); }
  void kv_string(const std::string& key, const std::string& v) { kv(key, kString, str(v)); }
  void kv_strings(const std::string& key, const std::vector<std::string>& v) {
    std::vector<std::string> items;
    for (const auto& s : v) items.push_back(str(s));
    kv(key, kArray, array(kString, items));
  }
  void kv_i32s(const std::string& key, const std::vector<int32_t>& v) {
    std::vector<std::string> items;
    for (int32_t x : v) items.push_back(le(uint32_t(x), 4));
    kv(key, kArray, array(kI32, items));
  }

  struct TensorSpec {
    std::string name;
    std::vector<uint64_t> ne;  // fastest-varying first
    uint32_t type;
    std::string data;
    std::optional<uint64_t> offset;  // default: packed after the previous tensor, aligned
  };
  TensorSpec& tensor(const std::string& name, std::vector<uint64_t> ne, uint32_t type, std::string data) {
    tensors_.push_back({name, std::move(ne), type, std::move(data), std::nullopt});
    return tensors_.back();
  }

  uint32_t version = 3;
  uint64_t alignment = 32;  // used for layout; write general.alignment yourself to change the file's
  std::optional<uint64_t> tensor_count, kv_count;  // lies, when set
  size_t truncate_to = SIZE_MAX;

  std::string build() const {
    std::string out = "GGUF" + le(version, 4) + le(tensor_count.value_or(tensors_.size()), 8) +
                      le(kv_count.value_or(n_kv_), 8) + kvs_;
    std::vector<uint64_t> offsets;
    uint64_t next = 0;
    for (const auto& t : tensors_) {
      const uint64_t off = t.offset.value_or(next);
      offsets.push_back(off);
      next = std::max(next, (off + t.data.size() + alignment - 1) / alignment * alignment);
      out += str(t.name) + le(t.ne.size(), 4);
      for (uint64_t d : t.ne) out += le(d, 8);
      out += le(t.type, 4) + le(off, 8);
    }
    while (out.size() % alignment) out += '\0';
    const size_t data_begin = out.size();
    for (size_t i = 0; i < tensors_.size(); ++i) {
      const size_t at = data_begin + size_t(offsets[i]);
      if (tensors_[i].offset && offsets[i] > (1u << 24)) continue;  // a lying offset: the bytes are nowhere
      if (out.size() < at + tensors_[i].data.size()) out.resize(at + tensors_[i].data.size(), '\0');
      std::memcpy(out.data() + at, tensors_[i].data.data(), tensors_[i].data.size());
    }
    if (truncate_to < out.size()) out.resize(truncate_to);
    return out;
  }

 private:
  std::string kvs_;
  uint64_t n_kv_ = 0;
  std::vector<TensorSpec> tensors_;
};

}  // namespace linfer::test
