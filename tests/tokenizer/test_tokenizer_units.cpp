// Tokenizer parts against independent references: UTF-8 repair and Unicode classes against ICU,
// pre-tokenizer split behaviors against Hugging Face's documented examples, BPE merge order and
// added-token rules on small hand-made tokenizer.json files whose answers follow from the rules,
// streaming, and clear errors for malformed files.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unicode/uchar.h>
#include <unicode/uniset.h>
#include <unicode/unistr.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <unistd.h>

#include "linfer/core/error.h"
#include "linfer/tokenizer.h"
#include "tokenizer/kimi_pattern.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/regex.h"
#include "tokenizer/utf8.h"

using namespace linfer;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// ---- references ---------------------------------------------------------------------------------

std::string icu_repair(std::string_view s) {
  std::string out;
  icu::UnicodeString::fromUTF8(icu::StringPiece(s.data(), static_cast<int32_t>(s.size()))).toUTF8String(out);
  return out;
}

std::string utf8(char32_t c) {
  std::string out;
  icu::UnicodeString(static_cast<UChar32>(c)).toUTF8String(out);
  return out;
}

// Bytes that are often almost-UTF-8: ASCII, continuation bytes, every kind of lead byte.
std::string random_bytes(std::mt19937& rng, size_t n) {
  std::string s;
  std::uniform_int_distribution<int> kind(0, 9), any(0, 255);
  for (size_t i = 0; i < n; ++i) {
    const int k = kind(rng);
    int b;
    if (k < 3) b = 0x20 + any(rng) % 0x5F;
    else if (k < 6) b = 0x80 + any(rng) % 0x40;
    else if (k < 7) b = 0xC0 + any(rng) % 0x20;
    else if (k < 8) b = 0xE0 + any(rng) % 0x10;
    else if (k < 9) b = 0xF0 + any(rng) % 0x10;
    else b = any(rng);
    s += static_cast<char>(b);
  }
  return s;
}

// GPT-2's byte -> character table (the spec: printable bytes stay, the rest go to U+0100 + n).
std::string byte_char(int b) {
  static const std::vector<std::string> table = [] {
    std::vector<std::string> t(256);
    int n = 0;
    for (int x = 0; x < 256; ++x) {
      const bool keep = (x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || x >= 0xAE;
      t[x] = utf8(keep ? x : 0x100 + n++);
    }
    return t;
  }();
  return table[b];
}

std::string byte_level(std::string_view raw) {
  std::string out;
  for (const char c : raw) out += byte_char(static_cast<unsigned char>(c));
  return out;
}

// ---- hand-made tokenizer folders ----------------------------------------------------------------

class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    path_ = fs::temp_directory_path() / fmt::format("linfer_tok_{}_{}", getpid(), counter++);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string path() const { return path_.string(); }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ / name, std::ios::binary) << text;
  }

 private:
  fs::path path_;
};

// A byte-level BPE: ids 0..255 are the bytes in order, each merge adds the next id.
// `merges` are written in raw text ("a b"); string_form picks "a b" lines or ["a", "b"] pairs.
json byte_level_tokenizer(const std::vector<std::pair<std::string, std::string>>& merges, bool string_form = false) {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_char(b)] = b;
  json merge_list = json::array();
  for (const auto& [a, b] : merges) {
    const std::string ab = byte_level(a + b);
    if (!vocab.contains(ab)) vocab[ab] = static_cast<int>(vocab.size());
    if (string_form) {
      merge_list.push_back(byte_level(a) + " " + byte_level(b));
    } else {
      merge_list.push_back({byte_level(a), byte_level(b)});
    }
  }
  return {{"version", "1.0"},
          {"added_tokens", json::array()},
          {"normalizer", nullptr},
          {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}},
          {"post_processor", nullptr},
          {"decoder", {{"type", "ByteLevel"}}},
          {"model",
           {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"byte_fallback", false},
            {"ignore_merges", false}, {"vocab", vocab}, {"merges", merge_list}}}};
}

std::unique_ptr<Tokenizer> load_json(const TempDir& dir, const json& tokenizer) {
  dir.write("tokenizer.json", tokenizer.dump());
  return Tokenizer::load(dir.path());
}

