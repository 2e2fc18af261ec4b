#include "runtime/metrics.h"

#include <fmt/format.h>

#include <algorithm>

namespace linfer {

namespace {

// Seconds, 1 ms to 2 minutes, roughly x2.5 apart (vLLM uses similar spans for the same metrics).
std::vector<double> latency_buckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 120};
}
std::vector<double> step_buckets() {  // an iteration: a GPU decode step takes ~1 ms, a CPU one ~10-100
  return {0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1,
          0.25, 0.5, 1, 2.5};
}

void scalar(std::string& out, const char* name, const char* type, const char* help, double v) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type, name, v);
}

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double v) {
  const size_t b = size_t(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  ++counts_[b];
  sum_ += v;
  ++count_;
}

void Histogram::write(std::string& out, const std::string& name, const std::string& help) const {
  out += fmt::format("# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
  uint64_t cum = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cum += counts_[i];
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, bounds_[i], cum);
  }
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n", name, count_, name, sum_, name,
                     count_);
}

ServerMetrics::ServerMetrics()
    : ttft_(latency_buckets()),
      itl_(latency_buckets()),
      queue_(latency_buckets()),
      e2e_(latency_buckets()),
      forward_(step_buckets()),
      iteration_(step_buckets()) {
  for (const char* o : {"stop", "length", "cancelled", "error", "rejected", "invalid"}) requests_[o] = 0;
}

void ServerMetrics::count_request(const std::string& outcome) {
  std::lock_guard lock(mu_);
  ++requests_[outcome];
}

void ServerMetrics::add_tokens(uint64_t prompt, uint64_t cached_prompt, uint64_t generated) {
  std::lock_guard lock(mu_);
  prompt_tokens_ += prompt;
  cached_prompt_tokens_ += cached_prompt;
  generated_tokens_ += generated;
}

void ServerMetrics::count_iteration(int64_t tokens, int64_t sequences, double forward_s, double total_s) {
  std::lock_guard lock(mu_);
  ++iterations_;
  batch_tokens_ += uint64_t(tokens);
  batch_sequences_ += uint64_t(sequences);
  forward_.observe(forward_s);
  iteration_.observe(total_s);
}

void ServerMetrics::observe_ttft(double s) { std::lock_guard lock(mu_); ttft_.observe(s); }
void ServerMetrics::observe_itl(double s) { std::lock_guard lock(mu_); itl_.observe(s); }
void ServerMetrics::observe_queue_time(double s) { std::lock_guard lock(mu_); queue_.observe(s); }
void ServerMetrics::observe_e2e(double s) { std::lock_guard lock(mu_); e2e_.observe(s); }

void ServerMetrics::set_gauges(const EngineGauges& g) {
  std::lock_guard lock(mu_);
  gauges_ = g;
}

EngineGauges ServerMetrics::gauges() const {
  std::lock_guard lock(mu_);
  return gauges_;
}

uint64_t ServerMetrics::requests(const std::string& outcome) const {
  std::lock_guard lock(mu_);
  auto it = requests_.find(outcome);
  return it == requests_.end() ? 0 : it->second;
}

