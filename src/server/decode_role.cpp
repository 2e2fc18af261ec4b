// DecodeRole: remote prefill of all but the last prompt token, into the engine's prefix cache.

#include "server/decode_role.h"

#include <fmt/format.h>

#include "linfer/core/error.h"

namespace linfer::server {

namespace {

std::vector<double> second_buckets() {
  return {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320};
}

const char* const kReasons[] = {"timeout", "unreachable", "mismatch", "bad_state", "http_error", "cache_too_small",
                                "error"};

// A fallback's reason from fetch_prefill's error message (the metric's label).
std::string reason_of(const std::string& why) {
  auto has = [&](const char* s) { return why.find(s) != std::string::npos; };
  if (has("timed out")) return "timeout";
  if (has("answered 409") || has("written by model") || has("does not match") || has("format version"))
    return "mismatch";
  if (has("checksum") || has("truncated") || has("corrupted") || has("closed in the middle") || has("not a linfer state"))
    return "bad_state";
  if (has("cannot connect") || has("cannot resolve") || has("closed the connection")) return "unreachable";
  if (has("answered")) return "http_error";
  return "error";
}

}  // namespace

DecodeRole::DecodeRole(Engine& engine, const Tokenizer* tok, DecodeRoleConfig config)
    : engine_(engine), tok_(tok), config_(std::move(config)), seconds_(second_buckets()), first_byte_(second_buckets()) {
  LINFER_CHECK(!config_.nodes.empty(), "--role decode needs --prefill-url");
  LINFER_CHECK(engine_.options().prefix_cache_bytes > 0,
               "--role decode hands remote states to the engine through the prefix cache: --prefix-cache-bytes "
               "must not be 0");
  for (int i = 0; i < std::max(config_.workers, 1); ++i) workers_.push_back(std::make_unique<Worker>());
}

void DecodeRole::before_submit(const std::vector<int32_t>& prompt, std::function<void()> submit) {
  if (int64_t(prompt.size()) <= std::max<int64_t>(config_.threshold, 1)) return submit();
  Worker& w = *workers_[next_worker_.fetch_add(1) % workers_.size()];
  w.post([this, prompt, submit = std::move(submit)] {
    try {
      prefill(prompt);
    } catch (const std::exception& e) {  // never lose the request: the engine prefills what is missing
      fallback("error", e.what());
    }
    submit();
  });
}

void DecodeRole::prefill(const std::vector<int32_t>& prompt) {
  const std::span<const int32_t> head(prompt.data(), prompt.size() - 1);  // the engine computes the last token
  PrefixCache& cache = engine_.prefix_cache();
  int64_t have = cache.longest(head);
  if (config_.store && int64_t(head.size()) - have > config_.threshold) {
    if (auto hit = config_.store->lookup(head); hit && hit->n_tokens > have) {
      cache.insert(head.first(size_t(hit->n_tokens)), hit->state);
      have = hit->n_tokens;
      std::lock_guard lock(mu_);
      ++store_hits_;
      store_tokens_ += uint64_t(have);
    }
  }
  if (int64_t(head.size()) - have <= config_.threshold) return;  // the rest is short: local

  const PrefillTarget& node = config_.nodes[next_node_.fetch_add(1) % config_.nodes.size()];
  {
    std::lock_guard lock(mu_);
    ++requests_;
  }
  RemoteState r;
  try {
    r = fetch_prefill(node, head, engine_.model(), tok_,
                      {.timeout = config_.timeout, .bf16 = config_.bf16, .zstd = config_.zstd,
                       .api_key = config_.api_key});
  } catch (const Error& e) {
    return fallback(reason_of(e.what()), e.what());
  }
  if (r.state.bytes() + head.size_bytes() >= cache.options().byte_budget)
    return fallback("cache_too_small", fmt::format("a state of {} bytes does not fit the prefix cache ({} bytes)",
                                                   r.state.bytes(), cache.options().byte_budget));
  cache.insert(head, r.state);
  fmt::print(stderr, "linfer serve: remote prefill of {} tokens from {}: {} bytes, first byte {:.1f} ms, total {:.1f} ms\n",
             head.size(), node.url(), r.bytes, 1e3 * r.first_byte_s, 1e3 * r.seconds);
  std::lock_guard lock(mu_);
  bytes_ += r.bytes;
  seconds_.observe(r.seconds);
  first_byte_.observe(r.first_byte_s);
}

void DecodeRole::fallback(const std::string& reason, const std::string& why) {
  fmt::print(stderr, "linfer serve: remote prefill failed ({}): {}; prefilling locally\n", reason, why);
  std::lock_guard lock(mu_);
  ++fallbacks_[reason];
}

std::string DecodeRole::metrics() const {
  std::string out;
  auto counter = [&](const char* name, const char* help, double v) {
    out += fmt::format("# HELP {0} {1}\n# TYPE {0} counter\n{0} {2}\n", name, help, v);
  };
  std::lock_guard lock(mu_);
  counter("linfer_remote_prefill_requests_total", "prompts sent to a prefill node", double(requests_));
  counter("linfer_remote_prefill_bytes_total", "state bytes received from prefill nodes", double(bytes_));
  out += "# HELP linfer_remote_prefill_fallbacks_total remote prefills that failed, so the prompt was prefilled "
         "locally, by reason\n# TYPE linfer_remote_prefill_fallbacks_total counter\n";
  for (const char* r : kReasons) {
    auto it = fallbacks_.find(r);
    out += fmt::format("linfer_remote_prefill_fallbacks_total{{reason=\"{}\"}} {}\n", r,
                       it == fallbacks_.end() ? 0 : it->second);
  }
  counter("linfer_remote_prefill_store_hits_total", "prompts resumed from the state store", double(store_hits_));
  counter("linfer_remote_prefill_store_tokens_total", "prompt tokens taken from the state store", double(store_tokens_));
  seconds_.write(out, "linfer_remote_prefill_seconds", "a remote prefill, from the request to the state's last byte");
  first_byte_.write(out, "linfer_remote_prefill_first_byte_seconds", "from the request to the state's first byte");
  if (config_.store) out += prometheus_text(config_.store->stats());
  return out;
}

}  // namespace linfer::server