std::vector<int32_t> bytes_of(std::string_view s) {
  std::vector<int32_t> ids;
  for (const char c : s) ids.push_back(static_cast<unsigned char>(c));
  return ids;
}

std::vector<int32_t> concat(std::initializer_list<std::vector<int32_t>> parts) {
  std::vector<int32_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// Loading `dir` throws linfer::Error whose message contains every one of `needles`.
void expect_load_error(const TempDir& dir, std::initializer_list<std::string> needles) {
  try {
    Tokenizer::load(dir.path());
    ADD_FAILURE() << "expected an Error for " << dir.path();
  } catch (const Error& e) {
    for (const auto& n : needles) EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what();
  }
}

}  // namespace

// ---- UTF-8 --------------------------------------------------------------------------------------

TEST(Utf8, RepairMatchesIcuOnRandomBytes) {
  std::mt19937 rng(1);
  for (int trial = 0; trial < 20000; ++trial) {
    const std::string s = random_bytes(rng, 1 + trial % 17);
    ASSERT_EQ(tok::utf8_repair(s), icu_repair(s)) << trial;
    ASSERT_EQ(tok::utf8_is_valid(s), icu_repair(s) == s) << trial;
  }
}

// Holding back the unfinished tail never changes how the rest repairs, wherever the cut falls.
TEST(Utf8, UnfinishedTailSplitsWithoutChangingTheRepair) {
  std::mt19937 rng(2);
  for (int trial = 0; trial < 5000; ++trial) {
    const std::string s = random_bytes(rng, 12);
    const std::string whole = icu_repair(s);
    for (size_t cut = 0; cut <= s.size(); ++cut) {
      const std::string head = s.substr(0, cut);
      const size_t ready = head.size() - tok::utf8_unfinished_tail(head);
      ASSERT_EQ(icu_repair(head.substr(0, ready)) + icu_repair(s.substr(ready)), whole) << trial << " cut " << cut;
    }
  }
}

// ---- regex translation against ICU's Unicode sets ------------------------------------------------

namespace {

// Every assigned code point of Unicode <= 14 (PCRE2 10.42's tables), whether `pattern` matches it
// alone equals whether ICU's set `icu_set` contains it.
void expect_same_class(const std::string& pattern, const char* icu_set) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::UnicodeSet set(icu::UnicodeString::fromUTF8(icu_set), status);
  ASSERT_TRUE(U_SUCCESS(status)) << icu_set;
  const tok::Regex re("^(?:" + tok::translate_pattern(pattern) + ")$", pattern);
  int mismatches = 0;
  for (char32_t c = 0; c <= 0x10FFFF && mismatches < 5; ++c) {
    if (c >= 0xD800 && c <= 0xDFFF) continue;
    UVersionInfo age;
    u_charAge(static_cast<UChar32>(c), age);
    if (u_charType(static_cast<UChar32>(c)) == U_UNASSIGNED || age[0] > 14) continue;
    bool matched = false;
    re.for_each_match(utf8(c), [&](size_t, size_t) { matched = true; });
    if (matched != static_cast<bool>(set.contains(static_cast<UChar32>(c)))) {
      ADD_FAILURE() << pattern << " on U+" << std::hex << static_cast<uint32_t>(c) << ": pcre2 " << matched;
      ++mismatches;
    }
  }
}

}  // namespace

TEST(Regex, ClassIntersectionMatchesIcu) {
  expect_same_class(R"([\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]])", R"([[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]&[^\p{Han}]])");
  expect_same_class(R"([\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]])", R"([[\p{Ll}\p{Lm}\p{Lo}\p{M}]&[^\p{Han}]])");
}

TEST(Regex, SpacesAndScriptsMeanWhatRustRegexMeans) {
  expect_same_class(R"(\s)", R"([\p{White_Space}])");
  expect_same_class(R"([^\s\p{L}\p{N}])", R"([^\p{White_Space}\p{L}\p{N}])");
  expect_same_class(R"([\p{Han}])", R"([\p{Script=Han}])");  // Script, not Script_Extensions
}

