#pragma once
// Resident copies of weights in anonymous memory, in 2 MiB pages where the kernel gives them (transparent huge
// pages, madvise mode or always). A decode step streams every weight once per token; from the page cache's 4 KiB
// pages of a mapped checkpoint two Zen 3 cores read 29 GB/s, from huge pages 42 (a TLB walk per 4 KiB, the hardware
// prefetchers stopping at each page's end), and decode ran 7–12 % faster (docs/benchmarks.md, *Zen 3*). Copies
// are bump-allocated in 64 MiB chunks (a large weight gets a mapping of its own); the untouched end of a chunk
// costs no memory, and a chunk is unmapped when the last copy in it goes.
//
//   WeightArena arena;
//   std::shared_ptr<const std::byte> w = arena.copy(src, n);  // 64-byte aligned; keeps its chunk alive; null
//                                                             // where memory is short: read src in place

#include <cstddef>
#include <memory>
#include <mutex>

namespace linfer {

// Whether the CPU backend copies as-stored weights into an arena (the default) or reads them where the checkpoint
// file is mapped (`linfer --mmap`: less memory where a model is larger than RAM or shared between processes).
void set_resident_weights(bool on);
bool resident_weights();

class WeightArena {
 public:
  // Null where the copy would leave less than an eighth of the machine's memory available (/proc/meminfo).
  std::shared_ptr<const std::byte> copy(const void* src, size_t n);

 private:
  std::mutex mu_;
  std::weak_ptr<std::byte> chunk_;  // the chunk being filled, alive while a copy in it is
  size_t size_ = 0, used_ = 0;
};

}  // namespace linfer
