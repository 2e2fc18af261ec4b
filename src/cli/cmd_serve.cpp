// linfer serve [--model DIR] [--host 127.0.0.1] [--port 8080] [--max-seqs N] [--max-batch-tokens N]
//              [--max-context N] [--api-key KEY] [--prefix-cache-bytes N] [--state-dir DIR] [--device cuda] ...
// An OpenAI-compatible HTTP server (docs/server.md). It listens first (GET /health answers 503 while
// the model loads), then prints what it holds — weights, the state pool (slots x bytes, allocated
// now), the KV budget of the attention layers, the prefix-cache budget — and serves until SIGTERM or
// SIGINT: then it stops accepting, lets in-flight requests finish for --shutdown-timeout seconds,
// cancels the rest and exits 0. Without --model it serves the embedded demo model.

#include <csignal>
#include <filesystem>
#include <thread>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/model_args.h"
#include "linfer/core/error.h"
#include "linfer/model.h"
#include "linfer/tokenizer.h"
#include "runtime/engine.h"
#include "runtime/state_file.h"
#include "runtime/state_store_redis.h"
#include "server/api.h"
#include "server/decode_role.h"
#include "server/http_server.h"
#include "server/prefill_api.h"

namespace linfer::cli {

namespace {

volatile std::sig_atomic_t g_signal = 0;
void on_signal(int sig) { g_signal = sig; }

std::string human(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{:.0f} B", bytes) : fmt::format("{:.1f} {}", bytes, units[u]);
}

uint64_t weights_bytes(const std::string& dir) {
  uint64_t total = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().extension() == ".safetensors") total += e.file_size();
  return total;
}

}  // namespace