std::string ServerMetrics::prometheus(const PrefixCacheStats& cache) const {
  std::lock_guard lock(mu_);
  std::string out;
  out += "# HELP linfer_requests_total Requests by outcome: finish reason, or rejected / invalid before running.\n"
         "# TYPE linfer_requests_total counter\n";
  for (const auto& [outcome, n] : requests_) out += fmt::format("linfer_requests_total{{outcome=\"{}\"}} {}\n", outcome, n);
  scalar(out, "linfer_prompt_tokens_total", "counter", "Prompt tokens of finished requests.", double(prompt_tokens_));
  scalar(out, "linfer_prompt_tokens_cached_total", "counter",
         "Prompt tokens taken from the prefix-state cache instead of computed.", double(cached_prompt_tokens_));
  scalar(out, "linfer_generation_tokens_total", "counter", "Generated tokens.", double(generated_tokens_));
  scalar(out, "linfer_iterations_total", "counter", "Scheduler iterations (one forward call each).", double(iterations_));
  scalar(out, "linfer_batch_tokens_total", "counter", "Tokens computed, summed over iterations.", double(batch_tokens_));
  scalar(out, "linfer_batch_sequences_total", "counter", "Sequences per forward call, summed over iterations.",
         double(batch_sequences_));
  const EngineGauges& g = gauges_;
  scalar(out, "linfer_requests_running", "gauge", "Requests holding state slots.", double(g.requests_running));
  scalar(out, "linfer_requests_waiting", "gauge", "Requests waiting for a slot or KV room.", double(g.requests_waiting));
  scalar(out, "linfer_sequences_running", "gauge", "Sequences (choices) holding state slots.", double(g.sequences_running));
  scalar(out, "linfer_state_pool_slots_in_use", "gauge", "State slots in use.", double(g.slots_in_use));
  scalar(out, "linfer_state_pool_slots", "gauge", "State slots allocated at start (--max-seqs).", double(g.slots_total));
  scalar(out, "linfer_state_pool_bytes_in_use", "gauge", "Fixed-size state bytes of the slots in use.",
         double(g.state_pool_bytes_in_use));
  scalar(out, "linfer_state_pool_bytes", "gauge", "Fixed-size state bytes of all slots.", double(g.state_pool_bytes_total));
  scalar(out, "linfer_kv_bytes_in_use", "gauge", "Attention KV bytes the running sequences hold.", double(g.kv_bytes_in_use));
  scalar(out, "linfer_kv_bytes_reserved", "gauge", "Attention KV bytes reserved by admitted requests.",
         double(g.kv_bytes_reserved));
  scalar(out, "linfer_kv_budget_bytes", "gauge", "Attention KV byte budget for admission.", double(g.kv_budget_bytes));
  scalar(out, "linfer_prefix_cache_lookups_total", "counter", "Prefix-state cache lookups.", double(cache.lookups));
  scalar(out, "linfer_prefix_cache_hits_total", "counter", "Lookups that found a cached prefix.", double(cache.hits));
  scalar(out, "linfer_prefix_cache_tokens_saved_total", "counter", "Tokens not recomputed thanks to the cache.",
         double(cache.tokens_saved));
  scalar(out, "linfer_prefix_cache_inserts_total", "counter", "States stored in the prefix cache.", double(cache.inserts));
  scalar(out, "linfer_prefix_cache_evictions_total", "counter", "States evicted from the prefix cache.",
         double(cache.evictions));
  scalar(out, "linfer_prefix_cache_bytes", "gauge", "Bytes the prefix cache holds.", double(cache.bytes));
  scalar(out, "linfer_prefix_cache_entries", "gauge", "States the prefix cache holds.", double(cache.entries));
  scalar(out, "linfer_prefix_cache_slot_entries", "gauge",
         "Of those, states held in spare state slots where the model runs (the others in host memory).",
         double(cache.slot_entries));
  scalar(out, "linfer_prefix_cache_slots", "gauge", "Spare state slots the prefix cache may fill.", double(cache.slots));
  ttft_.write(out, "linfer_time_to_first_token_seconds", "From arrival to the first generated token.");
  itl_.write(out, "linfer_inter_token_latency_seconds", "Between consecutive tokens of one sequence.");
  queue_.write(out, "linfer_request_queue_time_seconds", "From arrival to admission (a state slot).");
  e2e_.write(out, "linfer_e2e_request_latency_seconds", "From arrival to the last token.");
  forward_.write(out, "linfer_forward_seconds", "The model's forward over an iteration's batch.");
  iteration_.write(out, "linfer_iteration_seconds",
                   "A scheduler iteration that ran the model: plan, forward, sampling, outputs.");
  return out;
}

}  // namespace linfer
