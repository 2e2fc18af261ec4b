#pragma once
// A fixed pool of worker threads and parallel-for over index ranges. The calling thread takes part.
// Nested calls (a parallel_for inside a worker) run serially on the calling thread, so kernels can
// parallelise freely without oversubscribing.
//
//   set_num_threads(4);                                   // --threads; 0 = every available core
//   parallel_for(0, n_heads, [&](int64_t lo, int64_t hi) { for (auto h = lo; h < hi; ++h) ...; });
//
// parallel_for allocates nothing (the callable is passed by reference), so decode can call it
// hundreds of times per token. An exception thrown by fn is rethrown to the caller after every
// sub-range has finished.
//
// Thread-safety: parallel_for may be called from any thread; calls from different threads are
// serialised on the pool. set_num_threads must not race with running parallel_for calls of the
// same pool generation (they keep the old pool alive until they return).

#include <cstdint>

#include "linfer/core/function_ref.h"

namespace linfer {

// Cores this process may run on (its CPU affinity mask), at least 1.
int available_cores();
// The largest thread count set_num_threads accepts: 4 x available_cores(). More threads than cores
// only adds switching; far more exhausts the system's thread limit.
int max_threads();

// Starts the pool now: n threads including the caller (0 = available_cores()). Throws linfer::Error
// when n is negative or above max_threads(), or when the system refuses to start a thread (then
// the previous pool stays in place).
void set_num_threads(int n);
int num_threads();

// Calls fn(lo, hi) on disjoint sub-ranges covering [begin, end). `grain` is the smallest sub-range
// worth a thread of its own.
void parallel_for(int64_t begin, int64_t end, FunctionRef<void(int64_t, int64_t)> fn, int64_t grain = 1);

}  // namespace linfer
