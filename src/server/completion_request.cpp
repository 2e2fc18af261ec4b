#include "server/completion_request.h"

#include <random>

#include "server/api_error.h"
#include "server/json_fields.h"

namespace linfer::server {

namespace {

constexpr int kMaxLogprobs = 20;  // vLLM's default cap
constexpr size_t kMaxStops = 32;

// Fields OpenAI defines that change what is generated and that this server does not implement: a
// non-default value is refused rather than silently ignored.
void refuse_unsupported(const Fields& f) {
  for (const char* key : {"presence_penalty", "frequency_penalty", "repetition_penalty"}) {
    if (auto v = f.number(key, -1e9, 1e9); v && *v != (std::string(key) == "repetition_penalty" ? 1.0 : 0.0))
      throw ApiError(400, fmt::format("'{}' is not supported by this server", key), key);
  }
  if (const auto* lb = f.get("logit_bias"); lb && !lb->empty())
    throw ApiError(400, "'logit_bias' is not supported by this server", "logit_bias");
  if (f.boolean("echo").value_or(false)) throw ApiError(400, "'echo' is not supported by this server", "echo");
  if (f.has("suffix")) throw ApiError(400, "'suffix' is not supported by this server", "suffix");
}

}  // namespace

void check_model(const Json& body, const ApiLimits& limits) {
  const Fields f(body);
  if (auto m = f.string("model"); m && *m != limits.model_name)
    throw ApiError(404, fmt::format("the model '{}' does not exist; this server serves '{}'", *m, limits.model_name),
                   "model");
}

std::vector<int32_t> request_prompt(const Json& body, const ApiLimits& limits, bool chat) {
  std::vector<int32_t> ids;
  if (chat) {
    const auto* messages = Fields(body).get("messages");
    if (!messages) throw ApiError(400, "'messages' is required", "messages");
    if (!limits.chat)
      throw ApiError(400, "this model has no chat template (tokenizer_config.json 'chat_template' or chat_template.jinja, "
                          "or a GGUF's tokenizer.chat_template); use /v1/completions", "messages");
    if (!limits.tok) throw ApiError(400, "chat needs the model's tokenizer, and this model has none", "messages");
    const std::string text = limits.chat->render(body);
    ids = limits.tok->encode(text);
  } else {
    const auto* p = Fields(body).get("prompt");
    if (!p) throw ApiError(400, "'prompt' is required", "prompt");
    Prompt prompt = parse_prompt(*p, "prompt", limits.vocab);
    if (prompt.is_text) {
      if (!limits.tok)
        throw ApiError(400, "this model has no tokenizer: give the prompt as an array of token ids", "prompt");
      ids = limits.tok->encode(prompt.text);
    } else {
      ids = std::move(prompt.ids);
    }
  }
  const char* key = chat ? "messages" : "prompt";
  if (ids.empty()) throw ApiError(400, "the prompt has no tokens", key);
  if (int64_t(ids.size()) >= limits.max_context)
    throw ApiError(400, fmt::format("this server's maximum context is {} tokens, and the prompt has {} "
                                    "(at least one token must be left to generate)", limits.max_context, ids.size()),
                   key);
  return ids;
}

CompletionRequest parse_completion(const Json& body, const ApiLimits& limits, bool chat) {
  const Fields f(body);
  check_model(body, limits);
  refuse_unsupported(f);
  CompletionRequest r;
  r.chat = chat;
  GenerationRequest& g = r.gen;
  g.prompt = request_prompt(body, limits, chat);
  const int64_t P = int64_t(g.prompt.size());
  const int64_t room = limits.max_context - P;

  const char* max_key = chat && f.has("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  if (auto v = f.integer(max_key, INT64_MIN, INT64_MAX)) {
    if (*v < 1) throw ApiError(400, fmt::format("'{}' must be at least 1, not {}", max_key, *v), max_key);
    if (*v > room)
      throw ApiError(400, fmt::format("this server's maximum context is {} tokens; the prompt has {}, so '{}' can be "
                                      "at most {}, not {}", limits.max_context, P, max_key, room, *v), max_key);
    g.max_tokens = *v;
  } else {
    g.max_tokens = chat ? room : std::min<int64_t>(16, room);
  }
  g.min_tokens = f.integer("min_tokens", 0, g.max_tokens).value_or(0);
  g.ignore_eos = f.boolean("ignore_eos").value_or(false);
  g.stop = f.strings("stop", kMaxStops);
  if (!g.stop.empty() && !limits.tok) throw ApiError(400, "stop strings need a tokenizer, and this model has none", "stop");
  g.n = int(f.integer("n", 1, limits.max_seqs).value_or(1));
  if (auto best_of = f.integer("best_of", 1, limits.max_seqs); best_of && *best_of != g.n)
    throw ApiError(400, "'best_of' other than n is not supported by this server", "best_of");

  SamplingParams& sp = g.sampling;
  sp.temperature = float(f.number("temperature", 0.0, 1e4).value_or(1.0));
  sp.greedy = sp.temperature == 0.0f;
  sp.top_p = float(f.number("top_p", 1e-9, 1.0).value_or(1.0));
  const int64_t top_k = f.integer("top_k", -1, INT32_MAX).value_or(0);
  sp.top_k = top_k < 0 ? 0 : int(top_k);  // vLLM's -1 means "no limit", as 0 does here
  if (auto seed = f.integer("seed", INT64_MIN, INT64_MAX)) sp.seed = uint64_t(*seed);
  else sp.seed = std::random_device{}() * 0x100000000ull + std::random_device{}();

  if (chat) {
    r.logprobs = f.boolean("logprobs").value_or(false);
    const int top = int(f.integer("top_logprobs", 0, kMaxLogprobs).value_or(0));
    if (f.has("top_logprobs") && !r.logprobs)
      throw ApiError(400, "'top_logprobs' needs 'logprobs': true", "top_logprobs");
    if (r.logprobs) g.top_logprobs = top;
  } else if (auto n = f.integer("logprobs", 0, kMaxLogprobs)) {
    r.logprobs = true;
    g.top_logprobs = int(*n);
  }
  r.stream = f.boolean("stream").value_or(false);
  if (const auto* so = f.get("stream_options")) {
    if (!so->is_object()) throw ApiError(400, "'stream_options' must be an object", "stream_options");
    r.include_usage = Fields(*so).boolean("include_usage").value_or(false);
  }
  r.return_token_ids = f.boolean("return_token_ids").value_or(false);
  return r;
}

}  // namespace linfer::server
