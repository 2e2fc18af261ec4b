// The tokenizers against the reference libraries: tests/golden/tokenizer/ was written by
// tools/golden/make_tokenizer_fixtures.py with Hugging Face `tokenizers` (byte-level BPE) and
// `tiktoken` (same merges as ranks, Kimi's pattern). Every id, every decoded string, exactly.
// A missing fixture folder is a failure, not a skip.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "linfer/core/error.h"
#include "linfer/tokenizer.h"
#include "tokenizer/kimi_pattern.h"

using namespace linfer;
using nlohmann::json;

namespace {

const std::string kDir = std::string(LINFER_SOURCE_DIR) + "/tests/golden/tokenizer";

json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("missing fixture " + path + " (run tools/golden/make_tokenizer_fixtures.py)");
  return json::parse(in);
}

const json& cases() {
  static const json j = read_json(kDir + "/cases.json");
  return j;
}

const Tokenizer& bpe() {
  static const auto t = Tokenizer::load(kDir + "/bpe");
  return *t;
}

const Tokenizer& tiktoken() {
  static const auto t = Tokenizer::load(kDir + "/tiktoken");
  return *t;
}

std::string from_hex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  return out;
}

std::string to_hex(std::string_view bytes) {
  std::string out;
  for (const char c : bytes) out += fmt::format("{:02x}", static_cast<unsigned char>(c));
  return out;
}

// The input of a case: "text", or raw "bytes_hex" that are not valid UTF-8.
std::string input_of(const json& c) { return c.contains("text") ? c["text"].get<std::string>() : from_hex(c["bytes_hex"]); }

std::string label(const json& c) {
  const std::string s = c.contains("text") ? c["text"].get<std::string>() : "hex:" + c["bytes_hex"].get<std::string>();
  return s.substr(0, 40);
}

std::vector<int32_t> ids_of(const json& a) { return a.get<std::vector<int32_t>>(); }

}  // namespace

TEST(TokenizerGolden, FixtureIsComplete) {
  for (const char* f : {"cases.json", "bpe/tokenizer.json", "bpe/tokenizer_config.json", "tiktoken/tiktoken.model",
                        "tiktoken/tokenizer_config.json"}) {
    EXPECT_TRUE(std::filesystem::is_regular_file(kDir + "/" + f)) << "missing fixture file " << kDir << "/" << f;
  }
  EXPECT_GE(cases().at("bpe").size(), 20u);
  EXPECT_EQ(cases().at("bpe").size(), cases().at("tiktoken").size());
}

TEST(TokenizerGolden, BpeEncodesLikeHuggingFace) {
  for (const json& c : cases().at("bpe")) {
    const std::vector<int32_t> ids = bpe().encode(input_of(c));
    EXPECT_EQ(ids, ids_of(c["ids"])) << label(c);
    // Token strings as tokenizer.json writes them map to the same ids.
    const auto tokens = c["tokens"].get<std::vector<std::string>>();
    ASSERT_EQ(tokens.size(), c["ids"].size()) << label(c);
    for (size_t i = 0; i < tokens.size(); ++i) EXPECT_EQ(bpe().token_id(tokens[i]), c["ids"][i].get<int32_t>()) << tokens[i];
  }
}

TEST(TokenizerGolden, BpeDecodesLikeHuggingFace) {
  for (const json& c : cases().at("bpe")) {
    const std::vector<int32_t> ids = ids_of(c["ids"]);
    EXPECT_EQ(bpe().decode(ids), c["decoded"].get<std::string>()) << label(c);
    EXPECT_EQ(bpe().decode(ids, /*skip_special=*/true), c["decoded_skip_special"].get<std::string>()) << label(c);
  }
}

TEST(TokenizerGolden, BpeDecodeOnlyCases) {
  const json& d = cases().at("decode_only");
  ASSERT_FALSE(d.at("bpe").empty());
  for (const json& c : d.at("bpe")) {
    EXPECT_EQ(bpe().decode(ids_of(c["ids"])), c["decoded"].get<std::string>()) << c["name"];
  }
}

