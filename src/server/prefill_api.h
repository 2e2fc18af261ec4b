#pragma once
// POST /v1/prefill on a prefill node (`linfer serve --role prefill`; docs/prefill-as-a-service.md):
// the prompt's state in the wire format (docs/state-format.md), streamed layer by layer while the
// prefill computes it (runtime/prefill_stream.h).
//
//   request   {"prompt": "text" | [ids], "model_fingerprint": "<expected>", "format_version": 1,
//              "bf16": false, "zstd": false}
//   200       Content-Type application/x-linfer-state, chunked: header, the records layer by layer,
//             the last token's logits, trailer; headers X-Linfer-Model-Fingerprint,
//             X-Linfer-State-Version, X-Linfer-Prompt-Tokens
//   409       JSON error when the requester expects another model fingerprint or format version (the
//             error names both sides); never state bytes the requester cannot use
//   400 / 404 / 429 / 503   as for completions (bad prompt, other model name, queue full, loading)
//
// Prefills run one at a time on their own thread, each one forward over the whole prompt, beside the
// engine's work. With a state store (Redis), a stored prefix is resumed from and the finished state
// stored for every node. A client that goes away stops the writing (the forward runs to its end).
//
//   PrefillApi prefill(model, tok, {.max_context = 32768, .max_queue = 16});
//   api.add_route("/v1/prefill", [&](auto& req, auto& res) { prefill.handle(req, res); });
//
// Thread-safety: handle() and metrics() from any thread.

#include <atomic>
#include <memory>
#include <map>
#include <mutex>
#include <string>

#include "linfer/model.h"
#include "linfer/tokenizer.h"
#include "runtime/metrics.h"
#include "runtime/state_format.h"
#include "runtime/state_store_redis.h"
#include "server/http.h"
#include "server/worker.h"

namespace linfer::server {

struct PrefillApiConfig {
  std::string model_name;         // a request naming another model gets 404
  int64_t max_context = 32768;    // longest prompt + 1
  int max_queue = 16;             // prefills waiting for the worker; more get 429
  RedisStateStore* store = nullptr;  // optional shared prefix-state store
  int64_t ubatch = 0;             // prefill_streamed's: tokens before each prompt's last `ubatch` run in chunks
};

class PrefillApi {
 public:
  PrefillApi(std::shared_ptr<const Model> model, const Tokenizer* tok, PrefillApiConfig config);

  // Checks the request (throws ApiError: 400, 404, 409, 429) and queues the prefill; the response
  // starts streaming when the worker takes it.
  void handle(const HttpRequest& req, const std::shared_ptr<Responder>& res);
  // linfer_prefill_* counters and histograms, Prometheus text.
  std::string metrics() const;
  // Returns once every prefill queued so far has finished (for a graceful shutdown).
  void drain() { worker_.wait_idle(); }

 private:
  struct Job;
  void run(Job& job);

  std::shared_ptr<const Model> model_;
  const Tokenizer* tok_;
  PrefillApiConfig config_;
  StateIdentity id_;
  std::atomic<int> queued_{0};

  mutable std::mutex mu_;  // the counters below
  std::map<std::string, uint64_t> outcomes_;
  uint64_t prompt_tokens_ = 0, computed_tokens_ = 0, bytes_ = 0, store_hits_ = 0;
  double write_busy_s_ = 0, write_hidden_s_ = 0;
  Histogram seconds_, tail_;

  Worker worker_;  // last: its jobs use everything above
};

}  // namespace linfer::server
