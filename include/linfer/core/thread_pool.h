#pragma once
// A fixed pool of worker threads and parallel-for over index ranges. The calling thread takes part.
// Nested calls (a parallel_for inside a worker) run serially on the calling thread, so kernels can
// parallelise freely without oversubscribing.
//
//   set_num_threads(4);                                   // --threads; default = hardware cores
//   parallel_for(0, n_heads, [&](int64_t lo, int64_t hi) { for (auto h = lo; h < hi; ++h) ...; });
//
// Thread-safety: parallel_for may be called from any thread; calls from different threads are
// serialised on the pool.

#include <cstdint>
#include <functional>

namespace linfer {

void set_num_threads(int n);  // n <= 0: hardware concurrency
int num_threads();

// Calls fn(lo, hi) on disjoint sub-ranges covering [begin, end). `grain` is the smallest sub-range
// worth a thread of its own.
void parallel_for(int64_t begin, int64_t end, const std::function<void(int64_t, int64_t)>& fn,
                  int64_t grain = 1);

}  // namespace linfer
