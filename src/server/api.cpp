// Routing, authentication, errors, and the small endpoints (health, models, metrics, tokenize).

#include "server/api.h"

#include <fmt/format.h>

#include <chrono>
#include <random>

#include "server/api_error.h"
#include "server/completion_output.h"
#include "server/json_fields.h"

namespace linfer::server {

namespace {

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

void send_json(const std::shared_ptr<Responder>& res, const Json& j) { res->send(200, "application/json", dump(j)); }

// Equal strings, in time that does not depend on where they differ.
bool same_secret(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i % std::max<size_t>(b.size(), 1)]);
  return diff == 0;
}

bool needs_key(const std::string& path) {
  return path.rfind("/v1/", 0) == 0 || path == "/tokenize" || path == "/detokenize";
}

}  // namespace

Api::Api(ApiConfig config) : config_(std::move(config)) { limits_.model_name = config_.model_name; }

void Api::set_ready(Engine* engine, const ChatPrompt* chat) {
  limits_.vocab = engine->model().info().vocab_size;
  limits_.max_context = engine->options().max_context;
  limits_.max_seqs = engine->options().max_seqs;
  limits_.tok = engine->tokenizer();
  limits_.chat = chat;
  engine_.store(engine, std::memory_order_release);
}

void Api::begin_shutdown() { shutting_down_ = true; }

void Api::add_route(std::string path, Route route) { routes_[std::move(path)] = std::move(route); }

void Api::add_metrics(std::function<std::string()> text) { metrics_.push_back(std::move(text)); }

void Api::set_before_submit(BeforeSubmit hook) { before_submit_ = std::move(hook); }

void Api::wait_files() { files_.wait_idle(); }

Engine& Api::engine() const {
  Engine* e = engine_.load(std::memory_order_acquire);
  if (!e) throw ApiError(503, "Loading model");
  if (shutting_down_) throw ApiError(503, "the server is shutting down");
  return *e;
}

void Api::check_auth(const HttpRequest& req) const {
  if (config_.api_key.empty() || !needs_key(req.path)) return;
  const std::string h = req.header("authorization");
  const std::string prefix = "Bearer ";
  if (h.rfind(prefix, 0) != 0)
    throw ApiError(401, "missing API key: send the header 'Authorization: Bearer <key>'", "",
                   {{"WWW-Authenticate", "Bearer"}});
  if (!same_secret(h.substr(prefix.size()), config_.api_key))
    throw ApiError(401, "invalid API key", "", {{"WWW-Authenticate", "Bearer"}});
}

void Api::handle(HttpRequest req, std::shared_ptr<Responder> res) {
  try {
    route(req, res);
  } catch (...) {
    answer_error(std::current_exception(), req.method + " " + req.path, res);
  }
}

void Api::answer_error(std::exception_ptr error, const std::string& what, const std::shared_ptr<Responder>& res) {
  int status = 0;
  std::string message;
  HttpHeaders headers;
  try {
    std::rethrow_exception(error);
  } catch (const ApiError& e) {
    status = e.status();
    message = e.what();
    headers = e.headers();
    res->send(status, "application/json", error_body(status, message, e.param()), headers);
  } catch (const Error& e) {  // a check below the API (tokenizer, state file, engine): the input's fault
    status = 400;
    message = e.what();
    res->send(status, "application/json", error_body(status, message));
  } catch (const std::exception& e) {
    status = 500;
    message = e.what();
    res->send(status, "application/json", error_body(status, "internal error: " + message));
  }
  fmt::print(stderr, "linfer serve: {} -> {} ({})\n", what, status, message);
  if (Engine* e = engine_.load(std::memory_order_acquire))
    e->metrics().count_request(status == 429 || status == 503 ? "rejected" : status >= 500 ? "error" : "invalid");
}

