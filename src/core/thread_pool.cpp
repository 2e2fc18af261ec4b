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

// One parallel call. It lives on the caller's stack; run() returns only when no worker refers to
// it any more (active == 0), so a worker can never read a finished job or the next one's fields.
struct Job {
  FunctionRef<void(int64_t)> task;
  int64_t n_tasks;
  std::atomic<int64_t> next{0};  // next unclaimed task index
  // Guarded by Pool::mu_:
  int64_t pending;               // tasks not yet finished
  int active = 1;                // threads inside drain(): the caller plus joined workers
  std::exception_ptr error;      // the first exception a task threw
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
  void run(int64_t n_tasks, FunctionRef<void(int64_t)> task) {
    std::lock_guard call_lock(call_mu_);
    Job job{task, n_tasks};
    job.pending = n_tasks;
    {
      std::lock_guard lock(mu_);
      job_ = &job;
      ++generation_;
    }
    cv_.notify_all();
    drain(job);
    std::unique_lock lock(mu_);
    done_cv_.wait(lock, [&] { return job.pending == 0 && job.active == 0; });
    job_ = nullptr;  // in the same critical section: no worker can join after this
    if (job.error) std::rethrow_exception(job.error);
  }

 private:
  void drain(Job& job) {
    const bool was_inside = t_inside_pool;
    t_inside_pool = true;
    int64_t done = 0;
    std::exception_ptr error;
    for (int64_t i; (i = job.next.fetch_add(1, std::memory_order_relaxed)) < job.n_tasks;) {
      try {
        job.task(i);
      } catch (...) {
        if (!error) error = std::current_exception();
      }
      ++done;
    }
    t_inside_pool = was_inside;
    std::lock_guard lock(mu_);
    job.pending -= done;
    if (error && !job.error) job.error = error;
    if (--job.active == 0 && job.pending == 0) done_cv_.notify_all();
  }
  void work() {
    uint64_t seen = 0;
    for (;;) {
      Job* job;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stop_ || (job_ != nullptr && generation_ != seen); });
        if (stop_) return;
        seen = generation_;
        job = job_;
        ++job->active;  // under mu_, while job_ is set: run() waits for us
      }
      drain(*job);
    }
  }
  void shut_down() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  std::vector<std::thread> workers_;
  std::mutex call_mu_, mu_;
  std::condition_variable cv_, done_cv_;
  Job* job_ = nullptr;  // guarded by mu_
  uint64_t generation_ = 0;
  bool stop_ = false;
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
