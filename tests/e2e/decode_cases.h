#pragma once
// Prompts for the decode-role tests and their reference: `linfer generate --greedy` on each prompt
// alone (a single node prefilling locally), the ids every decode node must reproduce however the
// prompt was prefilled; and the completion / metrics calls those tests make.

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "../cli_run.h"
#include "serve_harness.h"

namespace decode_test {

inline std::string join(const std::vector<int32_t>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? "," : "") + std::to_string(ids[i]);
  return s;
}

// The first line of `generate --print-ids` output: comma-separated ids.
inline std::vector<int32_t> parse_id_line(const std::string& out) {
  std::vector<int32_t> ids;
  size_t pos = 0;
  while (pos < out.size() && out[pos] != '\n') {
    size_t end = out.find_first_of(",\n", pos);
    ids.push_back(std::stoi(out.substr(pos, end - pos)));
    pos = end + (end < out.size() && out[end] == ',' ? 1 : 0);
  }
  return ids;
}

struct Case {
  std::vector<int32_t> prompt;
  int max_tokens = 8;
  std::vector<int32_t> expected;
};

// `linfer generate --greedy` ids for c.prompt into c.expected.
inline void reference(const std::string& model, Case& c) {
  auto r = run_linfer(fmt::format("--threads 1 generate --model {} --prompt-ids {} -n {} --greedy --print-ids", model,
                                  join(c.prompt), c.max_tokens), "2>/dev/null");
  EXPECT_EQ(r.status, 0) << r.out;
  c.expected = parse_id_line(r.out);
}

// n prompts of min_len..min_len+159 ids in 3..252 (golden vocabularies are 256) with their reference.
inline std::vector<Case> cases_for(const std::string& model, int n, uint32_t seed, int min_len = 40) {
  std::mt19937 rng(seed);
  std::vector<Case> cases(static_cast<size_t>(n));
  for (auto& c : cases) {
    const int len = min_len + int(rng() % 160);
    for (int i = 0; i < len; ++i) c.prompt.push_back(3 + int(rng() % 250));
    reference(model, c);
  }
  return cases;
}

struct Answer {
  int status = 0;
  std::vector<int32_t> ids;
  int64_t cached = -1;  // usage.prompt_tokens_details.cached_tokens
  std::string body;
};

inline Answer complete(int port, const Case& c, const std::vector<std::string>& headers = {}) {
  serve_test::HttpResponse r = serve_test::post(port, "/v1/completions",
                                                {{"prompt", c.prompt}, {"max_tokens", c.max_tokens}, {"temperature", 0},
                                                 {"ignore_eos", true}, {"return_token_ids", true}},
                                                headers);
  Answer a{r.status, {}, -1, r.body};
  auto j = r.json();
  if (r.status == 200) {
    a.ids = j["choices"][0]["token_ids"].get<std::vector<int32_t>>();
    a.cached = j["usage"]["prompt_tokens_details"]["cached_tokens"].get<int64_t>();
  }
  return a;
}

// A metric of the server on `port`; -1 if absent.
inline double metric_of(int port, const std::string& name) {
  return serve_test::metric(serve_test::http(port, "GET", "/metrics").body, name).value_or(-1);
}

inline std::string fallbacks(const std::string& reason) {
  return "linfer_remote_prefill_fallbacks_total{reason=\"" + reason + "\"}";
}

inline const char* const kFallbackReasons[] = {"timeout",    "unreachable",     "mismatch", "bad_state",
                                               "http_error", "cache_too_small", "error"};

}  // namespace decode_test