TEST(Regex, UnsupportedClassSetOperationsAreRefused) {
  for (const char* p : {"[a&&b]", "[^a&&[b]]", "[a&&[b]c]", "[a[b]]", "[abc", R"(\p{L)"}) {
    EXPECT_THROW(tok::translate_pattern(p), Error) << p;
  }
  EXPECT_THROW(tok::Regex("(", "test"), Error);
}

TEST(Regex, KimiPatternCompilesAndSplitsHanFromOtherLetters) {
  const tok::Regex re(tok::translate_pattern(tok::kKimiPattern), "kimi");
  std::vector<std::string> pieces;
  const std::string text = "Kimi模型 don't 日本語のテキスト 123456";
  re.for_each_match(text, [&](size_t b, size_t e) { pieces.push_back(text.substr(b, e - b)); });
  const std::vector<std::string> expected = {"Kimi", "模型", " don't", " ", "日本語", "のテキスト", " ", "123", "456"};
  EXPECT_EQ(pieces, expected);
}

// ---- pre-tokenizer split behaviors (examples from Hugging Face's SplitDelimiterBehavior docs) ----

TEST(PreTokenizer, SplitBehaviorsFollowHuggingFace) {
  const auto dash = std::make_shared<tok::Regex>("-", "dash");
  const std::string text = "the-final--countdown";
  const std::vector<std::pair<tok::SplitBehavior, std::vector<std::string_view>>> expected = {
      {tok::SplitBehavior::kRemoved, {"the", "final", "countdown"}},
      {tok::SplitBehavior::kIsolated, {"the", "-", "final", "-", "-", "countdown"}},
      {tok::SplitBehavior::kMergedWithPrevious, {"the-", "final-", "-", "countdown"}},
      {tok::SplitBehavior::kMergedWithNext, {"the", "-final", "-", "-countdown"}},
      {tok::SplitBehavior::kContiguous, {"the", "-", "final", "--", "countdown"}},
  };
  for (const auto& [behavior, pieces] : expected) {
    tok::PreTokenizer pre;
    pre.steps.push_back({dash, behavior, false, false});
    std::vector<std::string_view> words{text};
    std::deque<std::string> arena;
    pre.run(words, arena);
    EXPECT_EQ(words, pieces) << static_cast<int>(behavior);
  }
}

// ---- BPE rules on hand-made tokenizers ------------------------------------------------------------

TEST(Bpe, LowestRankMergesFirstThenLeftmost) {
  TempDir dir;
  // "ab" outranks "bc": "abc" -> ab + c.  Reversed ranks: a + bc.
  auto t1 = load_json(dir, byte_level_tokenizer({{"a", "b"}, {"b", "c"}}));
  EXPECT_EQ(t1->encode("abc"), (std::vector<int32_t>{256, 'c'}));
  auto t2 = load_json(dir, byte_level_tokenizer({{"b", "c"}, {"a", "b"}}));
  EXPECT_EQ(t2->encode("abc"), (std::vector<int32_t>{'a', 256}));
  // Equal pairs: leftmost first, "aaa" -> aa + a.
  auto t3 = load_json(dir, byte_level_tokenizer({{"a", "a"}}));
  EXPECT_EQ(t3->encode("aaa"), (std::vector<int32_t>{256, 'a'}));
  // Chains: a b -> ab (256), ab c -> abc (257), then abc abc -> 258.
  auto t4 = load_json(dir, byte_level_tokenizer({{"a", "b"}, {"ab", "c"}, {"abc", "abc"}}));
  EXPECT_EQ(t4->encode("abcabcab"), (std::vector<int32_t>{258, 256}));
  EXPECT_EQ(t4->decode(t4->encode("abcabcab")), "abcabcab");
}

