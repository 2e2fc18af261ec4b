// PrefillApi: request checks on the network thread, the prefill itself on the worker, the state
// streamed into the HTTP response as chunks (one per layer, or per MiB within a large layer).

#include "server/prefill_api.h"

#include <fmt/format.h>

#include <chrono>

#include "runtime/prefill_stream.h"
#include "runtime/state_file.h"
#include "server/api_error.h"
#include "server/completion_request.h"
#include "server/json_fields.h"

namespace linfer::server {

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

constexpr size_t kChunk = size_t(1) << 20;
constexpr size_t kMaxUnsent = 4 * kChunk;  // what may wait for a slow reader before the prefill pauses

// Bytes collect into chunks of up to kChunk; the end of each layer (flush) sends what is there, so a
// finished layer never waits for the next one. A slow reader pauses the prefill once kMaxUnsent bytes
// wait for it (memory stays bounded); once the client is gone, writing fails.
class ResponseSink : public Sink {
 public:
  ResponseSink(std::shared_ptr<Responder> res, std::shared_ptr<std::atomic<bool>> gone)
      : res_(std::move(res)), gone_(std::move(gone)) {}
  void flush() override {
    if (buf_.empty()) return;
    if (!res_->wait_below(kMaxUnsent)) fail("the client stopped reading");
    res_->write(std::move(buf_));
    buf_.clear();
  }

 protected:
  void put(const void* data, size_t n) override {
    if (*gone_) fail("the client went away");
    buf_.append(static_cast<const char*>(data), n);
    if (buf_.size() >= kChunk) flush();
  }

 private:
  std::shared_ptr<Responder> res_;
  std::shared_ptr<std::atomic<bool>> gone_;
  std::string buf_;
};

std::vector<double> second_buckets() {
  return {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320};
}

}  // namespace

struct PrefillApi::Job {
  std::vector<int32_t> ids;
  StateWriteOptions options;
  std::shared_ptr<Responder> res;
  std::shared_ptr<std::atomic<bool>> gone = std::make_shared<std::atomic<bool>>(false);
  Clock::time_point arrival = Clock::now();
};

PrefillApi::PrefillApi(std::shared_ptr<const Model> model, const Tokenizer* tok, PrefillApiConfig config)
    : model_(std::move(model)),
      tok_(tok),
      config_(std::move(config)),
      id_(state_identity(*model_, tok_)),
      seconds_(second_buckets()),
      tail_(second_buckets()) {}

void PrefillApi::handle(const HttpRequest& req, const std::shared_ptr<Responder>& res) {
  const Json body = parse_body(req.body);
  const Fields f(body);
  const ApiLimits limits{.model_name = config_.model_name, .vocab = model_->info().vocab_size,
                         .max_context = config_.max_context, .tok = tok_};
  check_model(body, limits);
  const auto fp = f.string("model_fingerprint");
  if (!fp)
    throw ApiError(400, "'model_fingerprint' is required: the fingerprint of the model that will use the state "
                        "(a prefill node never sends a state the requester has not said it can use)",
                   "model_fingerprint");
  const auto version = f.integer("format_version", 0, INT32_MAX);
  if (!version) throw ApiError(400, "'format_version' (the state format version the requester reads) is required",
                               "format_version");
  if (*fp != id_.model_fingerprint || *version != int64_t(kStateFormatVersion)) {
    {
      std::lock_guard lock(mu_);
      ++outcomes_["mismatch"];
    }
    throw ApiError(409, fmt::format("this prefill node runs model {} and writes state format version {}; the request "
                                    "expects model {} and version {}", id_.model_fingerprint, kStateFormatVersion, *fp,
                                    *version),
                   *fp != id_.model_fingerprint ? "model_fingerprint" : "format_version",
                   {{"X-Linfer-Model-Fingerprint", id_.model_fingerprint},
                    {"X-Linfer-State-Version", std::to_string(kStateFormatVersion)}});
  }
  auto job = std::make_shared<Job>();
  job->ids = request_prompt(body, limits, false);
  job->options.dtype = f.boolean("bf16").value_or(false) ? DType::BF16 : DType::F32;
  job->options.compress = f.boolean("zstd").value_or(false);
  job->res = res;
  if (queued_.fetch_add(1) >= config_.max_queue) {
    --queued_;
    {
      std::lock_guard lock(mu_);
      ++outcomes_["rejected"];
    }
    throw ApiError(429, fmt::format("{} prefills are waiting already", config_.max_queue), "", {{"Retry-After", "1"}});
  }
  res->on_disconnect([gone = job->gone] { *gone = true; });
  worker_.post([this, job] { run(*job); });
}

