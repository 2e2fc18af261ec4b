#pragma once
// A read-only memory map of a whole file. Checkpoint tensors are views into it: loading a model
// reads nothing until a weight is touched.

#include <cstddef>
#include <string>

namespace linfer {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);  // throws Error naming the path and the OS reason
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
};

// Drops the pages of [p, p + n) that lie wholly inside a live MappedFile from this process's memory (a later read
// faults them back in from the file): for a copy made from a mapped checkpoint at load, so that the source's pages
// do not stay resident beside it. Bytes outside every live mapping are left alone. Returns the bytes dropped.
size_t release_mapped(const void* p, size_t n);

}  // namespace linfer