TEST(Bpe, StringAndPairMergesAreTheSameTokenizer) {
  TempDir a, b;
  const std::vector<std::pair<std::string, std::string>> merges = {{" ", "t"}, {"h", "e"}, {" t", "he"}, {"\xC3", "\xA9"}, {"é", "!"}};
  auto pairs = load_json(a, byte_level_tokenizer(merges));
  auto strings = load_json(b, byte_level_tokenizer(merges, /*string_form=*/true));
  const std::string text = "the the théé! é!";
  EXPECT_EQ(pairs->encode(text), strings->encode(text));
  EXPECT_EQ(pairs->fingerprint(), strings->fingerprint());
  EXPECT_EQ(pairs->encode(" the"), (std::vector<int32_t>{258}));
}

TEST(Bpe, IgnoreMergesTakesWholeWordsFromTheVocabulary) {
  TempDir dir;
  json j = byte_level_tokenizer({{"a", "b"}});
  j["model"]["vocab"][byte_level("abc")] = 300;
  EXPECT_EQ(load_json(dir, j)->encode("abc"), (std::vector<int32_t>{256, 'c'}));
  j["model"]["ignore_merges"] = true;
  auto t = load_json(dir, j);
  EXPECT_EQ(t->encode("abc"), (std::vector<int32_t>{300}));
  EXPECT_EQ(t->encode("abcd"), (std::vector<int32_t>{256, 'c', 'd'}));
}

TEST(Bpe, ByteLevelPrefixSpaceAndNfc) {
  TempDir dir;
  json j = byte_level_tokenizer({});
  EXPECT_EQ(load_json(dir, j)->encode("e\xCC\x81"), bytes_of("e\xCC\x81"));  // e + combining acute
  j["normalizer"] = {{"type", "NFC"}};
  EXPECT_EQ(load_json(dir, j)->encode("e\xCC\x81"), bytes_of("\xC3\xA9"));  // é
  j["normalizer"] = {{"type", "Sequence"}, {"normalizers", json::array({{{"type", "NFC"}}})}};
  EXPECT_EQ(load_json(dir, j)->encode("e\xCC\x81"), bytes_of("\xC3\xA9"));
  j["pre_tokenizer"]["add_prefix_space"] = true;
  EXPECT_EQ(load_json(dir, j)->encode("hi"), bytes_of(" hi"));
  EXPECT_EQ(load_json(dir, j)->encode(" hi"), bytes_of(" hi"));
}

TEST(AddedTokens, LongestMatchStripAndSingleWord) {
  TempDir dir;
  json j = byte_level_tokenizer({});
  auto added = [](int id, const std::string& content, bool lstrip, bool rstrip, bool single_word, bool special) {
    return json{{"id", id}, {"content", content}, {"lstrip", lstrip}, {"rstrip", rstrip},
                {"single_word", single_word}, {"normalized", false}, {"special", special}};
  };
  j["added_tokens"] = {added(300, "<x>", false, false, false, true), added(301, "<x>>", false, false, false, true),
                       added(302, "<l>", true, false, false, true), added(303, "<r>", false, true, false, true),
                       added(304, "ab", false, false, true, false)};
  auto t = load_json(dir, j);
  EXPECT_EQ(t->encode("a<x>b<x>>c"), concat({{'a', 300, 'b', 301, 'c'}}));
  EXPECT_EQ(t->encode("a  <l>  b"), concat({{'a', 302}, bytes_of("  b")}));
  EXPECT_EQ(t->encode("a  <r>  b"), concat({bytes_of("a  "), {303, 'b'}}));
  EXPECT_EQ(t->encode("xab ab ab."), concat({bytes_of("xab "), {304, ' ', 304, '.'}}));
  // As text, special tokens are plain bytes; the non-special "ab" still matches.
  EXPECT_EQ(t->encode("<x> ab", SpecialTokens::kAsText), concat({bytes_of("<x> "), {304}}));
  EXPECT_EQ(t->decode(std::vector<int32_t>{'a', 300, 304}), "a<x>ab");
  EXPECT_EQ(t->decode(std::vector<int32_t>{'a', 300, 304}, /*skip_special=*/true), "aab");
  EXPECT_EQ(t->token_id("<x>>"), 301);
  EXPECT_EQ(t->token_id("nope"), -1);
  EXPECT_EQ(t->vocab_size(), 305);
}