void Api::route(const HttpRequest& req, const std::shared_ptr<Responder>& res) {
  const std::string& p = req.path;
  const bool get = req.method == "GET", post = req.method == "POST";
  auto only = [&](bool ok, const char* method) {
    if (!ok) throw ApiError(405, fmt::format("{} takes {} requests, not {}", p, method, req.method));
  };
  if (p == "/health") {
    only(get, "GET");
    engine();  // 503 while loading or shutting down
    return send_json(res, {{"status", "ok"}});
  }
  if (p == "/metrics") {
    only(get, "GET");
    Engine& e = engine();
    std::string text = e.metrics().prometheus(e.prefix_cache().stats());
    for (const auto& m : metrics_) text += m();
    return res->send(200, "text/plain; version=0.0.4", text);
  }
  check_auth(req);
  if (auto it = routes_.find(p); it != routes_.end()) {
    only(post, "POST");
    engine();  // 503 while loading or shutting down
    return it->second(req, res);
  }
  if (p == "/v1/completions" || p == "/v1/chat/completions") {
    only(post, "POST");
    return completions(req, res, p == "/v1/chat/completions");
  }
  if (p == "/v1/models") {
    only(get, "GET");
    return models(res);
  }
  if (p == "/tokenize") {
    only(post, "POST");
    return tokenize(req, res);
  }
  if (p == "/detokenize") {
    only(post, "POST");
    return detokenize(req, res);
  }
  if (p == "/v1/state/save") {
    only(post, "POST");
    return state_save(req, res);
  }
  if (p == "/v1/state/restore") {
    only(post, "POST");
    return state_restore(req, res);
  }
  throw ApiError(404, fmt::format("no such endpoint: {} {}", req.method, p));
}

void Api::models(const std::shared_ptr<Responder>& res) {
  engine();
  const int64_t created =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  Json m = {{"id", config_.model_name},
            {"object", "model"},
            {"created", created},
            {"owned_by", "linfer"},
            {"max_model_len", limits_.max_context}};
  send_json(res, {{"object", "list"}, {"data", Json::array({m})}});
}

void Api::tokenize(const HttpRequest& req, const std::shared_ptr<Responder>& res) {
  engine();
  const Json body = parse_body(req.body);
  check_model(body, limits_);
  if (!limits_.tok) throw ApiError(400, "this model has no tokenizer");
  const bool chat = body.contains("messages");
  std::vector<int32_t> ids;
  if (chat) {
    if (!limits_.chat) throw ApiError(400, "this model has no chat template", "messages");
    ids = limits_.tok->encode(limits_.chat->render(body));
  } else {
    const auto text = Fields(body).string("prompt");
    if (!text) throw ApiError(400, "'prompt' (text) or 'messages' is required", "prompt");
    ids = limits_.tok->encode(*text);
  }
  send_json(res, {{"tokens", ids}, {"count", ids.size()}, {"max_model_len", limits_.max_context}});
}

void Api::detokenize(const HttpRequest& req, const std::shared_ptr<Responder>& res) {
  engine();
  const Json body = parse_body(req.body);
  check_model(body, limits_);
  if (!limits_.tok) throw ApiError(400, "this model has no tokenizer");
  const Json* tokens = Fields(body).get("tokens");
  if (!tokens) throw ApiError(400, "'tokens' (an array of token ids) is required", "tokens");
  const auto ids = parse_ids(*tokens, "tokens", limits_.vocab);
  send_json(res, {{"prompt", limits_.tok->decode(ids)}});
}

void Api::completions(const HttpRequest& req, const std::shared_ptr<Responder>& res, bool chat) {
  Engine& eng = engine();
  const Json body = parse_body(req.body);
  CompletionRequest cr = parse_completion(body, limits_, chat);

  thread_local std::mt19937_64 rng{std::random_device{}()};
  ResponseInfo info;
  info.id = fmt::format("{}-{:016x}{:08x}", chat ? "chatcmpl" : "cmpl", rng(), uint32_t(rng()));
  info.created =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  info.model = config_.model_name;
  info.tok = limits_.tok;
  cr.gen.label = info.id;
  auto out = std::make_shared<CompletionOutput>(cr, info, res);
  if (!before_submit_) return submit(eng, std::move(cr.gen), out, res);
  // The role's step may take a while (a remote prefill): the request goes on when it calls back, on
  // whatever thread that is, and answers its own errors then.
  const std::vector<int32_t> prompt = cr.gen.prompt;
  before_submit_(prompt, [this, &eng, gen = std::move(cr.gen), out, res, what = req.method + " " + req.path]() mutable {
    try {
      submit(eng, std::move(gen), out, res);
    } catch (...) {
      answer_error(std::current_exception(), what, res);
    }
  });
}

void Api::submit(Engine& eng, GenerationRequest gen, const std::shared_ptr<CompletionOutput>& out,
                 const std::shared_ptr<Responder>& res) {
  uint64_t id = 0;
  try {
    id = eng.submit(std::move(gen), [out](const EngineEvent& e) { out->on_event(e); });
  } catch (const QueueFull& e) {
    throw ApiError(429, fmt::format("the server is busy: {}", e.what()), "", {{"Retry-After", "1"}});
  } catch (const ShuttingDown& e) {
    throw ApiError(503, e.what());
  }
  out->start();
  res->on_disconnect([&eng, id] { eng.cancel(id); });
}

}  // namespace linfer::server
