#include "linfer/tokenizer.h"

#include <xxhash.h>

#include <algorithm>
#include <deque>
#include <filesystem>
#include <tuple>

#include "io/gguf.h"
#include "linfer/core/error.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/utf8.h"

namespace linfer {

// ---- loading ----------------------------------------------------------------------------------

std::unique_ptr<Tokenizer> Tokenizer::load(const std::string& model_dir) {
  namespace fs = std::filesystem;
  if (is_gguf_file(model_dir)) return std::make_unique<Tokenizer>(tok::load_gguf_tokenizer(model_dir));
  const fs::path dir(model_dir);
  const std::string config = (dir / "tokenizer_config.json").string();
  std::unique_ptr<Impl> impl;
  if (fs::is_regular_file(dir / "tokenizer.json")) {
    impl = tok::load_hf_tokenizer((dir / "tokenizer.json").string(), config);
  } else if (fs::is_regular_file(dir / "tiktoken.model")) {
    impl = tok::load_tiktoken((dir / "tiktoken.model").string(), config);
  } else {
    fail("{}: no tokenizer found (expected tokenizer.json, or tiktoken.model with tokenizer_config.json)",
         model_dir);
  }
  return std::make_unique<Tokenizer>(std::move(impl));
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

namespace {

// Length-prefixed fields, so that no two different tokenizers serialize to the same stream.
struct Hasher {
  XXH3_state_t* state = XXH3_createState();
  Hasher() { XXH3_128bits_reset(state); }
  ~Hasher() { XXH3_freeState(state); }
  void bytes(std::string_view s) {
    add(static_cast<uint64_t>(s.size()));
    XXH3_128bits_update(state, s.data(), s.size());
  }
  void add(uint64_t v) { XXH3_128bits_update(state, &v, sizeof v); }
  std::string hex() const {
    const XXH128_hash_t h = XXH3_128bits_digest(state);
    return fmt::format("{:016x}{:016x}", h.high64, h.low64);
  }
};

}  // namespace

void Tokenizer::Impl::finish(std::string_view kind) {
  // Two passes, as Hugging Face does even without a normalizer: tokens with normalized=false are
  // matched in the raw text first, the others (in their normalized form) in what remains.
  std::vector<tok::AddedToken> raw, normalized;
  for (const auto& t : added) {
    if (t.normalized) {
      normalized.push_back(t);
      normalized.back().content = tok::normalize(normalization, t.content);
    } else {
      raw.push_back(t);
    }
  }
  raw_matcher = tok::AddedTokenMatcher(raw);
  normalized_matcher = tok::AddedTokenMatcher(normalized);

  Hasher h;
  h.bytes("linfer-tokenizer-1");
  h.add(static_cast<uint64_t>(normalization));
  for (const auto& step : pre_tokenizer.steps) {
    h.bytes(step.regex ? step.regex->pattern() : "");
    h.add(static_cast<uint64_t>(step.behavior));
    h.add(step.invert);
    h.add(step.add_prefix_space);
  }
  h.add(bpe.ignore_merges);
  h.add(static_cast<uint64_t>(bpe.unk_id));
  h.add(bpe.fuse_unk);
  std::vector<std::tuple<int32_t, uint64_t, int32_t>> merges;  // rank, pair, result
  merges.reserve(bpe.merges.size());
  bpe.merges.for_each([&](uint64_t pair, tok::Merge m) { merges.emplace_back(m.rank, pair, m.result); });
  std::sort(merges.begin(), merges.end());
  for (const auto& [rank, pair, result] : merges) {
    h.add(static_cast<uint64_t>(rank));
    h.add(pair);
    h.add(static_cast<uint64_t>(result));
  }
  for (size_t id = 0; id < id_bytes.size(); ++id) {
    h.add(id_used[id] | id_special[id] << 1);
    h.bytes(id_bytes[id]);
  }
  for (const auto& t : added) {
    h.add(static_cast<uint64_t>(t.id));
    h.bytes(t.content);
    h.add(t.single_word | t.lstrip << 1 | t.rstrip << 2 | t.normalized << 3);
  }
  fingerprint = fmt::format("{}-{}", kind, h.hex());
}

// ---- encode / decode --------------------------------------------------------------------------

std::vector<int32_t> Tokenizer::encode(std::string_view text, SpecialTokens special) const {
  const Impl& m = *impl_;
  const bool skip_special = special == SpecialTokens::kAsText;
  const std::string repaired = tok::utf8_repair(text);
  std::deque<std::string> arena;  // normalized text and prefixed words the views below point into

  std::vector<tok::Segment> raw, segments;
  if (m.raw_matcher.empty()) {
    raw.push_back({repaired, -1});
  } else {
    m.raw_matcher.split(repaired, skip_special, raw);
  }
  for (const tok::Segment& seg : raw) {
    if (seg.id >= 0 || (m.normalization == tok::Normalization::kNone && m.normalized_matcher.empty())) {
      segments.push_back(seg);
      continue;
    }
    const std::string_view normalized = m.normalization == tok::Normalization::kNone
                                            ? seg.text
                                            : arena.emplace_back(tok::normalize(m.normalization, seg.text));
    if (m.normalized_matcher.empty()) {
      if (!normalized.empty()) segments.push_back({normalized, -1});
    } else {
      m.normalized_matcher.split(normalized, skip_special, segments);
    }
  }

  std::vector<int32_t> ids;
  ids.reserve(repaired.size() / 3);
  // Words repeat a lot in real text: remember where each one's ids already are in `ids`.
  std::unordered_map<std::string_view, std::pair<size_t, size_t>> cache;
  std::vector<std::string_view> words;
  for (const tok::Segment& seg : segments) {
    if (seg.id >= 0) {
      ids.push_back(seg.id);
      continue;
    }
    words.assign(1, seg.text);
    m.pre_tokenizer.run(words, arena);
    for (std::string_view word : words) {
      auto [it, fresh] = cache.try_emplace(word);
      if (fresh) {
        const size_t begin = ids.size();
        m.bpe.encode_word(word, ids);
        it->second = {begin, ids.size() - begin};
      } else {
        ids.insert(ids.end(), ids.begin() + it->second.first, ids.begin() + it->second.first + it->second.second);
      }
    }
  }
  return ids;
}

std::string_view Tokenizer::token_bytes(int32_t id) const {
  LINFER_CHECK(id >= 0 && id < vocab_size(), "token id {} is outside the vocabulary [0, {}) of {}", id,
               vocab_size(), impl_->source);
  return impl_->id_bytes[id];
}

bool Tokenizer::is_special(int32_t id) const {
  token_bytes(id);  // range check
  return impl_->id_special[id];
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string bytes;
  for (const int32_t id : ids) {
    const std::string_view b = token_bytes(id);
    if (!(skip_special && impl_->id_special[id])) bytes += b;
  }
  return tok::utf8_repair(bytes);
}

int32_t Tokenizer::token_id(std::string_view token) const {
  auto it = impl_->token_ids.find(std::string(token));
  return it == impl_->token_ids.end() ? -1 : it->second;
}

int64_t Tokenizer::vocab_size() const { return static_cast<int64_t>(impl_->id_bytes.size()); }
int32_t Tokenizer::eos_id() const { return impl_->eos; }
const std::string& Tokenizer::fingerprint() const { return impl_->fingerprint; }

// ---- streaming --------------------------------------------------------------------------------

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer) : tokenizer_(tokenizer) {}

std::string StreamDecoder::push(int32_t id) {
  pending_ += tokenizer_.token_bytes(id);
  const size_t ready = pending_.size() - tok::utf8_unfinished_tail(pending_);
  std::string out = tok::utf8_repair(std::string_view(pending_).substr(0, ready));
  pending_.erase(0, ready);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out = tok::utf8_repair(pending_);
  pending_.clear();
  return out;
}

}  // namespace linfer