// Hugging Face's DecodeStream returns null until the text so far forms whole characters; linfer's
// StreamDecoder returns "" there. On these (valid-text) streams the pieces must agree one by one.
TEST(TokenizerGolden, StreamDecoderMatchesDecodeStream) {
  const json& s = cases().at("decode_only").at("stream");
  ASSERT_TRUE(s.is_object()) << "fixture lacks stream cases";
  for (const json& c : s.at("cases")) {
    StreamDecoder stream(bpe());
    const std::vector<int32_t> ids = ids_of(c["ids"]);
    for (size_t i = 0; i < ids.size(); ++i) {
      const json& step = c["steps"][i];
      EXPECT_EQ(stream.push(ids[i]), step.is_null() ? "" : step.get<std::string>()) << c["name"] << " step " << i;
    }
    EXPECT_EQ(stream.flush(), "") << c["name"];
  }
}

TEST(TokenizerGolden, TiktokenEncodesLikeTiktoken) {
  for (const json& c : cases().at("tiktoken")) {
    const std::string text = input_of(c);
    EXPECT_EQ(tiktoken().encode(text), ids_of(c["ids"])) << label(c);
    const json& ordinary = c.contains("ids_ordinary") ? c["ids_ordinary"] : c["ids"];
    EXPECT_EQ(tiktoken().encode(text, SpecialTokens::kAsText), ids_of(ordinary)) << label(c);
  }
}

TEST(TokenizerGolden, TiktokenDecodesLikeTiktoken) {
  const json& tt = cases().at("tiktoken");
  const json& hf = cases().at("bpe");  // same inputs in the same order; "decoded" is the repaired text
  ASSERT_EQ(tt.size(), hf.size());
  for (size_t i = 0; i < tt.size(); ++i) {
    const std::vector<int32_t> ids = ids_of(tt[i]["ids"]);
    std::string bytes;
    for (const int32_t id : ids) bytes += tiktoken().token_bytes(id);
    EXPECT_EQ(to_hex(bytes), tt[i]["decoded_bytes_hex"].get<std::string>()) << label(tt[i]);
    EXPECT_EQ(input_of(tt[i]), input_of(hf[i]));
    EXPECT_EQ(tiktoken().decode(ids), hf[i]["decoded"].get<std::string>()) << label(tt[i]);
  }
}

// linfer hard-codes Kimi's pattern as Kimi's own code does; the reference recorded the pattern it
// ran with. A drift on either side shows here.
TEST(TokenizerGolden, KimiPatternIsTheReferencePattern) {
  EXPECT_EQ(std::string(tok::kKimiPattern), cases().at("tiktoken_pattern").get<std::string>());
}

TEST(TokenizerGolden, SpecialTokensAndVocabulary) {
  for (const auto& [name, id] : cases().at("tiktoken_specials").items()) {
    EXPECT_EQ(tiktoken().token_id(name), id.get<int32_t>()) << name;
    EXPECT_TRUE(tiktoken().is_special(id.get<int32_t>())) << name;
  }
  const json config = read_json(kDir + "/tiktoken/tokenizer_config.json");
  EXPECT_EQ(tiktoken().eos_id(), tiktoken().token_id(config["eos_token"].get<std::string>()));

  const json tokenizer = read_json(kDir + "/bpe/tokenizer.json");
  int64_t max_id = -1;
  for (const auto& [token, id] : tokenizer["model"]["vocab"].items()) {
    EXPECT_EQ(bpe().token_id(token), id.get<int32_t>());
    max_id = std::max<int64_t>(max_id, id.get<int64_t>());
  }
  for (const json& added : tokenizer["added_tokens"]) {
    EXPECT_EQ(bpe().token_id(added["content"].get<std::string>()), added["id"].get<int32_t>());
    EXPECT_EQ(bpe().is_special(added["id"]), added["special"].get<bool>());
    max_id = std::max<int64_t>(max_id, added["id"].get<int64_t>());
  }
  EXPECT_EQ(bpe().vocab_size(), max_id + 1);
  const json bpe_config = read_json(kDir + "/bpe/tokenizer_config.json");
  EXPECT_EQ(bpe().eos_id(), bpe().token_id(bpe_config["eos_token"].get<std::string>()));
}

TEST(TokenizerGolden, FingerprintsAreStableAndDistinct) {
  EXPECT_EQ(Tokenizer::load(kDir + "/bpe")->fingerprint(), bpe().fingerprint());
  EXPECT_NE(bpe().fingerprint(), tiktoken().fingerprint());
}
