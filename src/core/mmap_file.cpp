#include "linfer/core/mmap_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>

#include "linfer/core/error.h"

namespace linfer {

namespace {

// The live mappings, by start address: their ends.
struct Mappings {
  std::mutex mu;
  std::map<uintptr_t, uintptr_t> ends;
};
Mappings& mappings() {
  static Mappings m;
  return m;
}

}  // namespace

size_t release_mapped(const void* p, size_t n) {
  const auto a = reinterpret_cast<uintptr_t>(p), b = a + n;
  const auto page = uintptr_t(::sysconf(_SC_PAGESIZE));
  Mappings& m = mappings();
  std::lock_guard lock(m.mu);
  auto it = m.ends.upper_bound(a);
  if (it == m.ends.begin()) return 0;
  --it;  // the mapping starting at or before a
  const uintptr_t lo = (std::max(a, it->first) + page - 1) / page * page, hi = std::min(b, it->second) / page * page;
  if (hi <= lo || ::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED) != 0) return 0;
  return hi - lo;
}

MappedFile::MappedFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open {}: {}", path, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    fail("cannot stat {}: {}", path, std::strerror(e));
  }
  size_ = size_t(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      fail("cannot map {}: {}", path, std::strerror(e));
    }
    data_ = static_cast<const std::byte*>(p);
    std::lock_guard lock(mappings().mu);
    mappings().ends[reinterpret_cast<uintptr_t>(p)] = reinterpret_cast<uintptr_t>(p) + size_;
  }
  ::close(fd);
}

MappedFile::~MappedFile() {
  if (!data_) return;
  {
    std::lock_guard lock(mappings().mu);
    mappings().ends.erase(reinterpret_cast<uintptr_t>(data_));
  }
  ::munmap(const_cast<std::byte*>(data_), size_);
}

}  // namespace linfer
