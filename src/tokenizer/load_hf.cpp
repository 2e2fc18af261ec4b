// Hugging Face tokenizer.json with a byte-level BPE model (GPT-2 / Qwen family).

#include <cctype>
#include <filesystem>

#include "tokenizer/byte_level.h"
#include "tokenizer/json_fields.h"
#include "tokenizer/tokenizer_impl.h"

namespace linfer::tok {
namespace {

// A literal pattern ({"String": ...}) as a regex that matches exactly it.
std::string quote_literal(std::string_view s) {
  std::string out;
  for (const char c : s) {
    if (static_cast<unsigned char>(c) < 0x80 && !std::isalnum(static_cast<unsigned char>(c))) out += '\\';
    out += c;
  }
  return out;
}

SplitBehavior parse_behavior(const std::string& name, const std::string& where) {
  if (name == "Isolated") return SplitBehavior::kIsolated;
  if (name == "Removed") return SplitBehavior::kRemoved;
  if (name == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (name == "Contiguous") return SplitBehavior::kContiguous;
  fail("{}.behavior: unknown split behavior '{}'", where, name);
}

Normalization parse_normalizer(const json& n, const std::string& where) {
  if (n.is_null()) return Normalization::kNone;
  const auto type = required(n, "type", where).get<std::string>();
  if (type == "NFC") return Normalization::kNfc;
  if (type == "Sequence") {
    Normalization result = Normalization::kNone;
    const json& list = required(n, "normalizers", where);
    for (size_t i = 0; i < list.size(); ++i) {
      if (parse_normalizer(list[i], fmt::format("{}.normalizers[{}]", where, i)) == Normalization::kNfc) {
        result = Normalization::kNfc;
      }
    }
    return result;
  }
  fail("{}: normalizer '{}' is not supported (linfer supports NFC or none)", where, type);
}

// Appends the steps of one pre-tokenizer; sets byte_level when it contains ByteLevel.
void parse_pre_tokenizer(const json& p, const std::string& where, PreTokenizer& out, bool& byte_level) {
  const auto type = required(p, "type", where).get<std::string>();
  if (type == "Sequence") {
    const json& list = required(p, "pretokenizers", where);
    for (size_t i = 0; i < list.size(); ++i) {
      parse_pre_tokenizer(list[i], fmt::format("{}.pretokenizers[{}]", where, i), out, byte_level);
    }
  } else if (type == "Split") {
    const json& pattern = required(p, "pattern", where);
    std::string regex;
    if (pattern.contains("Regex")) {
      regex = translate_pattern(required(pattern, "Regex", where + ".pattern").get<std::string>());
    } else if (pattern.contains("String")) {
      regex = quote_literal(required(pattern, "String", where + ".pattern").get<std::string>());
    } else {
      fail("{}.pattern: expected {{\"Regex\": ...}} or {{\"String\": ...}}", where);
    }
    PreTokenizeStep step;
    step.regex = std::make_shared<Regex>(regex, where);
    step.behavior = parse_behavior(required(p, "behavior", where).get<std::string>(), where);
    step.invert = value_or(p, "invert", false, where);
    out.steps.push_back(std::move(step));
  } else if (type == "ByteLevel") {
    byte_level = true;
    PreTokenizeStep step;
    step.add_prefix_space = value_or(p, "add_prefix_space", true, where);
    if (value_or(p, "use_regex", true, where)) {
      step.regex = std::make_shared<Regex>(translate_pattern(kGpt2Pattern), where);
    }
    out.steps.push_back(std::move(step));
  } else {
    fail("{}: pre-tokenizer '{}' is not supported (linfer supports Split, ByteLevel, Sequence)", where, type);
  }
}

// The model's id for a vocab string, growing the id tables to fit.
void add_vocab_entry(Tokenizer::Impl& impl, const std::string& token, int64_t id, const std::string& where) {
  LINFER_CHECK(id >= 0 && id < (int64_t{1} << 31), "{}: token '{}' has id {} (expected 0 <= id < 2^31)", where,
               token, id);
  if (static_cast<size_t>(id) >= impl.id_bytes.size()) {
    impl.id_bytes.resize(id + 1);
    impl.id_used.resize(id + 1);
    impl.id_special.resize(id + 1);
  }
  impl.id_bytes[id] = byte_level_decode(token);
  impl.id_used[id] = true;
  impl.token_ids[token] = static_cast<int32_t>(id);
}

void parse_model(const json& model, const std::string& where, Tokenizer::Impl& impl) {
  const auto type = value_or<std::string>(model, "type", "BPE", where);
  LINFER_CHECK(type == "BPE", "{}: model type '{}' is not supported (linfer supports byte-level BPE)", where, type);
  LINFER_CHECK(!value_or(model, "byte_fallback", false, where), "{}: byte_fallback is not supported", where);
  LINFER_CHECK(value_or(model, "dropout", 0.0, where) == 0.0, "{}: BPE dropout is not supported", where);
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    LINFER_CHECK(value_or<std::string>(model, key, "", where).empty(), "{}: {} is not supported", where, key);
  }

  const json& vocab = required(model, "vocab", where);
  LINFER_CHECK(vocab.is_object(), "{}.vocab: expected an object of token -> id", where);
  for (const auto& [token, id] : vocab.items()) {
    LINFER_CHECK(id.is_number_integer(), "{}.vocab: id of '{}' is not an integer", where, token);
    add_vocab_entry(impl, token, id.get<int64_t>(), where + ".vocab");
    // Only tokens written in the byte-level alphabet can come out of merging bytes.
    if (auto bytes = byte_level_to_bytes(token)) impl.bpe.words[std::move(*bytes)] = id.get<int32_t>();
  }
  impl.bpe.index_bytes();
  impl.bpe.ignore_merges = value_or(model, "ignore_merges", false, where);
  const auto unk = value_or<std::string>(model, "unk_token", "", where);
  if (!unk.empty()) {
    auto it = impl.token_ids.find(unk);
    LINFER_CHECK(it != impl.token_ids.end(), "{}: unk_token '{}' is not in the vocabulary", where, unk);
    impl.bpe.unk_id = it->second;
    impl.bpe.fuse_unk = value_or(model, "fuse_unk", false, where);
  }

  const json& merges = required(model, "merges", where);
  LINFER_CHECK(merges.is_array(), "{}.merges: expected an array", where);
  auto id_of = [&](const std::string& token, size_t rank) {
    auto it = impl.token_ids.find(token);
    LINFER_CHECK(it != impl.token_ids.end(), "{}.merges[{}]: token '{}' is not in the vocabulary", where, rank, token);
    return it->second;
  };
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const json& m = merges[rank];
    std::string a, b;
    if (m.is_string()) {  // "a b"
      const auto& s = m.get_ref<const std::string&>();
      const size_t space = s.find(' ');
      LINFER_CHECK(space != std::string::npos && s.find(' ', space + 1) == std::string::npos,
                   "{}.merges[{}]: expected \"left right\", found \"{}\"", where, rank, s);
      a = s.substr(0, space);
      b = s.substr(space + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {  // ["a", "b"]
      a = m[0].get<std::string>();
      b = m[1].get<std::string>();
    } else {
      fail("{}.merges[{}]: expected \"left right\" or [\"left\", \"right\"]", where, rank);
    }
    // A repeated pair keeps its last rank, as Hugging Face's merge map does.
    const int32_t left = id_of(a, rank), right = id_of(b, rank), merged = id_of(a + b, rank);
    impl.bpe.merges.set(BpeModel::pair_key(left, right), {static_cast<int32_t>(rank), merged});
  }
}

void parse_added_tokens(const json& list, const std::string& where, Tokenizer::Impl& impl) {
  LINFER_CHECK(list.is_array(), "{}: expected an array", where);
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string at = fmt::format("{}[{}]", where, i);
    AddedToken t;
    t.id = required(list[i], "id", at).get<int32_t>();
    t.content = required(list[i], "content", at).get<std::string>();
    LINFER_CHECK(!t.content.empty(), "{}: empty content", at);
    t.single_word = value_or(list[i], "single_word", false, at);
    t.lstrip = value_or(list[i], "lstrip", false, at);
    t.rstrip = value_or(list[i], "rstrip", false, at);
    t.special = value_or(list[i], "special", false, at);
    t.normalized = value_or(list[i], "normalized", !t.special, at);
    add_vocab_entry(impl, t.content, t.id, at);
    impl.id_special[t.id] = t.special;
    impl.added.push_back(std::move(t));
  }
}

}  // namespace

std::unique_ptr<Tokenizer::Impl> load_hf_tokenizer(const std::string& path, const std::string& tokenizer_config) {
  auto impl = std::make_unique<Tokenizer::Impl>();
  impl->source = path;
  const json j = read_json_file(path);
  try {
  LINFER_CHECK(j.is_object(), "{}: expected a JSON object", path);

  impl->normalization = parse_normalizer(j.value("normalizer", json()), path + ": normalizer");
  bool byte_level = false;
  const json pre = j.value("pre_tokenizer", json());
  if (!pre.is_null()) parse_pre_tokenizer(pre, path + ": pre_tokenizer", impl->pre_tokenizer, byte_level);
  const json decoder = j.value("decoder", json());
  const auto decoder_type = decoder.is_object() ? decoder.value("type", std::string()) : std::string("none");
  LINFER_CHECK(byte_level && decoder_type == "ByteLevel",
               "{}: not a byte-level BPE tokenizer (pre_tokenizer must include ByteLevel, decoder must be ByteLevel; "
               "found decoder '{}')",
               path, decoder_type);
  // post_processor is ignored on purpose: encode() adds no BOS/EOS (add_special_tokens=False).

  parse_model(required(j, "model", path), path + ": model", *impl);
  if (j.contains("added_tokens")) parse_added_tokens(j["added_tokens"], path + ": added_tokens", *impl);
  impl->eos = config_eos_id(tokenizer_config, *impl);
  } catch (const json::exception& e) {  // a field of the wrong JSON type
    fail("{}: {}", path, e.what());
  }
  impl->finish("bpe");
  return impl;
}

int32_t config_eos_id(const std::string& tokenizer_config, const Tokenizer::Impl& impl) {
  if (!std::filesystem::is_regular_file(tokenizer_config)) return -1;
  const json config = read_json_file(tokenizer_config);
  const json eos = config.value("eos_token", json());
  std::string name;
  if (eos.is_string()) {
    name = eos.get<std::string>();
  } else if (eos.is_object()) {
    name = required(eos, "content", tokenizer_config + ": eos_token").get<std::string>();
  } else {
    return -1;
  }
  auto it = impl.token_ids.find(name);
  LINFER_CHECK(it != impl.token_ids.end(), "{}: eos_token '{}' is not a token of {}", tokenizer_config, name,
               impl.source);
  return it->second;
}

}  // namespace linfer::tok
