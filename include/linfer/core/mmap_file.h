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

}  // namespace linfer
