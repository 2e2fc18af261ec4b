// `linfer serve --role prefill` end to end. The reference is `linfer prefill --ubatch 0 --save-state` (one
// forward over the prompt, then the state saved): POST /v1/prefill must stream exactly that file's
// bytes (demo model with a text prompt, qwen3_next and mamba2 fixtures with token ids; f32 / bf16,
// with and without zstd). A requester expecting another model or format version gets a 409 JSON
// error, never state bytes. fetch_prefill (the decode side) reads and checks the stream, gets the
// reference state, and refuses a node that runs another model. The state's first byte arrives long
// before its last on a long prompt (layers are sent as they finish). Two nodes behind the repo's
// nginx config: requests spread over both and survive one dying. --prefill-ubatch streams the whole prompt's
// state. With --state-store (Redis) a second identical request is served from the store, and Redis dying
// changes nothing but the counters.
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <thread>

#include "../cli_run.h"
#include "../pfaas/nginx_balancer.h"
#include "../pfaas/redis_server.h"
#include "linfer/core/error.h"
#include "runtime/state_file.h"
#include "serve_harness.h"
#include "server/prefill_client.h"

using namespace serve_test;
using namespace linfer;

namespace {

const std::string kSource = LINFER_SOURCE_DIR;
const std::string kDemo = kSource + "/models/demo";
const std::string kText = "ROMEO: But soft, what light through yonder window breaks? It is the east, and Juliet is "
                          "the sun. Arise, fair sun, and kill the envious moon.";

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string ids_csv(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t i : ids) s += (s.empty() ? "" : ",") + std::to_string(i);
  return s;
}

std::vector<int32_t> random_ids(size_t n, int64_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> v(n);
  for (auto& x : v) x = int32_t(rng() % uint64_t(vocab));
  return v;
}

// `linfer prefill` of the same prompt: the bytes the node must stream.
std::string reference(const std::string& model, const std::string& prompt_arg, bool bf16, bool zstd) {
  test_proc::TempDir dir("prefill_ref");
  const std::string out = dir / "ref.lstate";
  CliRun r = run_linfer(fmt::format("prefill --model {} {} --ubatch 0 --save-state {}{}{}", model, prompt_arg, out,
                                    bf16 ? " --state-dtype bf16" : "", zstd ? " --compress" : ""),
                        "2>&1");
  EXPECT_EQ(r.status, 0) << r.out;
  return read_bytes(out);
}

nlohmann::json request(const std::string& fp, const nlohmann::json& prompt, bool bf16 = false, bool zstd = false) {
  return {{"prompt", prompt}, {"model_fingerprint", fp}, {"format_version", kStateFormatVersion},
          {"bf16", bf16}, {"zstd", zstd}};
}

std::string fingerprint_of(const std::string& dir) { return Model::load(dir)->fingerprint(); }

// A metric's value once it equals `want` (a prefill's counters are updated just after its last
// state byte went out, so a client may ask a moment too early), or its last value after 5 s.
double metric_when(int port, const std::string& name, double want) {
  double v = -1;
  for (int i = 0; i < 250; ++i) {
    v = metric(http(port, "GET", "/metrics").body, name).value_or(-1);
    if (v == want) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return v;
}

}  // namespace

TEST(ServePrefill, StreamsTheBytesOfLinferPrefill) {
  struct Case {
    std::string dir;
    bool text;
  };
  for (const Case& c : {Case{kDemo, true}, Case{kSource + "/tests/golden/qwen3_next_a", false},
                        Case{kSource + "/tests/golden/mamba2_a", false}}) {
    SCOPED_TRACE(c.dir);
    ServeProcess node;
    ASSERT_TRUE(node.start("serve --role prefill --model " + c.dir)) << node.log();
    auto model = Model::load(c.dir);
    const auto ids = random_ids(200, model->info().vocab_size, 3);
    const nlohmann::json prompt = c.text ? nlohmann::json(kText) : nlohmann::json(ids);
    const std::string arg = c.text ? "--prompt '" + kText + "'" : "--prompt-ids " + ids_csv(ids);
    for (bool bf16 : {false, true})
      for (bool zstd : {false, true}) {
        if (!c.text && bf16 != zstd) continue;  // the fixtures: f32 plain and bf16 + zstd
        SCOPED_TRACE(fmt::format("bf16={} zstd={}", bf16, zstd));
        HttpResponse r = post(node.port(), "/v1/prefill", request(model->fingerprint(), prompt, bf16, zstd));
        ASSERT_EQ(r.status, 200) << r.body;
        EXPECT_EQ(r.header("content-type"), "application/x-linfer-state");
        EXPECT_EQ(r.header("transfer-encoding"), "chunked");
        EXPECT_EQ(r.header("x-linfer-model-fingerprint"), model->fingerprint());
        EXPECT_EQ(r.header("x-linfer-state-version"), std::to_string(kStateFormatVersion));
        const std::string want = reference(c.dir, arg, bf16, zstd);
        ASSERT_FALSE(want.empty());
        EXPECT_TRUE(r.body == want) << "the streamed state differs from linfer prefill's (" << r.body.size() << " vs "
                                    << want.size() << " bytes)";
      }
    const int n_ok = c.text ? 4 : 2;
    EXPECT_EQ(metric_when(node.port(), "linfer_prefill_requests_total{outcome=\"ok\"}", n_ok), n_ok);
    EXPECT_EQ(node.stop(), 0);
  }
}

