#pragma once
// The decode role (`linfer serve --role decode --prefill-url URL[,URL...] --prefill-threshold N`;
// docs/prefill-as-a-service.md): a prompt longer than N tokens is prefilled by a prefill node, its
// state checked record by record as it arrives (fetch_prefill), and the request then runs in the
// local engine from that state. Any failure — node down, slow (--prefill-timeout), answering an
// error, a corrupted or mismatched state — means the engine prefills locally: the request completes
// either way, with the same tokens.
//
// How the state gets into the engine: the node prefills all but the prompt's last token, and the
// state goes into the engine's prefix-state cache under those tokens; the engine, which always
// computes a prompt's last token itself (for its logits), then resumes from it like from any cached
// prefix (usage.prompt_tokens_details.cached_tokens shows it). With a state store (Redis) a stored
// prefix is used first, and only the rest, if it is longer than N, goes to a prefill node.
//
//   DecodeRole role(engine, tok, {.nodes = {PrefillTarget::from_url(u)}, .threshold = 1024});
//   api.set_before_submit([&](auto& prompt, auto submit) { role.before_submit(prompt, std::move(submit)); });
//
// Thread-safety: before_submit and metrics from any thread.

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/engine.h"
#include "runtime/metrics.h"
#include "runtime/state_store_redis.h"
#include "server/prefill_client.h"
#include "server/worker.h"

namespace linfer::server {

struct DecodeRoleConfig {
  std::vector<PrefillTarget> nodes;          // used in turn
  int64_t threshold = 1024;                  // prompts longer than this are prefilled remotely
  std::chrono::milliseconds timeout{60000};  // a whole remote prefill
  bool bf16 = false, zstd = false;           // what to ask the nodes for
  std::string api_key;                       // the nodes' --api-key ("" = send none)
  RedisStateStore* store = nullptr;          // optional shared prefix-state store
  int workers = 4;                           // remote prefills in flight at once
};

class DecodeRole {
 public:
  DecodeRole(Engine& engine, const Tokenizer* tok, DecodeRoleConfig config);

  // Api::BeforeSubmit: short prompts go on at once; long ones after the remote prefill (or the
  // fallback) on a worker thread.
  void before_submit(const std::vector<int32_t>& prompt, std::function<void()> submit);
  // linfer_remote_prefill_* counters and histograms, Prometheus text.
  std::string metrics() const;
  // Returns once every remote prefill begun so far has handed its request on (graceful shutdown).
  void drain() {
    for (auto& w : workers_) w->wait_idle();
  }

 private:
  void prefill(const std::vector<int32_t>& prompt);
  void fallback(const std::string& reason, const std::string& why);

  Engine& engine_;
  const Tokenizer* tok_;
  DecodeRoleConfig config_;
  std::atomic<uint64_t> next_node_{0}, next_worker_{0};  // turns

  mutable std::mutex mu_;  // the counters below
  uint64_t requests_ = 0, bytes_ = 0, store_hits_ = 0, store_tokens_ = 0;
  std::map<std::string, uint64_t> fallbacks_;  // by reason
  Histogram seconds_, first_byte_;

  std::vector<std::unique_ptr<Worker>> workers_;  // last: their jobs use everything above
};

}  // namespace linfer::server
