// POST /v1/state/save and /v1/state/restore: a conversation's state as a file in --state-dir.
//
//   save    {"name": "chat-42", "prompt": <text or ids>}  (or "messages": [...] rendered like chat)
//           -> the prompt is brought into a state (from the prefix cache where it can be: usually a
//              finished turn), written as NAME.lstate (wire format, with the last token's logits)
//              and NAME.tokens.json (the token ids it holds)
//   restore {"name": "chat-42"}
//           -> both files read and checked (model, tokenizer, checksums, token count), the state put
//              into the prefix cache under its tokens: the next request whose prompt extends them
//              resumes from it (usage.prompt_tokens_details.cached_tokens shows it)
// Names are [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}: no path separators, so nothing outside the directory
// can be named. File work runs on the API's worker thread.

#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "runtime/state_file.h"
#include "server/api.h"
#include "server/api_error.h"
#include "server/json_fields.h"

namespace linfer::server {

namespace fs = std::filesystem;

namespace {

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

std::string state_name(const Json& body) {
  const auto name = Fields(body).string("name");
  if (!name) throw ApiError(400, "'name' is required", "name");
  const auto ok = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-'; };
  const bool valid = !name->empty() && name->size() <= 128 && (std::isalnum(static_cast<unsigned char>((*name)[0])) ||
                                                                (*name)[0] == '_') &&
                     std::all_of(name->begin(), name->end(), ok);
  if (!valid)
    throw ApiError(400, fmt::format("'name' must be 1-128 characters of [A-Za-z0-9_.-], starting with a letter, digit "
                                    "or '_'; '{}' is not", *name), "name");
  return *name;
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

void write_tokens(const fs::path& path, const std::vector<int32_t>& tokens) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << Json{{"tokens", tokens}}.dump();
    LINFER_CHECK(out.good(), "cannot write {}", tmp.string());
  }
  fs::rename(tmp, path);
}

std::vector<int32_t> read_tokens(const fs::path& path, int64_t vocab) {
  std::ifstream in(path, std::ios::binary);
  LINFER_CHECK(in.good(), "cannot read {}", path.string());
  const Json j = Json::parse(in, nullptr, false);
  LINFER_CHECK(j.is_object() && j.contains("tokens"), "{}: not a token list ({{\"tokens\": [...]}})", path.string());
  return parse_ids(j["tokens"], "tokens", vocab);
}

}  // namespace

void Api::state_save(const HttpRequest& req, const std::shared_ptr<Responder>& res) {
  Engine& eng = engine();
  if (config_.state_dir.empty())
    throw ApiError(400, "this server keeps no states: start it with --state-dir DIR");
  const Json body = parse_body(req.body);
  check_model(body, limits_);
  const std::string name = state_name(body);
  GenerationRequest g;
  g.prompt = request_prompt(body, limits_, body.contains("messages"));
  g.snapshot = true;
  g.label = "save " + name;
  const auto t0 = std::chrono::steady_clock::now();
  const fs::path dir = config_.state_dir;
  auto on_event = [this, &eng, res, name, dir, t0](const EngineEvent& e) {
    if (e.kind == EngineEvent::Kind::Error) return res->send(500, "application/json", error_body(500, e.message));
    if (e.kind != EngineEvent::Kind::Done) return;
    if (!e.snapshot) return res->send(503, "application/json", error_body(503, "the server shut down before saving"));
    files_.post([&eng, res, name, dir, t0, snap = e.snapshot] {
      try {
        const fs::path state = dir / (name + ".lstate"), tokens = dir / (name + ".tokens.json");
        save_state_file(state.string(), eng.model(), eng.tokenizer(), snap->state, snap->logits, {});
        write_tokens(tokens, snap->tokens);
        const uint64_t bytes = fs::file_size(state) + fs::file_size(tokens);
        fmt::print(stderr, "linfer serve: saved state '{}': {} tokens, {} bytes, {:.1f} ms\n", name, snap->tokens.size(),
                   bytes, ms_since(t0));
        res->send(200, "application/json",
                  dump({{"name", name}, {"n_tokens", snap->tokens.size()}, {"bytes", bytes}, {"save_ms", ms_since(t0)}}));
      } catch (const std::exception& ex) {
        const std::string msg = fmt::format("saving state '{}' failed: {}", name, ex.what());
        fmt::print(stderr, "linfer serve: POST /v1/state/save -> 500 ({})\n", msg);
        res->send(500, "application/json", error_body(500, msg));
      }
    });
  };
  try {
    eng.submit(std::move(g), on_event);
  } catch (const QueueFull& e) {
    throw ApiError(429, fmt::format("the server is busy: {}", e.what()), "", {{"Retry-After", "1"}});
  } catch (const ShuttingDown& e) {
    throw ApiError(503, e.what());
  }
}

void Api::state_restore(const HttpRequest& req, const std::shared_ptr<Responder>& res) {
  Engine& eng = engine();
  if (config_.state_dir.empty())
    throw ApiError(400, "this server keeps no states: start it with --state-dir DIR");
  const Json body = parse_body(req.body);
  check_model(body, limits_);
  const std::string name = state_name(body);
  const fs::path state = fs::path(config_.state_dir) / (name + ".lstate");
  const fs::path tokens = fs::path(config_.state_dir) / (name + ".tokens.json");
  if (!fs::exists(state) || !fs::exists(tokens))
    throw ApiError(404, fmt::format("no saved state named '{}'", name), "name");
  const int64_t vocab = limits_.vocab;
  const auto t0 = std::chrono::steady_clock::now();
  files_.post([&eng, res, name, state, tokens, vocab, t0] {
    try {
      const std::vector<int32_t> ids = read_tokens(tokens, vocab);
      LoadedState loaded = load_state_file(state.string(), eng.model(), eng.tokenizer());
      LINFER_CHECK(loaded.state.n_tokens() == int64_t(ids.size()), "{} holds {} tokens but {} lists {}",
                   state.string(), loaded.state.n_tokens(), tokens.string(), ids.size());
      const size_t bytes = loaded.state.bytes();
      PrefixCache& cache = eng.prefix_cache();
      LINFER_CHECK(bytes + ids.size() * sizeof(int32_t) < cache.options().byte_budget,
                   "the state ({} bytes) does not fit in the prefix cache ({} bytes; --prefix-cache-bytes)", bytes,
                   cache.options().byte_budget);
      cache.insert(ids, loaded.state);
      fmt::print(stderr, "linfer serve: restored state '{}': {} tokens, {} bytes, {:.1f} ms\n", name, ids.size(), bytes,
                 ms_since(t0));
      res->send(200, "application/json",
                dump({{"name", name}, {"n_tokens", ids.size()}, {"bytes", bytes}, {"restore_ms", ms_since(t0)}}));
    } catch (const std::exception& ex) {
      const std::string msg = fmt::format("restoring state '{}' failed: {}", name, ex.what());
      fmt::print(stderr, "linfer serve: POST /v1/state/restore -> 400 ({})\n", msg);
      res->send(400, "application/json", error_body(400, msg));
    }
  });
}

}  // namespace linfer::server
