// core/mmap_file: release_mapped drops a live mapping's pages from this process's memory (its Rss in
// /proc/self/smaps falls) and they read back as the file's bytes; memory outside every live mapping, and a
// mapping already unmapped, are left alone.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "linfer/core/mmap_file.h"

using namespace linfer;
namespace fs = std::filesystem;

namespace {

// A file of n bytes, byte i = i * 7 mod 251.
fs::path make_file(size_t n) {
  const fs::path p = fs::temp_directory_path() / ("linfer_mmap_test_" + std::to_string(::getpid()));
  std::vector<char> b(n);
  for (size_t i = 0; i < n; ++i) b[i] = char(i * 7 % 251);
  std::ofstream(p, std::ios::binary).write(b.data(), std::streamsize(n));
  return p;
}

// The Rss (kB) of the mapping that starts at p, from /proc/self/smaps; -1 if there is none.
long rss_kb(const void* p) {
  std::ifstream f("/proc/self/smaps");
  char head[32];
  std::snprintf(head, sizeof head, "%lx-", static_cast<unsigned long>(reinterpret_cast<uintptr_t>(p)));
  bool in = false;
  for (std::string line; std::getline(f, line);) {
    if (line.rfind(head, 0) == 0) in = true;
    else if (in && line.rfind("Rss:", 0) == 0) return std::stol(line.substr(4));
  }
  return -1;
}

bool holds_file_bytes(const std::byte* d, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (d[i] != std::byte(i * 7 % 251)) return false;
  return true;
}

}  // namespace

TEST(MappedFile, ReleasedPagesLeaveMemoryAndReadBackFromTheFile) {
  const size_t page = size_t(::sysconf(_SC_PAGESIZE)), n = 64 * page + 123;
  const fs::path path = make_file(n);
  {
    MappedFile m(path.string());
    ASSERT_TRUE(holds_file_bytes(m.data(), n));  // every page touched
    // qemu-user's /proc/self/smaps reports no resident pages for the guest's mappings: the drop is measured natively
    const long before = rss_kb(m.data());
    const bool measured = before >= long(64 * page / 1024);
    // [100, n - 100) = [100, 64 pages + 23): pages 1 .. 63 lie wholly inside it
    EXPECT_EQ(release_mapped(m.data() + 100, n - 200), 63 * page);
    if (measured) EXPECT_LE(rss_kb(m.data()), before - long(63 * page / 1024));
    EXPECT_TRUE(holds_file_bytes(m.data(), n)) << "released pages must read back as the file's bytes";
    EXPECT_EQ(release_mapped(m.data() + 10, page / 2), 0u) << "no whole page inside the range";
    std::vector<std::byte> heap(4 * page, std::byte(5));
    EXPECT_EQ(release_mapped(heap.data(), heap.size()), 0u) << "memory outside every mapping is left alone";
    for (std::byte v : heap) ASSERT_EQ(v, std::byte(5));
    fs::remove(path);
    if (!measured)
      GTEST_SKIP() << "/proc/self/smaps shows " << before << " kB resident for the mapping: the drop was not measured";
  }
}

TEST(MappedFile, AnUnmappedRangeIsNotReleased) {
  const size_t page = size_t(::sysconf(_SC_PAGESIZE)), n = 8 * page;
  const fs::path path = make_file(n);
  const std::byte* gone = nullptr;
  {
    MappedFile m(path.string());
    gone = m.data();
  }
  EXPECT_EQ(release_mapped(gone, n), 0u);
  fs::remove(path);
}
