#pragma once
// The body of POST /v1/completions or /v1/chat/completions, checked field by field and turned into
// an engine request. Sampling defaults are OpenAI's (temperature 1, top_p 1); temperature 0 is greedy.
// max_tokens defaults to 16 for completions and to the rest of the context for chat.
//
//   CompletionRequest r = parse_completion(body, ctx, /*chat=*/false);   // throws ApiError (4xx)

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "linfer/tokenizer.h"
#include "runtime/engine.h"
#include "server/chat_prompt.h"
#include "server/json_fields.h"

namespace linfer::server {

// What request parsing needs to know about the server.
struct ApiLimits {
  std::string model_name;        // the served name; a request naming another model gets 404
  int64_t vocab = 0;
  int64_t max_context = 0;
  int max_seqs = 1;
  const Tokenizer* tok = nullptr;     // null: token-id prompts only
  const ChatPrompt* chat = nullptr;   // null: the model has no chat template
};

struct CompletionRequest {
  bool chat = false;
  GenerationRequest gen;         // prompt (tokenized), limits, sampling
  bool stream = false;
  bool include_usage = false;    // stream_options.include_usage
  bool return_token_ids = false;
  bool logprobs = false;         // completions: "logprobs": N; chat: "logprobs": true (+ "top_logprobs": N)
};

CompletionRequest parse_completion(const Json& body, const ApiLimits& limits, bool chat);

// The prompt of a completion / tokenize / state request: "prompt" (text or ids) or, for chat,
// "messages" rendered with the chat template. Checks the length against the context.
std::vector<int32_t> request_prompt(const Json& body, const ApiLimits& limits, bool chat);

// 404 if the body names a model this server does not serve.
void check_model(const Json& body, const ApiLimits& limits);

}  // namespace linfer::server