void add_serve(CLI::App& app) {
  auto* cmd = app.add_subcommand("serve", "serve the model over an OpenAI-compatible HTTP API");
  struct Args {
    std::string model, host = "127.0.0.1", api_key, state_dir, name, device;
    int port = 8080, io_threads = 2;
    EngineOptions engine;
    size_t max_body = size_t(8) << 20;
    double shutdown_timeout = 30;
    std::string role, state_store;  // prefill as a service (docs/prefill-as-a-service.md)
    int prefill_queue = 16;
    int64_t prefill_ubatch = 0;
    std::string prefill_urls;
    int64_t prefill_threshold = 1024;
    double prefill_timeout = 60;
    bool prefill_bf16 = false, prefill_zstd = false;
    std::string prefill_api_key;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--model", a->model, "model folder (default: the embedded demo model)");
  add_device_option(cmd, a->device);  // the engine's state slots and the prefill role's forward run there too
  cmd->add_option("--host", a->host, "address to listen on")->capture_default_str();
  cmd->add_option("--port", a->port, "port (0: any free port, printed at start)")->capture_default_str()
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--max-seqs", a->engine.max_seqs, "state slots: sequences running at once")->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-batch-tokens", a->engine.max_batch_tokens, "tokens per forward call (decodes + prompt chunks)")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--max-context", a->engine.max_context, "prompt + generated tokens per sequence")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--kv-budget-bytes", a->engine.kv_budget_bytes,
                  "attention KV bytes admitted requests may reserve (default: max-seqs x max-context tokens)");
  cmd->add_option("--prefix-cache-bytes", a->engine.prefix_cache_bytes, "prefix-state cache budget (0: off)")
      ->capture_default_str();
  cmd->add_option("--max-queue", a->engine.max_waiting, "requests that may wait for a slot; more get 429")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--api-key", a->api_key, "require 'Authorization: Bearer KEY' on /v1/*, /tokenize, /detokenize");
  cmd->add_option("--state-dir", a->state_dir, "directory for /v1/state/save and /v1/state/restore");
  cmd->add_option("--served-model-name", a->name, "model id clients send (default: the folder's name)");
  cmd->add_option("--max-body-bytes", a->max_body, "largest request body accepted (413 above)")->capture_default_str();
  cmd->add_option("--shutdown-timeout", a->shutdown_timeout, "seconds in-flight requests get to finish on SIGTERM")
      ->capture_default_str();
  cmd->add_option("--io-threads", a->io_threads, "HTTP threads (connections are asynchronous: a few serve thousands)")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--role", a->role, "prefill: also answer POST /v1/prefill with the prompt's state, streamed; "
                  "decode: prefill long prompts on --prefill-url nodes")
      ->check(CLI::IsMember({"prefill", "decode"}));
  cmd->add_option("--state-store", a->state_store, "redis://HOST:PORT: prefix states shared by every node");
  cmd->add_option("--prefill-queue", a->prefill_queue, "prefills that may wait (prefill role); more get 429")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--prefill-ubatch", a->prefill_ubatch, "prefill role: run each prompt but its last N tokens "
                  "in chunks of N first, unstreamed, so memory follows N instead of the prompt (0: the whole "
                  "prompt in the streamed pass, which hides the most writing)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--prefill-url", a->prefill_urls, "prefill nodes or their balancer, comma-separated (decode role)");
  cmd->add_option("--prefill-threshold", a->prefill_threshold, "prompts longer than this go to a prefill node")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--prefill-timeout", a->prefill_timeout, "seconds a remote prefill may take before prefilling locally")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_flag("--prefill-bf16", a->prefill_bf16, "ask prefill nodes for bf16 states (half the bytes, not exact)");
  cmd->add_flag("--prefill-zstd", a->prefill_zstd, "ask prefill nodes for zstd-compressed states");
  cmd->add_option("--prefill-api-key", a->prefill_api_key, "the prefill nodes' --api-key, sent to them as "
                  "'Authorization: Bearer KEY' (decode role; other roles ignore it)")
      ->envname("LINFER_PREFILL_API_KEY");
  cmd->callback([a] {
    const std::string dir = a->model.empty() ? demo_model_dir() : a->model;
    std::string name = a->name;
    if (name.empty()) name = std::filesystem::path(dir).lexically_normal().filename().string();
    if (name.empty()) name = std::filesystem::path(dir).lexically_normal().parent_path().filename().string();
    LINFER_CHECK(a->state_store.empty() || !a->role.empty(), "--state-store needs --role prefill or --role decode");
    LINFER_CHECK(a->prefill_urls.empty() == (a->role != "decode"), "--role decode and --prefill-url go together");
    for (char c : a->prefill_api_key)  // it goes into an HTTP header as it is
      LINFER_CHECK(c > ' ' && c < 127, "--prefill-api-key (or LINFER_PREFILL_API_KEY): only printable ASCII without "
                   "spaces can be sent");
    if (!a->state_dir.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(a->state_dir, ec);
      LINFER_CHECK(std::filesystem::is_directory(a->state_dir), "--state-dir {}: not a directory ({})", a->state_dir,
                   ec.message());
    }

    std::signal(SIGTERM, on_signal);
    std::signal(SIGINT, on_signal);
    std::signal(SIGPIPE, SIG_IGN);  // a client that hangs up mid-write is an error code, not a signal

    server::Api api({.model_name = name, .api_key = a->api_key, .state_dir = a->state_dir});
    server::HttpServer http([&api](server::HttpRequest r, std::shared_ptr<server::Responder> res) {
      api.handle(std::move(r), std::move(res));
    }, {.max_body_bytes = a->max_body});
    // Prefill role: registered now, usable once the model is loaded (the API answers 503 before).
    std::unique_ptr<RedisStateStore> store;
    std::unique_ptr<server::PrefillApi> prefill;
    std::unique_ptr<server::DecodeRole> decode;
    if (a->role == "decode") {
      api.set_before_submit([&decode](const std::vector<int32_t>& prompt, std::function<void()> submit) {
        decode->before_submit(prompt, std::move(submit));
      });
      api.add_metrics([&decode] { return decode ? decode->metrics() : std::string(); });
    }
    if (a->role == "prefill") {
      api.add_route("/v1/prefill", [&prefill](const server::HttpRequest& r, const std::shared_ptr<server::Responder>& res) {
        prefill->handle(r, res);
      });
      api.add_metrics([&prefill] { return prefill ? prefill->metrics() : std::string(); });
    }
    const uint16_t port = http.listen(a->host, uint16_t(a->port));
    http.start(a->io_threads);
    fmt::print(stderr, "linfer serve: listening on http://{}:{} (loading {})\n", a->host, port, dir);

    auto model = Model::load(dir, parse_device(a->device));
    std::unique_ptr<Tokenizer> tok;
    try {
      tok = Tokenizer::load(dir);
    } catch (const Error& e) {
      fmt::print(stderr, "linfer serve: no tokenizer ({}); prompts must be token ids\n", e.what());
    }
    std::unique_ptr<server::ChatPrompt> chat;
    try {
      chat = server::ChatPrompt::load(dir);
    } catch (const Error& e) {
      fmt::print(stderr, "linfer serve: the chat template does not load ({}); /v1/chat/completions answers 400\n",
                 e.what());
    }
    Engine engine(model, tok.get(), a->engine);
    const auto& o = engine.options();
    fmt::print(stderr, "linfer serve: model '{}': {} ({:.1f}M parameters), weights {}, on {}\n", name,
               model->info().architecture, model->info().n_params / 1e6, human(double(weights_bytes(dir))), a->device);
    fmt::print(stderr, "linfer serve: state pool: {} x {} = {} (allocated now)\n", o.max_seqs,
               human(double(engine.slot_bytes())), human(double(engine.slot_bytes()) * o.max_seqs));
    fmt::print(stderr, "linfer serve: KV budget (attention layers): {} ({} per token), context {} tokens\n",
               human(double(engine.kv_budget())), human(double(engine.kv_bytes_per_token())), o.max_context);
    fmt::print(stderr, "linfer serve: prefix-state cache: {}; batch: {} tokens; queue: {} requests; chat template: {}\n",
               human(double(o.prefix_cache_bytes)), o.max_batch_tokens, o.max_waiting, chat ? "yes" : "no");
    if (!a->state_store.empty()) {
      store = std::make_unique<RedisStateStore>(RedisStoreOptions{.redis = RedisOptions::from_url(a->state_store),
                                                                  .spacing = o.prefix_spacing > 0 ? o.prefix_spacing : 256},
                                                model->state_spec(), state_identity(*model, tok.get()));
    }
    if (a->role == "decode") {
      server::DecodeRoleConfig dc{.nodes = {},  // filled from --prefill-urls below
                                  .threshold = a->prefill_threshold,
                                  .timeout = std::chrono::milliseconds(int64_t(a->prefill_timeout * 1000)),
                                  .bf16 = a->prefill_bf16, .zstd = a->prefill_zstd,
                                  .api_key = a->prefill_api_key, .store = store.get()};
      for (size_t at = 0; at <= a->prefill_urls.size();) {
        size_t comma = std::min(a->prefill_urls.find(',', at), a->prefill_urls.size());
        if (comma > at) dc.nodes.push_back(server::PrefillTarget::from_url(a->prefill_urls.substr(at, comma - at)));
        at = comma + 1;
      }
      decode = std::make_unique<server::DecodeRole>(engine, tok.get(), dc);
      fmt::print(stderr, "linfer serve: decode role: prompts over {} tokens are prefilled on {} (timeout {} s, {}); "
                 "state store: {}\n", a->prefill_threshold, a->prefill_urls, a->prefill_timeout,
                 a->prefill_api_key.empty() ? "no API key" : "with an API key",
                 a->state_store.empty() ? "none" : a->state_store);
    }
    if (a->role == "prefill") {
      prefill = std::make_unique<server::PrefillApi>(
          model, tok.get(), server::PrefillApiConfig{.model_name = name, .max_context = o.max_context,
                                                     .max_queue = a->prefill_queue, .store = store.get(),
                                                     .ubatch = a->prefill_ubatch});
      fmt::print(stderr, "linfer serve: prefill role: POST /v1/prefill streams states of model {} (format version {}); "
                 "state store: {}\n", model->fingerprint(), kStateFormatVersion,
                 a->state_store.empty() ? "none" : a->state_store);
    }
    api.set_ready(&engine, chat.get());
    fmt::print(stderr, "linfer serve: ready on http://{}:{}\n", a->host, port);

    while (g_signal == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    fmt::print(stderr, "linfer serve: {} received; finishing in-flight requests (up to {} s)\n",
               g_signal == SIGTERM ? "SIGTERM" : "SIGINT", a->shutdown_timeout);
    http.stop_accepting();
    api.begin_shutdown();
    if (decode) decode->drain();  // remote prefills under way hand their requests to the engine
    engine.shutdown(std::chrono::milliseconds(int64_t(a->shutdown_timeout * 1000)));
    if (prefill) prefill->drain();
    api.wait_files();
    http.wait_idle(std::chrono::seconds(2));  // the last bytes of finished responses
    http.stop();
    decode.reset();  // before the engine it submits to goes (no network thread calls it any more)
    fmt::print(stderr, "linfer serve: stopped\n");
  });
}

}  // namespace linfer::cli
