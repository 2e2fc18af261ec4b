#include "server/completion_output.h"

#include "server/api_error.h"

namespace linfer::server {

namespace {

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }
std::string sse(const Json& j) { return "data: " + dump(j) + "\n\n"; }

Json finish_json(const std::string& f) { return f.empty() ? Json(nullptr) : Json(f); }

}  // namespace

CompletionOutput::CompletionOutput(const CompletionRequest& req, ResponseInfo info, std::shared_ptr<Responder> res)
    : chat_(req.chat),
      stream_(req.stream),
      include_usage_(req.include_usage),
      return_token_ids_(req.return_token_ids),
      logprobs_(req.logprobs),
      prompt_ids_(req.gen.prompt),
      info_(std::move(info)),
      res_(std::move(res)),
      choices_(size_t(req.gen.n)) {}

Json CompletionOutput::envelope(bool chunk) const {
  Json j;
  j["id"] = info_.id;
  j["object"] = chat_ ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion";
  j["created"] = info_.created;
  j["model"] = info_.model;
  return j;
}

std::string CompletionOutput::token_text(int32_t id) const {
  return info_.tok ? info_.tok->decode(std::span<const int32_t>(&id, 1)) : fmt::format("token_id:{}", id);
}

Json CompletionOutput::logprobs_json(const std::vector<TokenLogprobs>& lps, size_t text_offset) const {
  if (chat_) {
    auto bytes = [&](int32_t id) {
      Json b = Json::array();
      if (info_.tok)
        for (unsigned char c : info_.tok->token_bytes(id)) b.push_back(int(c));
      return b;
    };
    Json content = Json::array();
    for (const auto& lp : lps) {
      Json top = Json::array();
      for (const auto& [id, v] : lp.top) top.push_back({{"token", token_text(id)}, {"logprob", v}, {"bytes", bytes(id)}});
      content.push_back({{"token", token_text(lp.id)}, {"logprob", lp.logprob}, {"bytes", bytes(lp.id)}, {"top_logprobs", top}});
    }
    return {{"content", content}};
  }
  Json tokens = Json::array(), values = Json::array(), tops = Json::array(), offsets = Json::array();
  for (const auto& lp : lps) {
    const std::string t = token_text(lp.id);
    tokens.push_back(t);
    values.push_back(lp.logprob);
    Json top = Json::object();
    for (const auto& [id, v] : lp.top) top[token_text(id)] = v;
    tops.push_back(top);
    offsets.push_back(text_offset);
    text_offset += t.size();
  }
  return {{"tokens", tokens}, {"token_logprobs", values}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

Json CompletionOutput::usage_json(const RequestSummary& s) const {
  return {{"prompt_tokens", s.prompt_tokens},
          {"completion_tokens", s.generated_tokens},
          {"total_tokens", s.prompt_tokens + s.generated_tokens},
          {"prompt_tokens_details", {{"cached_tokens", s.cached_tokens}}}};
}

void CompletionOutput::emit(std::string data) {
  if (started_) res_->write(std::move(data));
  else pending_.push_back(std::move(data));
}

void CompletionOutput::start() {
  std::lock_guard lock(mu_);
  if (!stream_) {
    started_ = true;
    return;
  }
  res_->start_stream(200, "text/event-stream");
  if (chat_) {  // the role comes first, in a delta of its own (as OpenAI sends it)
    for (size_t c = 0; c < choices_.size(); ++c) {
      Json j = envelope(true);
      j["choices"] = Json::array({{{"index", c}, {"delta", {{"role", "assistant"}, {"content", ""}}},
                                   {"logprobs", nullptr}, {"finish_reason", nullptr}}});
      if (return_token_ids_ && c == 0) j["prompt_token_ids"] = prompt_ids_;
      res_->write(sse(j));
    }
  }
  started_ = true;
  for (auto& p : pending_) {
    if (p.empty()) res_->end();  // the stream's end arrived before start()
    else res_->write(std::move(p));
  }
  pending_.clear();
}

void CompletionOutput::on_event(const EngineEvent& e) {
  std::lock_guard lock(mu_);
  if (e.kind == EngineEvent::Kind::Error) return fail(500, e.message);
  if (e.kind == EngineEvent::Kind::Done) return finish(e);

  Choice& c = choices_[size_t(e.choice)];
  const size_t offset = c.text.size();
  c.text += e.text;
  c.ids.insert(c.ids.end(), e.ids.begin(), e.ids.end());
  c.logprobs.insert(c.logprobs.end(), e.logprobs.begin(), e.logprobs.end());
  if (e.finish) c.finish = finish_reason_name(*e.finish);
  if (!stream_) return;
  if (e.text.empty() && !e.finish && !return_token_ids_ && !logprobs_) return;  // nothing a client can see

  Json choice = {{"index", e.choice}};
  if (chat_) {
    choice["delta"] = e.text.empty() ? Json::object() : Json{{"content", e.text}};
  } else {
    choice["text"] = e.text;
  }
  choice["logprobs"] = logprobs_ ? logprobs_json(e.logprobs, offset) : Json(nullptr);
  choice["finish_reason"] = e.finish ? finish_json(finish_reason_name(*e.finish)) : Json(nullptr);
  if (return_token_ids_) choice["token_ids"] = e.ids;
  Json j = envelope(true);
  j["choices"] = Json::array({choice});
  if (return_token_ids_ && !chat_ && !sent_prompt_ids_) {
    j["prompt_token_ids"] = prompt_ids_;
    sent_prompt_ids_ = true;
  }
  emit(sse(j));
}

void CompletionOutput::finish(const EngineEvent& done) {
  const RequestSummary& s = done.summary;
  if (s.outcome == "cancelled")  // shutdown (a client that hung up reads nothing)
    return fail(503, "the server shut down before this request finished");
  if (stream_) {
    if (include_usage_) {
      Json j = envelope(true);
      j["choices"] = Json::array();
      j["usage"] = usage_json(s);
      emit(sse(j));
    }
    emit("data: [DONE]\n\n");
    if (started_) res_->end();
    else pending_.emplace_back();  // start() ends the stream after the rest
    return;
  }
  Json j = envelope(false);
  j["choices"] = Json::array();
  for (size_t i = 0; i < choices_.size(); ++i) {
    const Choice& c = choices_[i];
    Json choice = {{"index", i}};
    if (chat_) choice["message"] = {{"role", "assistant"}, {"content", c.text}};
    else choice["text"] = c.text;
    choice["logprobs"] = logprobs_ ? logprobs_json(c.logprobs, 0) : Json(nullptr);
    choice["finish_reason"] = finish_json(c.finish);
    if (return_token_ids_) choice["token_ids"] = c.ids;
    j["choices"].push_back(std::move(choice));
  }
  j["usage"] = usage_json(s);
  if (return_token_ids_) j["prompt_token_ids"] = prompt_ids_;
  res_->send(200, "application/json", dump(j));
}

void CompletionOutput::fail(int status, const std::string& message) {
  if (!stream_) return res_->send(status, "application/json", error_body(status, message));
  // The stream's status line is already 200: the error goes in-band, as vLLM does.
  emit("data: " + error_body(status, message) + "\n\n");
  emit("data: [DONE]\n\n");
  if (started_) res_->end();
  else pending_.emplace_back();
}

}  // namespace linfer::server
