#pragma once
// Writes one .safetensors file tensor by tensor: every tensor's name, dtype, shape and byte count are
// declared first (the header needs all offsets), then each tensor's bytes are written in declaration
// order, so a converter holds one tensor in memory at a time.
//
//   SafetensorsWriter w(path, {{"__metadata__ key", "value"}});
//   w.declare("a.weight", "BF16", {4, 8}, 64);
//   w.declare("b.weight", "U8", {4, 36}, 144);
//   w.begin();                 // writes the header
//   w.write(bytes_a, 64);      // "a.weight", then "b.weight" ...
//   w.finish();                // checks every declared byte was written, closes the file
//
// Not thread-safe. Errors (I/O, a byte count that does not match) are linfer::Error naming the file.

#include <cstddef>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "linfer/core/tensor.h"

namespace linfer {

class SafetensorsWriter {
 public:
  SafetensorsWriter(std::string path, std::map<std::string, std::string> metadata);
  ~SafetensorsWriter();
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;

  void declare(const std::string& name, const std::string& dtype, const Shape& shape, size_t nbytes);
  void begin();
  // The next bytes of the tensors, in declaration order (a tensor may come in several pieces).
  void write(const void* data, size_t n);
  void finish();

 private:
  struct Entry {
    std::string name, dtype;
    Shape shape;
    size_t nbytes;
  };
  std::string path_;
  std::map<std::string, std::string> metadata_;
  std::vector<Entry> entries_;
  std::FILE* f_ = nullptr;
  size_t total_ = 0, written_ = 0;
};

}  // namespace linfer
