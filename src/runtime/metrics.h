#pragma once
// The server's counters, gauges and latency histograms, written out in the Prometheus text format
// (names prefixed linfer_; intervals from the engine's monotonic clock, as vLLM computes them).
//
//   ServerMetrics m;
//   m.observe_ttft(0.012);                   // from any thread
//   std::string text = m.prometheus(cache.stats());
//
// Thread-safety: every member may be called from any thread (one mutex).

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/prefix_cache.h"

namespace linfer {

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);  // ascending; +Inf is implicit
  void observe(double v);
  void write(std::string& out, const std::string& name, const std::string& help) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket (not cumulative); the last one is +Inf
  double sum_ = 0.0;
  uint64_t count_ = 0;
};

// Set by the engine once per iteration.
struct EngineGauges {
  int64_t requests_running = 0, requests_waiting = 0, sequences_running = 0;
  int64_t slots_in_use = 0, slots_total = 0;
  uint64_t state_pool_bytes_in_use = 0, state_pool_bytes_total = 0;
  uint64_t kv_bytes_in_use = 0, kv_bytes_reserved = 0, kv_budget_bytes = 0;
};

class ServerMetrics {
 public:
  ServerMetrics();

  // outcome: "stop", "length", "cancelled", "error" (finished in the engine), "rejected" (queue
  // full or shutting down), "invalid" (a 4xx before the engine saw it).
  void count_request(const std::string& outcome);
  void add_tokens(uint64_t prompt, uint64_t cached_prompt, uint64_t generated);
  // One scheduler iteration that ran the model: its batch, the forward's time and the whole iteration's (plan,
  // forward, sampling, outputs).
  void count_iteration(int64_t tokens, int64_t sequences, double forward_seconds, double total_seconds);
  void observe_ttft(double seconds);
  void observe_itl(double seconds);
  void observe_queue_time(double seconds);
  void observe_e2e(double seconds);
  void set_gauges(const EngineGauges& g);
  EngineGauges gauges() const;
  uint64_t requests(const std::string& outcome) const;

  std::string prometheus(const PrefixCacheStats& cache) const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, uint64_t> requests_;
  uint64_t prompt_tokens_ = 0, cached_prompt_tokens_ = 0, generated_tokens_ = 0;
  uint64_t iterations_ = 0, batch_tokens_ = 0, batch_sequences_ = 0;
  Histogram ttft_, itl_, queue_, e2e_, forward_, iteration_;
  EngineGauges gauges_;
};

}  // namespace linfer