// Hugging Face matches normalized=false tokens in the raw text first, then normalized=true tokens in
// what is left, with or without a normalizer: "bc" wins over the leftmost "ab" here.
TEST(AddedTokens, RawTokensAreMatchedBeforeNormalizedOnes) {
  TempDir dir;
  json j = byte_level_tokenizer({});
  j["added_tokens"] = {{{"id", 300}, {"content", "ab"}, {"normalized", true}, {"special", false}},
                       {{"id", 301}, {"content", "bc"}, {"normalized", false}, {"special", false}}};
  EXPECT_EQ(load_json(dir, j)->encode("abc ab"), (std::vector<int32_t>{'a', 301, ' ', 300}));
  // A normalized token matches the normalized text: "é" written decomposed, NFC composes both.
  j["normalizer"] = {{"type", "NFC"}};
  j["added_tokens"] = {{{"id", 300}, {"content", "e\xCC\x81!"}, {"normalized", true}, {"special", false}}};
  EXPECT_EQ(load_json(dir, j)->encode("xe\xCC\x81!"), (std::vector<int32_t>{'x', 300}));
  EXPECT_EQ(load_json(dir, j)->encode("x\xC3\xA9!"), (std::vector<int32_t>{'x', 300}));
}

TEST(Bpe, FingerprintFollowsTheMerges) {
  TempDir a, b;
  EXPECT_NE(load_json(a, byte_level_tokenizer({{"a", "b"}, {"b", "c"}}))->fingerprint(),
            load_json(b, byte_level_tokenizer({{"b", "c"}, {"a", "b"}}))->fingerprint());
}

// ---- streaming ------------------------------------------------------------------------------------

TEST(StreamDecoder, PiecesAreValidAndAddUpToDecode) {
  TempDir dir;
  // Tokens that cut characters in odd places: bytes, and merges of partial sequences.
  auto t = load_json(dir, byte_level_tokenizer({{"\xE4", "\xBD"}, {"\xA0", "a"}, {"\xF0", "\x9F"}, {"\xF0\x9F", "\xA6"}, {"!", "\xC3"}}));
  std::mt19937 rng(3);
  std::uniform_int_distribution<int32_t> id(0, static_cast<int32_t>(t->vocab_size()) - 1);
  for (int trial = 0; trial < 2000; ++trial) {
    std::vector<int32_t> ids(1 + trial % 13);
    for (auto& x : ids) x = id(rng) % 4 == 0 ? id(rng) : 0x80 + id(rng) % 0x80;  // mostly high bytes
    StreamDecoder stream(*t);
    std::string joined;
    for (const int32_t x : ids) {
      const std::string piece = stream.push(x);
      ASSERT_EQ(icu_repair(piece), piece) << "invalid UTF-8 piece, trial " << trial;
      joined += piece;
    }
    const std::string rest = stream.flush();
    ASSERT_EQ(icu_repair(rest), rest);
    ASSERT_EQ(joined + rest, t->decode(ids)) << trial;
  }
  EXPECT_THROW(t->decode(std::vector<int32_t>{-1}), Error);
  EXPECT_THROW(StreamDecoder(*t).push(static_cast<int32_t>(t->vocab_size())), Error);
}

// ---- malformed files ------------------------------------------------------------------------------

