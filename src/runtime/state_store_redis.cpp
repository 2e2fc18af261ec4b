// RedisStateStore: the key scheme and the lookup / store exchanges described in the header. Network
// calls run under the mutex (one connection); serializing and checking values run outside it.

#include "runtime/state_store_redis.h"

#include <xxhash.h>

#include <algorithm>
#include <charconv>
#include <chrono>

#include "linfer/core/error.h"

namespace linfer {

namespace {

std::string hex128(XXH128_hash_t h) {
  XXH128_canonical_t c;
  XXH128_canonicalFromHash(&c, h);
  static const char* digits = "0123456789abcdef";
  std::string s(32, '0');
  for (int i = 0; i < 16; ++i) {
    s[size_t(2 * i)] = digits[c.digest[i] >> 4];
    s[size_t(2 * i + 1)] = digits[c.digest[i] & 15];
  }
  return s;
}

// XXH3-128 of tokens[0, L) for every L in `lengths` (ascending, each <= tokens.size()), in one pass.
std::vector<std::string> prefix_hashes(std::span<const int32_t> tokens, const std::vector<int64_t>& lengths) {
  XXH3_state_t* st = XXH3_createState();
  LINFER_CHECK(st != nullptr, "out of memory for a hash state");
  XXH3_128bits_reset(st);
  std::vector<std::string> out;
  int64_t done = 0;
  for (int64_t L : lengths) {
    XXH3_128bits_update(st, tokens.data() + done, size_t(L - done) * sizeof(int32_t));
    done = L;
    out.push_back(hex128(XXH3_128bits_digest(st)));
  }
  XXH3_freeState(st);
  return out;
}

std::string one_hash(std::span<const int32_t> tokens) {
  return prefix_hashes(tokens, {int64_t(tokens.size())}).front();
}

// "<L>:<hash>" -> L (0 when malformed: never a valid length).
int64_t member_length(const std::string& m) {
  int64_t L = 0;
  auto [end, ec] = std::from_chars(m.data(), m.data() + m.size(), L);
  return ec == std::errc() && end != m.data() + m.size() && *end == ':' ? L : 0;
}

}  // namespace

RedisStateStore::RedisStateStore(RedisStoreOptions options, const StateSpec& spec, StateIdentity id)
    : options_(std::move(options)), spec_(spec), id_(std::move(id)), client_(options_.redis) {
  LINFER_CHECK(options_.spacing >= 1, "state store: spacing must be >= 1, not {}", options_.spacing);
  LINFER_CHECK(options_.ends_per_bucket >= 1, "state store: ends_per_bucket must be >= 1");
  base_ = fmt::format("{}:s{}:{}:", options_.key_prefix, kStateFormatVersion, id_.model_fingerprint);
}

std::string RedisStateStore::value_key(std::span<const int32_t> tokens) const {
  return fmt::format("{}{}:{}", base_, tokens.size(), one_hash(tokens));
}

std::string RedisStateStore::ends_key(std::span<const int32_t> bucket_start) const {
  return fmt::format("{}e:{}:{}", base_, bucket_start.size(), one_hash(bucket_start));
}

RedisStoreStats RedisStateStore::stats() const {
  std::lock_guard lock(mu_);
  RedisStoreStats s = stats_;
  s.client = client_.stats();
  return s;
}

std::optional<StoredPrefix> RedisStateStore::lookup(std::span<const int32_t> tokens, int64_t max_len) {
  const int64_t S = options_.spacing;
  const int64_t limit = max_len < 0 ? int64_t(tokens.size()) : std::min<int64_t>(max_len, int64_t(tokens.size()));
  {
    std::lock_guard lock(mu_);
    ++stats_.lookups;
  }
  if (limit <= 0) return std::nullopt;

  // Multiples of the spacing up to the limit, and the buckets whose ends could be prefixes: b < limit.
  std::vector<int64_t> marks;  // 0, S, 2S, ... <= limit
  for (int64_t m = 0; m <= limit; m += S) marks.push_back(m);
  std::vector<std::string> mark_hash = prefix_hashes(tokens, marks);
  std::vector<std::string> keys;
  std::vector<RedisClient::Command> cmds;
  for (size_t j = 1; j < marks.size(); ++j)
    keys.push_back(fmt::format("{}{}:{}", base_, marks[j], mark_hash[j]));
  for (size_t j = 0; j < marks.size(); ++j)
    if (marks[j] < limit) keys.push_back(fmt::format("{}e:{}:{}", base_, marks[j], mark_hash[j]));
  const size_t n_values = marks.size() - 1;
  for (size_t k = 0; k < keys.size(); ++k)
    cmds.push_back(k < n_values ? RedisClient::Command{"EXISTS", keys[k]}
                                : RedisClient::Command{"ZREVRANGE", keys[k], "0", "-1"});

  std::optional<std::vector<RedisReply>> replies;
  {
    std::lock_guard lock(mu_);
    replies = client_.pipeline(cmds);
    if (!replies) ++stats_.failures;
  }
  if (!replies) return std::nullopt;

  struct Candidate {
    int64_t n;
    std::string key;
  };
  std::vector<Candidate> found;
  for (size_t j = 0; j < n_values; ++j)
    if ((*replies)[j].type == RedisReply::Type::Integer && (*replies)[j].integer == 1)
      found.push_back({marks[j + 1], keys[j]});
  // Ends: keep the lengths in range, then those whose hash is this prompt's prefix hash.
  std::vector<std::pair<int64_t, std::string>> ends;  // (L, stored hash)
  for (size_t k = n_values; k < keys.size(); ++k) {
    const RedisReply& r = (*replies)[k];
    if (r.type != RedisReply::Type::Array) continue;
    int64_t b = marks[k - n_values];
    for (const RedisReply& e : r.elements) {
      int64_t L = member_length(e.str);
      if (L > b && L <= limit && L % S != 0) ends.emplace_back(L, e.str.substr(e.str.find(':') + 1));
    }
  }
  std::sort(ends.begin(), ends.end());
  std::vector<int64_t> end_lengths;
  for (const auto& [L, h] : ends)
    if (end_lengths.empty() || end_lengths.back() != L) end_lengths.push_back(L);
  std::vector<std::string> own = prefix_hashes(tokens, end_lengths);
  for (const auto& [L, h] : ends) {
    size_t at = size_t(std::lower_bound(end_lengths.begin(), end_lengths.end(), L) - end_lengths.begin());
    if (own[at] == h) found.push_back({L, fmt::format("{}{}:{}", base_, L, h)});
  }
  std::sort(found.begin(), found.end(), [](const Candidate& a, const Candidate& b) { return a.n > b.n; });

  // The longest that is still there and passes the reader's checks.
  for (const Candidate& c : found) {
    std::optional<std::vector<RedisReply>> got;
    {
      std::lock_guard lock(mu_);
      got = client_.pipeline({{"GET", c.key}});
      if (!got) ++stats_.failures;
    }
    if (!got) return std::nullopt;
    const RedisReply& v = got->front();
    if (v.type != RedisReply::Type::String) {
      std::lock_guard lock(mu_);
      ++(v.type == RedisReply::Type::Nil ? stats_.vanished : stats_.failures);
      continue;
    }
    try {
      BufferSource src({reinterpret_cast<const uint8_t*>(v.str.data()), v.str.size()}, "redis value " + c.key);
      StateReader reader(src);
      StoredPrefix hit{c.n, reader.read(spec_, id_), reader.logits()};
      LINFER_CHECK(hit.state.n_tokens() == c.n, "redis value {} holds {} tokens, its key says {}", c.key,
                   hit.state.n_tokens(), c.n);
      std::lock_guard lock(mu_);
      ++stats_.hits;
      stats_.tokens_saved += uint64_t(c.n);
      stats_.bytes_loaded += v.str.size();
      return hit;
    } catch (const Error&) {
      std::lock_guard lock(mu_);
      ++stats_.refused;
      client_.pipeline({{"DEL", c.key}});  // best effort: the next lookup should not meet it again
    }
  }
  return std::nullopt;
}

bool RedisStateStore::store(std::span<const int32_t> tokens, const SequenceState& state,
                            std::span<const float> logits) {
  LINFER_CHECK(state.n_tokens() == int64_t(tokens.size()), "state store: a state of {} tokens stored under a "
               "prefix of {}", state.n_tokens(), tokens.size());
  if (tokens.empty()) return false;
  BufferSink value;
  write_state(value, state, id_, options_.write, logits);
  if (value.bytes().size() > options_.max_value_bytes) {
    std::lock_guard lock(mu_);
    ++stats_.too_large;
    return false;
  }
  const int64_t L = int64_t(tokens.size()), S = options_.spacing, b = L / S * S;
  std::vector<std::string> h = prefix_hashes(tokens, {b, L});
  const std::string key = fmt::format("{}{}:{}", base_, L, h[1]);
  const std::string ttl = std::to_string(options_.ttl_s);
  const std::string_view bytes(reinterpret_cast<const char*>(value.bytes().data()), value.bytes().size());
  std::vector<RedisClient::Command> cmds;
  cmds.push_back(options_.ttl_s > 0 ? RedisClient::Command{"SET", key, bytes, "EX", ttl}
                                    : RedisClient::Command{"SET", key, bytes});
  // A request end between multiples is found through its bucket's set of ends.
  const std::string ekey = fmt::format("{}e:{}:{}", base_, b, h[0]);
  const std::string member = fmt::format("{}:{}", L, h[1]);
  const std::string score = std::to_string(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
  const std::string keep = std::to_string(-(options_.ends_per_bucket + 1));
  if (L % S != 0) {
    cmds.push_back({"ZADD", ekey, score, member});
    cmds.push_back({"ZREMRANGEBYRANK", ekey, "0", keep});
    if (options_.ttl_s > 0) cmds.push_back({"EXPIRE", ekey, ttl});
  }
  std::lock_guard lock(mu_);
  auto replies = client_.pipeline(cmds);
  bool ok = replies && std::none_of(replies->begin(), replies->end(), [](const RedisReply& r) {
              return r.type == RedisReply::Type::Error;
            });
  if (!ok) {
    ++stats_.failures;
    return false;
  }
  ++stats_.stores;
  stats_.bytes_stored += bytes.size();
  return true;
}

std::string prometheus_text(const RedisStoreStats& s) {
  std::string out;
  auto counter = [&](const char* name, const char* help, uint64_t v) {
    out += fmt::format("# HELP {0} {1}\n# TYPE {0} counter\n{0} {2}\n", name, help, v);
  };
  counter("linfer_state_store_lookups_total", "state store lookups", s.lookups);
  counter("linfer_state_store_hits_total", "state store lookups that found a prefix", s.hits);
  counter("linfer_state_store_stores_total", "states written to the store", s.stores);
  counter("linfer_state_store_bytes_loaded_total", "state bytes read from the store", s.bytes_loaded);
  counter("linfer_state_store_refused_total", "stored values refused by the wire reader (deleted)", s.refused);
  counter("linfer_state_store_failures_total", "store calls that failed (Redis down, slow or answering garbage)",
          s.failures);
  return out;
}

}  // namespace linfer
