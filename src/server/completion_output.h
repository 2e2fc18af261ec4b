#pragma once
// Turns one request's engine events into the OpenAI response: one JSON object at the end, or SSE
// chunks as tokens come ("data: {...}\n\n", then "data: [DONE]\n\n"), in the completions shape
// (object "text_completion", choices[].text) or the chat shape ("chat.completion" /
// "chat.completion.chunk", choices[].message / .delta). usage is counted by the engine: exact.
//
//   auto out = std::make_shared<CompletionOutput>(req, info, responder);
//   uint64_t id = engine.submit(req.gen, [out](const EngineEvent& e) { out->on_event(e); });
//   out->start();     // streams: sends the header and whatever arrived meanwhile
//
// Thread-safety: on_event runs on the engine thread, start() on a network thread; one mutex orders
// everything sent to the Responder.

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/engine.h"
#include "server/completion_request.h"
#include "server/http.h"
#include "server/json_fields.h"

namespace linfer::server {

struct ResponseInfo {
  std::string id;          // "cmpl-..." / "chatcmpl-..."
  int64_t created = 0;     // unix seconds
  std::string model;
  const Tokenizer* tok = nullptr;
};

class CompletionOutput {
 public:
  CompletionOutput(const CompletionRequest& req, ResponseInfo info, std::shared_ptr<Responder> res);
  void start();
  void on_event(const EngineEvent& e);

 private:
  struct Choice {
    std::string text;
    std::vector<int32_t> ids;
    std::vector<TokenLogprobs> logprobs;
    std::string finish;
  };
  Json envelope(bool chunk) const;
  Json logprobs_json(const std::vector<TokenLogprobs>& lps, size_t text_offset) const;
  Json usage_json(const RequestSummary& s) const;
  std::string token_text(int32_t id) const;
  void emit(std::string sse);  // sends now if started, else keeps it for start()
  void finish(const EngineEvent& done);
  void fail(int status, const std::string& message);

  bool chat_, stream_, include_usage_, return_token_ids_, logprobs_;
  std::vector<int32_t> prompt_ids_;
  ResponseInfo info_;
  std::shared_ptr<Responder> res_;
  std::mutex mu_;
  bool started_ = false;
  bool sent_prompt_ids_ = false;
  std::vector<std::string> pending_;  // SSE data before start(); an empty entry: end the stream
  std::vector<Choice> choices_;
};

}  // namespace linfer::server