TEST(Malformed, TokenizerJson) {
  TempDir dir;
  expect_load_error(dir, {"no tokenizer found"});
  dir.write("tokenizer.json", "{\"model\": ");
  expect_load_error(dir, {"tokenizer.json", "not valid JSON"});

  const json good = byte_level_tokenizer({{"a", "b"}});
  auto expect_error = [&](const std::function<void(json&)>& edit, std::initializer_list<std::string> needles) {
    json j = good;
    edit(j);
    dir.write("tokenizer.json", j.dump());
    expect_load_error(dir, needles);
  };
  expect_error([](json& j) { j.erase("model"); }, {"tokenizer.json", "missing field 'model'"});
  expect_error([](json& j) { j["model"].erase("merges"); }, {"missing field 'merges'"});
  expect_error([](json& j) { j["model"]["merges"][0] = "ab"; }, {"merges[0]", "left right"});
  expect_error([](json& j) { j["model"]["merges"][0] = 7; }, {"merges[0]"});
  expect_error([](json& j) { j["model"]["merges"].push_back({"a", "zz"}); }, {"merges[1]", "'zz' is not in the vocabulary"});
  expect_error([](json& j) { j["model"]["vocab"]["q"] = "x"; }, {"vocab", "not an integer"});
  expect_error([](json& j) { j["model"]["type"] = "WordPiece"; }, {"WordPiece", "not supported"});
  expect_error([](json& j) { j["model"]["byte_fallback"] = true; }, {"byte_fallback"});
  expect_error([](json& j) { j["normalizer"] = {{"type", "Lowercase"}}; }, {"normalizer 'Lowercase' is not supported"});
  expect_error([](json& j) { j["pre_tokenizer"] = {{"type", "Whitespace"}}; }, {"'Whitespace' is not supported"});
  expect_error([](json& j) { j["decoder"] = nullptr; }, {"not a byte-level BPE"});
  expect_error(
      [](json& j) {
        j["pre_tokenizer"] = {{"type", "Sequence"},
                              {"pretokenizers",
                               {{{"type", "Split"}, {"pattern", {{"Regex", "(a"}}}, {"behavior", "Isolated"}},
                                {{"type", "ByteLevel"}, {"use_regex", false}}}}};
      },
      {"pretokenizers[0]", "does not compile"});
  expect_error([](json& j) { j["added_tokens"] = {{{"id", 300}}}; }, {"added_tokens[0]", "missing field 'content'"});
  expect_error([](json& j) { j["added_tokens"] = {{{"id", "x"}, {"content", "<x>"}}}; }, {"tokenizer.json"});
}

TEST(Malformed, Tiktoken) {
  TempDir dir;
  const std::string config = R"({"added_tokens_decoder": {"3": {"content": "<|eos|>"}}, "eos_token": "<|eos|>"})";
  auto expect_error = [&](const std::string& model, const std::string& cfg, std::initializer_list<std::string> needles) {
    dir.write("tiktoken.model", model);
    dir.write("tokenizer_config.json", cfg);
    expect_load_error(dir, needles);
  };
  expect_error("YQ== 0\n!!!! 1\n", config, {"tiktoken.model:2", "invalid base64"});
  expect_error("YQ== 0\nYg= 1\n", config, {"tiktoken.model:2", "invalid base64"});
  expect_error("YQ== 0\nYg==\n", config, {"tiktoken.model:2", "<base64 token> <rank>"});
  expect_error("YQ== 0\nYg== x\n", config, {"tiktoken.model:2", "rank 'x'"});
  expect_error("YQ== 0\nYQ== 1\n", config, {"tiktoken.model:2", "appears twice"});
  expect_error("YQ== 0\nYg== 0\n", config, {"tiktoken.model:2", "rank 0 appears twice"});
  expect_error("", config, {"no tokens"});
  expect_error("YQ== 0\nYg== 1\nYWI= 2\n", R"({"added_tokens_decoder": {"1": {"content": "<s>"}}})",
               {"special token id 1"});
  expect_error("YQ== 0\nYg== 1\nYWI= 2\n", R"({"eos_token": "<|nope|>"})", {"eos_token '<|nope|>'"});
  fs::remove(fs::path(dir.path()) / "tokenizer_config.json");
  expect_load_error(dir, {"tokenizer_config.json", "cannot open"});

  // The good version of the same files loads: "ab" is rank 2, specials follow the 3 ranks.
  dir.write("tiktoken.model", "YQ== 0\nYg== 1\nYWI= 2\n");
  dir.write("tokenizer_config.json", config);
  const auto t = Tokenizer::load(dir.path());
  EXPECT_EQ(t->encode("abab<|eos|>"), (std::vector<int32_t>{2, 2, 3}));
  EXPECT_EQ(t->eos_id(), 3);
  EXPECT_EQ(t->token_id("<|reserved_token_4|>"), 4);
  EXPECT_EQ(t->vocab_size(), 3 + tok::kKimiReservedSpecialTokens);
}