void PrefillApi::run(Job& job) {
  --queued_;
  if (*job.gone) {
    std::lock_guard lock(mu_);
    ++outcomes_["cancelled"];
    return;
  }
  const auto t0 = Clock::now();
  const int64_t n = int64_t(job.ids.size()), vocab = model_->info().vocab_size;
  std::string outcome = "ok";
  int64_t from_store = 0;
  ResponseSink sink(job.res, job.gone);
  StreamedPrefillStats st;
  SequenceState s;
  std::vector<float> logits;
  try {
    job.res->start_stream(200, "application/x-linfer-state",
                          {{"X-Linfer-Model-Fingerprint", id_.model_fingerprint},
                           {"X-Linfer-State-Version", std::to_string(kStateFormatVersion)},
                           {"X-Linfer-Prompt-Tokens", std::to_string(n)}});
    // A stored prefix (checked by the wire reader) is resumed from; a stored whole prompt with its
    // logits is the answer itself.
    std::optional<StoredPrefix> hit;
    if (config_.store) {
      hit = config_.store->lookup(job.ids);
      if (hit && hit->n_tokens == n && int64_t(hit->logits.size()) != vocab) hit = config_.store->lookup(job.ids, n - 1);
    }
    from_store = hit ? hit->n_tokens : 0;
    s = hit ? std::move(hit->state) : SequenceState(model_->state_spec());
    logits = from_store == n ? std::move(hit->logits) : std::vector<float>(size_t(vocab));
    if (from_store == n) {
      write_state(sink, s, id_, job.options, logits);
    } else {
      SequenceState* states[] = {&s};
      Sink* sinks[] = {&sink};
      st = prefill_streamed(*model_, Batch::single(std::span(job.ids).subspan(size_t(from_store))), states, sinks, id_,
                            job.options, logits.data(), config_.ubatch);
    }
  } catch (const std::exception& e) {
    outcome = *job.gone ? "cancelled" : "error";
    fmt::print(stderr, "linfer serve: prefill of {} tokens failed: {}\n", n, e.what());
  }
  const double total = since(t0);
  fmt::print(stderr, "linfer serve: prefill {} tokens ({} from the state store) -> {} bytes, queue {:.1f} ms, "
             "total {:.1f} ms (forward {:.1f} ms, writing {:.1f} ms, {:.0f}% of it hidden) {}\n", n, from_store,
             sink.n_bytes(), 1e3 * std::chrono::duration<double>(t0 - job.arrival).count(), 1e3 * total,
             1e3 * st.forward_s, 1e3 * st.write_busy_s,
             st.write_busy_s > 0 ? 100 * st.write_hidden_s / st.write_busy_s : 100.0, outcome);
  {  // counted before the response ends, so a client that reads /metrics next sees this prefill
    std::lock_guard lock(mu_);
    ++outcomes_[outcome];
    prompt_tokens_ += uint64_t(n);
    computed_tokens_ += outcome == "ok" ? uint64_t(n - from_store) : 0;
    bytes_ += sink.n_bytes();
    store_hits_ += from_store > 0;
    write_busy_s_ += st.write_busy_s;
    write_hidden_s_ += st.write_hidden_s;
    if (outcome == "ok") {
      seconds_.observe(total);
      tail_.observe(st.tail_s);
    }
  }
  // After a failure the body ends without the state's trailer: the receiver refuses it as truncated.
  job.res->end();
  if (outcome == "ok" && config_.store && from_store < n) config_.store->store(job.ids, s, logits);
}

std::string PrefillApi::metrics() const {
  std::string out;
  auto counter = [&](const char* name, const char* help, double v) {
    out += fmt::format("# HELP {0} {1}\n# TYPE {0} counter\n{0} {2}\n", name, help, v);
  };
  std::lock_guard lock(mu_);
  out += "# HELP linfer_prefill_requests_total POST /v1/prefill requests by outcome (ok, mismatch = 409, rejected = "
         "429, cancelled, error)\n# TYPE linfer_prefill_requests_total counter\n";
  for (const char* o : {"ok", "mismatch", "rejected", "cancelled", "error"}) {
    auto it = outcomes_.find(o);
    out += fmt::format("linfer_prefill_requests_total{{outcome=\"{}\"}} {}\n", o, it == outcomes_.end() ? 0 : it->second);
  }
  counter("linfer_prefill_prompt_tokens_total", "prompt tokens of prefill requests", double(prompt_tokens_));
  counter("linfer_prefill_computed_tokens_total", "prompt tokens computed (the rest came from the state store)",
          double(computed_tokens_));
  counter("linfer_prefill_bytes_total", "state bytes sent", double(bytes_));
  counter("linfer_prefill_store_hits_total", "prefills resumed from the state store", double(store_hits_));
  counter("linfer_prefill_write_seconds_total", "time spent writing states (serializing, compressing, sending)",
          write_busy_s_);
  counter("linfer_prefill_write_hidden_seconds_total", "the part of it spent while the prefill was still computing",
          write_hidden_s_);
  out += fmt::format("# HELP linfer_prefill_queue prefills waiting for the worker\n# TYPE linfer_prefill_queue gauge\n"
                     "linfer_prefill_queue {}\n", queued_.load());
  seconds_.write(out, "linfer_prefill_seconds", "time from taking a prefill to its last byte");
  tail_.write(out, "linfer_prefill_tail_seconds", "writing left after the forward ended (what streaming did not hide)");
  if (config_.store) out += prometheus_text(config_.store->stats());
  return out;
}

}  // namespace linfer::server
