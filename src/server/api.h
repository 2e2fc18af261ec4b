#pragma once
// The OpenAI-compatible API over one Engine (docs/server.md lists every endpoint):
//   POST /v1/completions, /v1/chat/completions   generation (JSON or SSE)
//   GET  /v1/models, /health, /metrics            status
//   POST /tokenize, /detokenize                   the model's tokenizer
//   POST /v1/state/save, /v1/state/restore        a conversation's state in --state-dir
// The API answers /health with 503 until set_ready() and after begin_shutdown(); everything under
// /v1/, /tokenize and /detokenize needs `Authorization: Bearer <key>` when a key is set.
//
//   Api api({.model_name = "demo", .max_context = 4096});
//   HttpServer http([&](HttpRequest r, auto res) { api.handle(std::move(r), std::move(res)); }, {});
//   ... load the model ...
//   api.set_ready(engine, chat_prompt);
//
// Thread-safety: handle() runs on any network thread; set_ready / begin_shutdown from the controller.

#include <atomic>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/engine.h"
#include "server/chat_prompt.h"
#include "server/completion_output.h"
#include "server/completion_request.h"
#include "server/http.h"
#include "server/worker.h"

namespace linfer::server {

struct ApiConfig {
  std::string model_name;  // served model id (/v1/models)
  std::string api_key;     // "" = no authentication
  std::string state_dir;   // "" = no state endpoints
};

class Api {
 public:
  explicit Api(ApiConfig config);

  void set_ready(Engine* engine, const ChatPrompt* chat);
  void begin_shutdown();
  void wait_files();  // returns once queued state-file work is done (before the engine goes away)
  void handle(HttpRequest req, std::shared_ptr<Responder> res);

  // A role's extra POST endpoint (e.g. /v1/prefill, server/prefill_api.h), served with the same
  // authentication, error answers and readiness (503 while loading) as the others, and text it adds
  // to /metrics. Call before the server starts.
  using Route = std::function<void(const HttpRequest&, const std::shared_ptr<Responder>&)>;
  void add_route(std::string path, Route route);
  void add_metrics(std::function<std::string()> text);
  // A role's step between checking a completion and submitting it to the engine (the decode role's
  // remote prefill, server/decode_role.h): it gets the prompt's token ids and must call `submit`
  // exactly once, from any thread, when it is done. Call before the server starts.
  using BeforeSubmit = std::function<void(const std::vector<int32_t>& prompt, std::function<void()> submit)>;
  void set_before_submit(BeforeSubmit hook);

 private:
  void route(const HttpRequest& req, const std::shared_ptr<Responder>& res);
  void completions(const HttpRequest& req, const std::shared_ptr<Responder>& res, bool chat);
  void models(const std::shared_ptr<Responder>& res);
  void tokenize(const HttpRequest& req, const std::shared_ptr<Responder>& res);
  void detokenize(const HttpRequest& req, const std::shared_ptr<Responder>& res);
  void state_save(const HttpRequest& req, const std::shared_ptr<Responder>& res);
  void state_restore(const HttpRequest& req, const std::shared_ptr<Responder>& res);
  void submit(Engine& eng, GenerationRequest gen, const std::shared_ptr<CompletionOutput>& out,
              const std::shared_ptr<Responder>& res);
  // Sends the error response for `error` (ApiError: its status; other linfer::Error: 400; else 500),
  // logs it with `what` ("POST /v1/completions") and counts it.
  void answer_error(std::exception_ptr error, const std::string& what, const std::shared_ptr<Responder>& res);
  void check_auth(const HttpRequest& req) const;
  Engine& engine() const;  // throws ApiError 503 while loading or shutting down

  ApiConfig config_;
  std::atomic<Engine*> engine_{nullptr};
  std::atomic<bool> shutting_down_{false};
  ApiLimits limits_;  // written once by set_ready, before engine_ is published
  std::map<std::string, Route> routes_;                 // add_route
  std::vector<std::function<std::string()>> metrics_;   // add_metrics
  BeforeSubmit before_submit_;                          // set_before_submit
  Worker files_;      // state file reads and writes; last: its queued jobs use the members above
};

}  // namespace linfer::server
