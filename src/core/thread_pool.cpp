#include "linfer/core/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace linfer {
namespace {

thread_local bool t_inside_pool = false;

class Pool {
 public:
  explicit Pool(int n) {
    for (int i = 1; i < n; ++i) workers_.emplace_back([this] { work(); });
  }
  ~Pool() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }
  int size() const { return int(workers_.size()) + 1; }

  // Runs task(i) for i in [0, n_tasks) across the pool and the caller; returns when all are done.
  void run(int64_t n_tasks, const std::function<void(int64_t)>& task) {
    std::lock_guard call_lock(call_mu_);
    {
      std::lock_guard lock(mu_);
      task_ = &task;
      n_tasks_ = n_tasks;
      next_.store(0);
      pending_ = n_tasks;
      ++generation_;
    }
    cv_.notify_all();
    drain();
    std::unique_lock lock(mu_);
    done_cv_.wait(lock, [&] { return pending_ == 0; });
    task_ = nullptr;
  }

 private:
  void drain() {
    const bool was_inside = t_inside_pool;
    t_inside_pool = true;
    int64_t done = 0;
    for (int64_t i; (i = next_.fetch_add(1)) < n_tasks_;) {
      (*task_)(i);
      ++done;
    }
    t_inside_pool = was_inside;
    if (done) {
      std::lock_guard lock(mu_);
      pending_ -= done;
      if (pending_ == 0) done_cv_.notify_all();
    }
  }
  void work() {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stop_ || (generation_ != seen && task_ != nullptr); });
        if (stop_) return;
        seen = generation_;
      }
      drain();
    }
  }

  std::vector<std::thread> workers_;
  std::mutex call_mu_, mu_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(int64_t)>* task_ = nullptr;
  int64_t n_tasks_ = 0;
  std::atomic<int64_t> next_{0};
  int64_t pending_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
};

std::mutex g_pool_mu;
std::unique_ptr<Pool> g_pool;
int g_requested = 0;

Pool& pool() {
  std::lock_guard lock(g_pool_mu);
  if (!g_pool) {
    int n = g_requested > 0 ? g_requested : int(std::max(1u, std::thread::hardware_concurrency()));
    g_pool = std::make_unique<Pool>(n);
  }
  return *g_pool;
}

}  // namespace

void set_num_threads(int n) {
  std::lock_guard lock(g_pool_mu);
  g_requested = n;
  g_pool.reset();
}

int num_threads() { return pool().size(); }

void parallel_for(int64_t begin, int64_t end, const std::function<void(int64_t, int64_t)>& fn, int64_t grain) {
  const int64_t n = end - begin;
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  if (t_inside_pool || n <= grain) {
    fn(begin, end);
    return;
  }
  Pool& p = pool();
  // A few tasks per thread balances uneven work (packed sequences of different lengths).
  const int64_t max_tasks = std::min<int64_t>(n / grain, int64_t(p.size()) * 4);
  if (max_tasks <= 1 || p.size() == 1) {
    fn(begin, end);
    return;
  }
  const int64_t step = (n + max_tasks - 1) / max_tasks;
  const int64_t n_tasks = (n + step - 1) / step;
  p.run(n_tasks, [&](int64_t t) { fn(begin + t * step, std::min(end, begin + (t + 1) * step)); });
}

}  // namespace linfer