TEST(ServePrefill, AnotherModelOrVersionIs409WithoutStateBytes) {
  ServeProcess node;
  ASSERT_TRUE(node.start("serve --role prefill")) << node.log();
  const std::string fp = fingerprint_of(kDemo);
  auto expect_error = [&](const nlohmann::json& body, int status, const std::string& needle) {
    HttpResponse r = post(node.port(), "/v1/prefill", body);
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_EQ(r.header("content-type"), "application/json") << "state bytes sent on an error";
    auto j = r.json();
    ASSERT_TRUE(j.is_object() && j.contains("error")) << r.body;
    EXPECT_EQ(j["error"]["code"], status);
    EXPECT_NE(j["error"]["message"].get<std::string>().find(needle), std::string::npos) << r.body;
  };
  nlohmann::json other = request("mamba2-0123456789abcdef", kText);
  expect_error(other, 409, fp);  // names the node's own fingerprint
  expect_error(other, 409, "mamba2-0123456789abcdef");
  nlohmann::json v2 = request(fp, kText);
  v2["format_version"] = kStateFormatVersion + 1;
  expect_error(v2, 409, "format version");
  nlohmann::json no_fp = request(fp, kText);
  no_fp.erase("model_fingerprint");
  expect_error(no_fp, 400, "model_fingerprint");
  expect_error(request(fp, nlohmann::json::array({1, 2, 1 << 30})), 400, "vocabulary");
  nlohmann::json named = request(fp, kText);
  named["model"] = "not-this-one";
  expect_error(named, 404, "not-this-one");
  EXPECT_EQ(metric_when(node.port(), "linfer_prefill_requests_total{outcome=\"mismatch\"}", 3), 3);
  EXPECT_EQ(metric_when(node.port(), "linfer_prefill_requests_total{outcome=\"ok\"}", 0), 0);
  EXPECT_EQ(http(node.port(), "GET", "/health").status, 200);
  EXPECT_EQ(node.stop(), 0);
}

TEST(ServePrefill, FetchPrefillReadsTheStreamAndChecksTheModel) {
  ServeProcess node;
  ASSERT_TRUE(node.start("serve --role prefill")) << node.log();
  auto model = Model::load(kDemo);
  auto tok = Tokenizer::load(kDemo);
  const auto ids = tok->encode(kText);
  const auto target = server::PrefillTarget::from_url(fmt::format("http://127.0.0.1:{}", node.port()));
  server::RemoteState got = server::fetch_prefill(target, ids, *model, tok.get(), {});
  BufferSink again;
  write_state(again, got.state, state_identity(*model, tok.get()), {}, got.logits);
  const std::string want = reference(kDemo, "--prompt '" + kText + "'", false, false);
  EXPECT_TRUE(std::string(again.bytes().begin(), again.bytes().end()) == want);
  EXPECT_EQ(got.bytes, want.size());

  // A decode node running another model is refused by the prefill node (409) before any state.
  auto other = Model::load(kSource + "/tests/golden/kimi_linear_a");
  try {
    server::fetch_prefill(target, std::vector<int32_t>{1, 2, 3}, *other, nullptr, {});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("answered 409"), std::string::npos) << e.what();
  }
  // Nothing listens: a clear error within the timeout.
  const int dead = test_proc::free_port();
  try {
    server::fetch_prefill(server::PrefillTarget::from_url(fmt::format("http://127.0.0.1:{}", dead)), ids, *model,
                          tok.get(), {.timeout = std::chrono::seconds(5)});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot connect"), std::string::npos) << e.what();
  }
  EXPECT_EQ(node.stop(), 0);
}

// What a node started with `serve_args` streams for n random ids of the demo model (read and checked by
// fetch_prefill).
struct Fetched {
  std::shared_ptr<const Model> model;
  std::vector<int32_t> ids;
  server::RemoteState got;
};
Fetched fetch_random(ServeProcess& node, const std::string& serve_args, size_t n, uint32_t seed) {
  EXPECT_TRUE(node.start(serve_args)) << node.log();
  Fetched f{Model::load(kDemo), {}, {}};
  f.ids = random_ids(n, f.model->info().vocab_size, seed);
  const auto target = server::PrefillTarget::from_url(fmt::format("http://127.0.0.1:{}", node.port()));
  f.got = server::fetch_prefill(target, f.ids, *f.model, nullptr, {.timeout = std::chrono::seconds(300)});
  return f;
}

