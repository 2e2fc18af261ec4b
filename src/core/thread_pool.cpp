#include "linfer/core/thread_pool.h"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "linfer/core/error.h"

namespace linfer {
namespace {

thread_local bool t_inside_pool = false;

// Polls before a thread sleeps, step i of the wait: a short busy spin (~5 µs: a pause is 40-140
// cycles), then yields of the core (~50 µs on an idle one), then false (sleep on a condition
// variable). Decode calls the pool hundreds of times per token, a few µs apart, and a futex sleep +
// wake-up costs more than that on each side; the yields hand the core over on a loaded machine,
// where spinning would burn the time slice the other threads of the call are waiting for.
constexpr int kSpins = 256, kYields = 64;
inline bool poll(int i) {
  if (i < kSpins) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
    return true;
  }
  if (i < kSpins + kYields) {
    sched_yield();
    return true;
  }
  return false;
}

// One parallel call. It lives on the caller's stack; run() returns only when no worker can still
// refer to it (Pool::in_job_ == 0 after job_ was cleared).
struct Job {
  FunctionRef<void(int64_t)> task;
  int64_t n_tasks;
  std::atomic<int64_t> next{0};  // next unclaimed task index
  std::exception_ptr error{};    // the first exception a task threw; guarded by Pool::mu_
};

class Pool {
 public:
  explicit Pool(int n) {
    workers_.reserve(size_t(n - 1));
    try {
      for (int i = 1; i < n; ++i) workers_.emplace_back([this] { work(); });
    } catch (const std::system_error& e) {
      const size_t started = workers_.size();
      shut_down();
      throw Error("could not start thread " + std::to_string(started + 2) + " of " + std::to_string(n) +
                  " (" + e.what() + "); ask for fewer with --threads");
    }
  }
  ~Pool() { shut_down(); }
  int size() const { return int(workers_.size()) + 1; }

  // Runs task(i) for i in [0, n_tasks) across the pool and the caller; returns when all are done.
  // The handshake is lock-free while every thread is awake (atomics, sequentially consistent);
  // the mutex and condition variables only carry sleeps and the wake-ups of sleepers.
  void run(int64_t n_tasks, FunctionRef<void(int64_t)> task) {
    std::lock_guard call_lock(call_mu_);
    Job job{.task = task, .n_tasks = n_tasks};
    job_.store(&job);
    generation_.fetch_add(1);
    if (sleepers_.load() > 0) {
      std::lock_guard lock(mu_);
      cv_.notify_all();
    }
    drain(job);
    // Every task is claimed now; clear job_ so that late workers find nothing, then wait for the
    // workers that did pick the job up (finishing their tasks) to let go of it.
    job_.store(nullptr);
    for (int i = 0; in_job_.load() != 0; ++i) {
      if (poll(i)) continue;
      std::unique_lock lock(mu_);
      caller_sleeping_.store(true);
      done_cv_.wait(lock, [&] { return in_job_.load() == 0; });
      caller_sleeping_.store(false);
      break;
    }
    if (job.error) std::rethrow_exception(job.error);
  }

 private:
  void drain(Job& job) {
    const bool was_inside = t_inside_pool;
    t_inside_pool = true;
    for (int64_t i; (i = job.next.fetch_add(1, std::memory_order_relaxed)) < job.n_tasks;) {
      try {
        job.task(i);
      } catch (...) {
        std::lock_guard lock(mu_);
        if (!job.error) job.error = std::current_exception();
      }
    }
    t_inside_pool = was_inside;
  }
  void work() {
    uint64_t seen = 0;
    for (;;) {
      for (int i = 0; generation_.load() == seen && !stop_.load(); ++i) {
        if (poll(i)) continue;
        std::unique_lock lock(mu_);
        sleepers_.fetch_add(1);
        cv_.wait(lock, [&] { return stop_.load() || generation_.load() != seen; });
        sleepers_.fetch_sub(1);
      }
      if (stop_.load()) return;
      seen = generation_.load();
      // Announce before looking: a caller that has cleared job_ waits for in_job_ to drop to 0, so
      // a job read here stays alive until the decrement below.
      in_job_.fetch_add(1);
      if (Job* job = job_.load()) drain(*job);
      if (in_job_.fetch_sub(1) == 1 && caller_sleeping_.load()) {
        std::lock_guard lock(mu_);
        done_cv_.notify_all();
      }
    }
  }
  void shut_down() {
    {
      std::lock_guard lock(mu_);
      stop_.store(true);
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  std::vector<std::thread> workers_;
  std::mutex call_mu_, mu_;
  std::condition_variable cv_, done_cv_;
  std::atomic<Job*> job_{nullptr};
  std::atomic<uint64_t> generation_{0};  // bumped once per published job
  std::atomic<int> in_job_{0};           // workers that may hold a pointer to the current job
  std::atomic<int> sleepers_{0};         // workers asleep on cv_ (or about to be)
  std::atomic<bool> caller_sleeping_{false};
  std::atomic<bool> stop_{false};
};

std::mutex g_pool_mu;
std::shared_ptr<Pool> g_pool;  // shared: a call in flight keeps its pool alive across set_num_threads

std::shared_ptr<Pool> pool() {
  std::lock_guard lock(g_pool_mu);
  if (!g_pool) g_pool = std::make_shared<Pool>(available_cores());
  return g_pool;
}

}  // namespace

int available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return int(std::max(1u, std::thread::hardware_concurrency()));
}

int max_threads() { return 4 * available_cores(); }

void set_num_threads(int n) {
  if (n < 0 || n > max_threads())
    throw Error("--threads " + std::to_string(n) + " is out of range: use 1.." + std::to_string(max_threads()) +
                " (this machine has " + std::to_string(available_cores()) + " cores), or 0 for all of them");
  auto fresh = std::make_shared<Pool>(n == 0 ? available_cores() : n);  // throws before replacing
  std::lock_guard lock(g_pool_mu);
  g_pool = std::move(fresh);
}

int num_threads() { return pool()->size(); }

void parallel_for(int64_t begin, int64_t end, FunctionRef<void(int64_t, int64_t)> fn, int64_t grain) {
  const int64_t n = end - begin;
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  if (t_inside_pool || n <= grain) {
    fn(begin, end);
    return;
  }
  std::shared_ptr<Pool> p = pool();
  // A few tasks per thread balances uneven work (packed sequences of different lengths).
  const int64_t max_tasks = std::min<int64_t>(n / grain, int64_t(p->size()) * 4);
  if (max_tasks <= 1 || p->size() == 1) {
    fn(begin, end);
    return;
  }
  const int64_t step = (n + max_tasks - 1) / max_tasks;
  const int64_t n_tasks = (n + step - 1) / step;
  p->run(n_tasks, [&](int64_t t) { fn(begin + t * step, std::min(end, begin + (t + 1) * step)); });
}

}  // namespace linfer
