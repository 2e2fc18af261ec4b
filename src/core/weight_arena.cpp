#include "linfer/core/weight_arena.h"

#include <sys/mman.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>

namespace linfer {

namespace {

std::atomic<bool> g_resident{true};

constexpr size_t kHugePage = size_t(2) << 20;
constexpr size_t kChunk = size_t(64) << 20;

// /proc/meminfo's field (MemTotal, MemAvailable) in bytes; 0 where it cannot be read.
size_t meminfo(const char* field) {
  std::FILE* f = std::fopen("/proc/meminfo", "r");
  if (!f) return 0;
  char name[64];
  unsigned long long kb = 0;
  size_t found = 0;
  while (std::fscanf(f, "%63s %llu kB", name, &kb) == 2)
    if (std::strncmp(name, field, std::strlen(field)) == 0 && name[std::strlen(field)] == ':') found = size_t(kb) << 10;
  std::fclose(f);
  return found;
}

// Whether n more bytes of copies leave an eighth of the machine's memory available: a model larger than that stays
// mapped from its file (the OS pages it), where copying it all would end in the out-of-memory killer.
bool fits(size_t n) {
  const size_t total = meminfo("MemTotal"), available = meminfo("MemAvailable");
  return total == 0 || available >= n + total / 8;
}

// An anonymous mapping of n bytes (a multiple of kHugePage) starting on a huge-page boundary, marked for huge
// pages; unmapped when the last owner lets go. Null where memory is short (fits) or the mapping fails.
std::shared_ptr<std::byte> map_huge(size_t n) {
  if (!fits(n)) return nullptr;
  void* p = ::mmap(nullptr, n + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  const auto a = reinterpret_cast<uintptr_t>(p), start = (a + kHugePage - 1) / kHugePage * kHugePage;
  if (start > a) ::munmap(p, start - a);  // trim to the boundary: the head and the tail beyond n
  if (const size_t tail = a + n + kHugePage - (start + n)) ::munmap(reinterpret_cast<void*>(start + n), tail);
  ::madvise(reinterpret_cast<void*>(start), n, MADV_HUGEPAGE);  // a hint: without THP the copy still pays
  return {reinterpret_cast<std::byte*>(start), [n](std::byte* q) { ::munmap(q, n); }};
}

}  // namespace

void set_resident_weights(bool on) { g_resident.store(on, std::memory_order_relaxed); }
bool resident_weights() { return g_resident.load(std::memory_order_relaxed); }

std::shared_ptr<const std::byte> WeightArena::copy(const void* src, size_t n) {
  const size_t need = (n + 63) / 64 * 64;
  std::shared_ptr<std::byte> base;
  size_t at = 0;
  if (need > kChunk / 4) {
    base = map_huge((need + kHugePage - 1) / kHugePage * kHugePage);
    if (!base) return nullptr;
  } else {
    std::lock_guard lock(mu_);
    base = chunk_.lock();
    if (!base || used_ + need > size_) {
      base = map_huge(kChunk);
      if (!base) return nullptr;
      chunk_ = base;
      size_ = kChunk;
      used_ = 0;
    }
    at = used_;
    used_ += need;
  }
  std::memcpy(base.get() + at, src, n);
  return {base, base.get() + at};
}

}  // namespace linfer