TEST(ServePrefill, TheStateStartsArrivingLongBeforeTheLastLayer) {
  ServeProcess node;
  const server::RemoteState got = fetch_random(node, "serve --role prefill", 3000, 5).got;
  // The header goes out with layer 0's records; 8 layers, so it comes after about 1/8 of the forward.
  EXPECT_LT(got.first_byte_s, 0.6 * got.seconds) << "first byte " << got.first_byte_s << " s of " << got.seconds;
  EXPECT_EQ(got.state.n_tokens(), 3000);
  EXPECT_EQ(node.stop(), 0);
}

// --prefill-ubatch: the tokens before the prompt's last N in chunks first, the last N streamed. The state that
// arrives is the whole prompt's, within float32 rounding of one forward over it.
TEST(ServePrefill, PrefillUbatchStreamsTheWholePromptsState) {
  ServeProcess node;
  const Fetched f = fetch_random(node, "serve --role prefill --prefill-ubatch 64", 300, 11);
  const server::RemoteState& got = f.got;
  SequenceState ref(f.model->state_spec());
  SequenceState* rp[] = {&ref};
  f.model->forward(Batch::single(f.ids), rp, nullptr, Logits::None);
  ASSERT_EQ(got.state.n_tokens(), 300);
  for (size_t t = 0; t < ref.n_tensors(); ++t) {
    ASSERT_EQ(got.state.rows(t), ref.rows(t));
    const int64_t n = ref.rows(t) * ref.row_elems(t);
    for (int64_t k = 0; k < n; ++k)
      ASSERT_NEAR(got.state.data(t)[k], ref.data(t)[k], 1e-4 + 1e-4 * std::abs(ref.data(t)[k])) << "tensor " << t;
  }
  EXPECT_EQ(node.stop(), 0);
}

TEST(ServePrefill, TwoNodesBehindNginx) {
  if (!pfaas_test::NginxBalancer::available()) GTEST_SKIP() << "nginx is not installed (Debian package nginx)";
  ServeProcess a, b;
  ASSERT_TRUE(a.start("serve --role prefill")) << a.log();
  ASSERT_TRUE(b.start("serve --role prefill")) << b.log();
  pfaas_test::NginxBalancer lb;
  ASSERT_TRUE(lb.start({a.port(), b.port()})) << lb.log();
  auto model = Model::load(kDemo);
  auto tok = Tokenizer::load(kDemo);
  const auto ids = tok->encode(kText);
  const std::string want = reference(kDemo, "--prompt '" + kText + "'", false, false);
  const auto target = server::PrefillTarget::from_url(fmt::format("http://127.0.0.1:{}", lb.port()));
  auto check = [&] {
    server::RemoteState got = server::fetch_prefill(target, ids, *model, tok.get(), {});
    BufferSink again;
    write_state(again, got.state, state_identity(*model, tok.get()), {}, got.logits);
    EXPECT_TRUE(std::string(again.bytes().begin(), again.bytes().end()) == want);
  };
  for (int i = 0; i < 4; ++i) check();
  const char* ok = "linfer_prefill_requests_total{outcome=\"ok\"}";
  EXPECT_EQ(metric_when(a.port(), ok, 2), 2);
  EXPECT_EQ(metric_when(b.port(), ok, 2), 2);
  a.signal(SIGKILL);
  a.wait(std::chrono::seconds(10));  // dead before the next request
  for (int i = 0; i < 3; ++i) check();  // every request reaches the survivor
  EXPECT_EQ(metric_when(b.port(), ok, 5), 5);
}

TEST(ServePrefill, StateStoreServesTheSecondIdenticalRequest) {
  if (!pfaas_test::RedisServer::available()) GTEST_SKIP() << "redis-server is not installed (Debian package redis-server)";
  pfaas_test::RedisServer redis;
  ASSERT_TRUE(redis.start()) << redis.log();
  ServeProcess node;
  ASSERT_TRUE(node.start("serve --role prefill --state-store " + redis.url())) << node.log();
  auto model = Model::load(kDemo);
  const auto ids = random_ids(300, model->info().vocab_size, 9);
  const nlohmann::json body = request(model->fingerprint(), ids);
  HttpResponse first = post(node.port(), "/v1/prefill", body);
  ASSERT_EQ(first.status, 200) << first.body;
  HttpResponse second = post(node.port(), "/v1/prefill", body);
  ASSERT_EQ(second.status, 200) << second.body;
  EXPECT_TRUE(first.body == second.body);
  EXPECT_EQ(metric_when(node.port(), "linfer_prefill_store_hits_total", 1), 1);
  EXPECT_EQ(metric_when(node.port(), "linfer_prefill_computed_tokens_total", 300), 300);
  EXPECT_EQ(metric_when(node.port(), "linfer_state_store_hits_total", 1), 1);

  redis.kill();  // Redis gone: the node computes, the answer is the same
  HttpResponse third = post(node.port(), "/v1/prefill", body);
  ASSERT_EQ(third.status, 200) << third.body;
  EXPECT_TRUE(third.body == first.body);
  EXPECT_EQ(metric_when(node.port(), "linfer_prefill_computed_tokens_total", 600), 600);
  EXPECT_GE(metric_when(node.port(), "linfer_state_store_failures_total", 1), 1);
  EXPECT_EQ(node.stop(), 0);
}
