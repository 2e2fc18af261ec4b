// A prefill node run with --api-key and the decode nodes in front of it: a decode node without the
// key (or with another) is refused (401) and prefills locally, counted as an http_error fallback;
// one given the key by --prefill-api-key or LINFER_PREFILL_API_KEY is served. Every answer equals
// `linfer generate --greedy` on the prompt alone. A key that cannot go into an HTTP header is
// refused at start.
#include <gtest/gtest.h>

#include <cstdlib>

#include "decode_cases.h"
#include "serve_harness.h"

using namespace decode_test;
using serve_test::ServeProcess;

namespace {

const std::string kDemo = std::string(LINFER_SOURCE_DIR) + "/models/demo";
const std::string kKey = "pf-k3y_0123456789";

// A decode node in front of `node_port` with `extra` options, one request: what came back.
struct DecodeRun {
  Answer answer;
  double remote = -1, http_errors = -1, other_fallbacks = -1;
  std::string log;
};

DecodeRun decode_once(int node_port, const std::string& extra, const Case& c) {
  ServeProcess decode;
  DecodeRun r;
  if (!decode.start(fmt::format("--threads 1 serve --role decode --prefill-url http://127.0.0.1:{} "
                                "--prefill-threshold 16 {}", node_port, extra))) {
    r.log = decode.log();
    return r;
  }
  r.answer = complete(decode.port(), c);
  r.remote = metric_of(decode.port(), "linfer_remote_prefill_requests_total");
  r.http_errors = metric_of(decode.port(), fallbacks("http_error"));
  r.other_fallbacks = 0;
  for (const char* reason : kFallbackReasons)
    if (std::string(reason) != "http_error") r.other_fallbacks += metric_of(decode.port(), fallbacks(reason));
  EXPECT_EQ(decode.stop(), 0);
  r.log = decode.log();
  return r;
}

}  // namespace

TEST(ServeDecodeApiKey, AKeyedPrefillNodeServesOnlyDecodeNodesWithItsKey) {
  std::vector<Case> cases = cases_for(kDemo, 4, 4242);
  ServeProcess node;
  ASSERT_TRUE(node.start("--threads 1 serve --role prefill --api-key " + kKey)) << node.log();
  auto served = [&] { return metric_of(node.port(), "linfer_prefill_requests_total{outcome=\"ok\"}"); };

  for (const auto& [i, extra] : {std::pair{0, std::string()}, std::pair{1, "--prefill-api-key wrong-" + kKey}}) {
    SCOPED_TRACE(extra.empty() ? "no key" : "a wrong key");
    const DecodeRun r = decode_once(node.port(), extra, cases[size_t(i)]);
    ASSERT_EQ(r.answer.status, 200) << r.answer.body << r.log;
    EXPECT_EQ(r.answer.ids, cases[size_t(i)].expected);
    EXPECT_EQ(r.answer.cached, 0) << "the prompt was not prefilled locally";
    EXPECT_EQ(r.remote, 1);
    EXPECT_EQ(r.http_errors, 1) << r.log;
    EXPECT_EQ(r.other_fallbacks, 0) << r.log;
    EXPECT_NE(r.log.find("answered 401"), std::string::npos) << r.log;
    EXPECT_NE(r.log.find("--prefill-api-key"), std::string::npos) << r.log;
  }
  EXPECT_EQ(served(), 0);

  // The key on the command line, then from the environment (out of sight of `ps`).
  for (int i : {2, 3}) {
    SCOPED_TRACE(i == 2 ? "--prefill-api-key" : "LINFER_PREFILL_API_KEY");
    if (i == 3) ::setenv("LINFER_PREFILL_API_KEY", kKey.c_str(), 1);
    const DecodeRun r = decode_once(node.port(), i == 2 ? "--prefill-api-key " + kKey : "", cases[size_t(i)]);
    ::unsetenv("LINFER_PREFILL_API_KEY");
    ASSERT_EQ(r.answer.status, 200) << r.answer.body << r.log;
    EXPECT_EQ(r.answer.ids, cases[size_t(i)].expected);
    EXPECT_EQ(r.answer.cached, int64_t(cases[size_t(i)].prompt.size()) - 1) << "the remote state was not used";
    EXPECT_EQ(r.remote, 1);
    EXPECT_EQ(r.http_errors + r.other_fallbacks, 0) << r.log;
  }
  EXPECT_EQ(served(), 2);
  EXPECT_EQ(node.stop(), 0);
}

TEST(ServeDecodeApiKey, AKeyThatCannotBeAHeaderIsRefusedAtStart) {
  for (const char* key : {"'two words'", "\"$(printf 'line\\r\\nX-Injected: 1')\""}) {
    const CliRun r = run_linfer(fmt::format("serve --role decode --prefill-url http://127.0.0.1:9 --port 0 "
                                            "--prefill-api-key {}", key), "2>&1");
    EXPECT_NE(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("only printable ASCII"), std::string::npos) << r.out;
  }
}
