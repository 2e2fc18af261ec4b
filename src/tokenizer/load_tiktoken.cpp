// tiktoken BPE as Kimi models ship it: tiktoken.model ("<base64 token> <rank>" per line; the rank is
// the id) + special tokens from tokenizer_config.json, Kimi's pre-tokenizer pattern.

#include <fstream>
#include <map>
#include <sstream>

#include "tokenizer/json_fields.h"
#include "tokenizer/kimi_pattern.h"
#include "tokenizer/tokenizer_impl.h"

namespace linfer::tok {
namespace {

// Standard base64 with padding, strictly: anything else is an error.
bool base64_decode(std::string_view in, std::string& out) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  out.clear();
  if (in.empty() || in.size() % 4 != 0) return false;
  for (size_t i = 0; i < in.size(); i += 4) {
    const bool last = i + 4 == in.size();
    const int pad = last ? (in[i + 3] == '=') + (in[i + 2] == '=') : 0;
    if (pad == 1 && in[i + 2] == '=') return false;  // "x=y=" and the like
    uint32_t bits = 0;
    for (int k = 0; k < 4; ++k) {
      const int v = k >= 4 - pad ? 0 : value(in[i + k]);
      if (v < 0) return false;
      bits = bits << 6 | v;
    }
    out += static_cast<char>(bits >> 16);
    if (pad < 2) out += static_cast<char>(bits >> 8 & 0xFF);
    if (pad < 1) out += static_cast<char>(bits & 0xFF);
  }
  return true;
}

void set_id(Tokenizer::Impl& impl, int32_t id, std::string bytes, bool special) {
  if (static_cast<size_t>(id) >= impl.id_bytes.size()) {
    impl.id_bytes.resize(id + 1);
    impl.id_used.resize(id + 1);
    impl.id_special.resize(id + 1);
  }
  impl.token_ids[bytes] = id;
  impl.id_bytes[id] = std::move(bytes);
  impl.id_used[id] = true;
  impl.id_special[id] = special;
}

// Reads the ranks into impl.bpe.words and the id tables; returns how many there are.
int32_t read_ranks(const std::string& path, Tokenizer::Impl& impl) {
  std::ifstream in(path, std::ios::binary);
  LINFER_CHECK(in, "{}: cannot open", path);
  std::string line, token;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    std::istringstream fields(line);
    std::string b64, rank_text, extra;
    fields >> b64 >> rank_text;
    LINFER_CHECK(!rank_text.empty() && !(fields >> extra), "{}:{}: expected \"<base64 token> <rank>\", found \"{}\"",
                 path, line_no, line);
    LINFER_CHECK(base64_decode(b64, token), "{}:{}: invalid base64 '{}'", path, line_no, b64);
    int64_t rank = -1;
    try {
      size_t used;
      rank = std::stoll(rank_text, &used);
      if (used != rank_text.size()) rank = -1;
    } catch (const std::exception&) {
    }
    LINFER_CHECK(rank >= 0 && rank < (int64_t{1} << 30), "{}:{}: rank '{}' is not an integer in [0, 2^30)", path,
                 line_no, rank_text);
    LINFER_CHECK(static_cast<size_t>(rank) >= impl.id_used.size() || !impl.id_used[rank], "{}:{}: rank {} appears twice",
                 path, line_no, rank);
    const auto [it, fresh] = impl.bpe.words.emplace(token, static_cast<int32_t>(rank));
    LINFER_CHECK(fresh, "{}:{}: token '{}' appears twice (ranks {} and {})", path, line_no, b64, it->second, rank);
    set_id(impl, static_cast<int32_t>(rank), token, false);
  }
  LINFER_CHECK(!impl.bpe.words.empty(), "{}: no tokens", path);
  return static_cast<int32_t>(impl.bpe.words.size());
}

// tiktoken merges the adjacent pair whose concatenation has the lowest rank: every way of cutting a
// token into two tokens is a merge of that token's rank.
void derive_merges(BpeModel& bpe) {
  for (const auto& [bytes, id] : bpe.words) {
    const std::string_view whole = bytes;
    for (size_t cut = 1; cut < whole.size(); ++cut) {
      auto left = bpe.words.find(whole.substr(0, cut));
      if (left == bpe.words.end()) continue;
      auto right = bpe.words.find(whole.substr(cut));
      if (right == bpe.words.end()) continue;
      bpe.merges.set(BpeModel::pair_key(left->second, right->second), {id, id});
    }
  }
}

// Kimi's special tokens: ids [n_base, n_base + 256), named by tokenizer_config.json's
// added_tokens_decoder or "<|reserved_token_{id}|>"; entries outside that range are added as well.
void add_special_tokens(const std::string& config_path, int32_t n_base, Tokenizer::Impl& impl) {
  const json config = read_json_file(config_path);
  std::map<int32_t, std::string> names;
  for (int32_t id = n_base; id < n_base + kKimiReservedSpecialTokens; ++id) {
    names[id] = fmt::format("<|reserved_token_{}|>", id);
  }
  const json decoder = config.value("added_tokens_decoder", json::object());
  LINFER_CHECK(decoder.is_object(), "{}: added_tokens_decoder must map ids to tokens", config_path);
  for (const auto& [key, entry] : decoder.items()) {
    int32_t id = -1;
    try {
      id = std::stoi(key);
    } catch (const std::exception&) {
    }
    LINFER_CHECK(id >= 0 && std::to_string(id) == key, "{}: added_tokens_decoder key '{}' is not an id", config_path, key);
    LINFER_CHECK(static_cast<size_t>(id) >= impl.id_used.size() || !impl.id_used[id],
                 "{}: special token id {} is also a rank of tiktoken.model", config_path, id);
    names[id] = required(entry, "content", fmt::format("{}: added_tokens_decoder.{}", config_path, key)).get<std::string>();
  }
  for (auto& [id, name] : names) {
    AddedToken t;
    t.id = id;
    t.content = name;
    t.special = true;
    set_id(impl, id, name, true);
    impl.added.push_back(std::move(t));
  }
}

}  // namespace

std::unique_ptr<Tokenizer::Impl> load_tiktoken(const std::string& path, const std::string& tokenizer_config) {
  auto impl = std::make_unique<Tokenizer::Impl>();
  impl->source = path;
  const int32_t n_base = read_ranks(path, *impl);
  impl->bpe.index_bytes();
  impl->bpe.ignore_merges = true;  // tiktoken emits a piece that is a whole token directly
  derive_merges(impl->bpe);

  PreTokenizeStep split;
  split.regex = std::make_shared<Regex>(translate_pattern(kKimiPattern), "Kimi pre-tokenizer pattern");
  impl->pre_tokenizer.steps.push_back(std::move(split));

  try {
    add_special_tokens(tokenizer_config, n_base, *impl);
  } catch (const json::exception& e) {
    fail("{}: {}", tokenizer_config, e.what());
  }
  impl->eos = config_eos_id(tokenizer_config, *impl);
  impl->finish("tiktoken");
  return impl;
}

}  // namespace linfer::tok
