#pragma once
// The requester's side of POST /v1/prefill (server/prefill_api.h): sends the prompt to a prefill node
// (or a balancer in front of several), and reads the streamed state with the wire reader as it
// arrives, record by record, so a bad record fails at once instead of after the whole transfer.
// One deadline bounds everything: connecting, waiting for the first byte, and every later byte.
//
//   PrefillTarget node = PrefillTarget::from_url("http://10.0.0.11:8080");
//   RemoteState r = fetch_prefill(node, ids, *model, tok, {.timeout = std::chrono::seconds(30)});
//   // r.state holds ids, checked against this model; r.logits are the last token's
//
// Any failure (refused, timed out, an HTTP error such as 409, a truncated, corrupted or mismatched
// state) is a linfer::Error naming the node and what went wrong. Thread-safety: reentrant.

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "linfer/model.h"
#include "linfer/tokenizer.h"
#include "runtime/state_format.h"

namespace linfer::server {

struct PrefillTarget {
  std::string host;  // an IPv4 / IPv6 address or a name
  int port = 80;
  std::string path = "/v1/prefill";
  // "http://HOST[:PORT][/PATH]"; a URL naming only the node means /v1/prefill. Throws Error.
  static PrefillTarget from_url(const std::string& url);
  std::string url() const;
};

struct PrefillCallOptions {
  std::chrono::milliseconds timeout{30000};  // the whole exchange
  bool bf16 = false;
  bool zstd = false;
  std::string api_key;  // sent as "Authorization: Bearer KEY" (a node run with --api-key); "" = none
};

struct RemoteState {
  SequenceState state;
  std::vector<float> logits;    // the last token's logits [vocab]
  uint64_t bytes = 0;           // on the wire (HTTP body)
  double first_byte_s = 0;      // from the call to the first byte of the state
  double seconds = 0;           // the whole call
};

// Fetches the state of `prompt` (token ids) from `node` and reads it, checked against `model` (its
// fingerprint is the one the request names) and `tok` (may be null). Throws Error on any failure.
RemoteState fetch_prefill(const PrefillTarget& node, std::span<const int32_t> prompt, const Model& model,
                          const Tokenizer* tok, const PrefillCallOptions& options);

}  // namespace linfer::server
