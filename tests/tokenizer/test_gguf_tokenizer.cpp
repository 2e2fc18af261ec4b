// A tokenizer read from GGUF metadata (tokenizer.ggml.*) against Hugging Face tokenizers' own output.
// The GGUF is written here from the golden fixture's tokenizer.json the way llama.cpp's converter
// writes a byte-level BPE vocabulary (its _set_vocab_gpt2: every id's token in id order, ids without
// a token as "[PAD<id>]" UNUSED, added tokens as their text, CONTROL when special and USER_DEFINED
// otherwise, the rest NORMAL; merges as "left right"; the pre-tokenizer by name, "qwen2" for this
// Qwen2-pattern tokenizer). Encoding and decoding every golden case must give the ids and text
// Hugging Face gave (tests/golden/tokenizer/cases.json).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "../gguf_writer.h"
#include "linfer/core/error.h"
#include "linfer/tokenizer.h"

using linfer::Tokenizer;
using linfer::test::GgufWriter;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string kDir = std::string(LINFER_SOURCE_DIR) + "/tests/golden/tokenizer";

json read_json(const std::string& path) {
  std::ifstream in(path);
  return json::parse(in);
}

// tokenizer.json -> the GGUF metadata the converter writes for it.
GgufWriter gguf_of(const json& tj, const std::string& pre, const std::string& model = "gpt2") {
  std::map<int64_t, std::pair<std::string, int32_t>> by_id;  // id -> (token, type)
  for (const auto& [token, id] : tj["model"]["vocab"].items()) by_id[id.get<int64_t>()] = {token, 1};
  for (const auto& t : tj["added_tokens"])
    by_id[t["id"].get<int64_t>()] = {t["content"].get<std::string>(), t["special"].get<bool>() ? 3 : 4};
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  for (int64_t id = 0; id <= by_id.rbegin()->first; ++id) {
    auto it = by_id.find(id);
    tokens.push_back(it == by_id.end() ? "[PAD" + std::to_string(id) + "]" : it->second.first);
    types.push_back(it == by_id.end() ? 5 : it->second.second);
  }
  std::vector<std::string> merges;
  for (const auto& m : tj["model"]["merges"])
    merges.push_back(m.is_string() ? m.get<std::string>() : m[0].get<std::string>() + " " + m[1].get<std::string>());
  GgufWriter w;
  w.kv_string("general.architecture", "qwen3next");
  w.kv_string("tokenizer.ggml.model", model);
  w.kv_string("tokenizer.ggml.pre", pre);
  w.kv_strings("tokenizer.ggml.tokens", tokens);
  w.kv_i32s("tokenizer.ggml.token_type", types);
  w.kv_strings("tokenizer.ggml.merges", merges);
  w.kv_u32("tokenizer.ggml.eos_token_id", 0);
  return w;
}

std::string write(const GgufWriter& w, const std::string& name) {
  const std::string path = (fs::temp_directory_path() / name).string();
  std::ofstream(path, std::ios::binary) << w.build();
  return path;
}

std::string from_hex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  return out;
}

std::string input_of(const json& c) { return c.contains("text") ? c["text"].get<std::string>() : from_hex(c["bytes_hex"]); }

TEST(GgufTokenizer, EncodesAndDecodesLikeHuggingFace) {
  const json tj = read_json(kDir + "/bpe/tokenizer.json");
  const std::string path = write(gguf_of(tj, "qwen2"), "linfer_tok_qwen2.gguf");
  const auto tok = Tokenizer::load(path);
  const auto hf = Tokenizer::load(kDir + "/bpe");
  EXPECT_EQ(tok->vocab_size(), hf->vocab_size());
  EXPECT_EQ(tok->eos_id(), 0);
  const json cases = read_json(kDir + "/cases.json");
  ASSERT_GE(cases.at("bpe").size(), 20u);
  for (const json& c : cases.at("bpe")) {
    const std::string text = input_of(c);
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(tok->encode(text), ids) << text.substr(0, 40);
    EXPECT_EQ(tok->decode(ids), c["decoded"].get<std::string>()) << text.substr(0, 40);
    EXPECT_EQ(tok->decode(ids, /*skip_special=*/true), c["decoded_skip_special"].get<std::string>()) << text.substr(0, 40);
    EXPECT_EQ(tok->encode(text, linfer::SpecialTokens::kAsText), hf->encode(text, linfer::SpecialTokens::kAsText))
        << text.substr(0, 40);
  }
  fs::remove(path);
}

TEST(GgufTokenizer, UnsupportedKindsAreRefusedByName) {
  const json tj = read_json(kDir + "/bpe/tokenizer.json");
  auto error_of = [](const std::string& path) {
    try {
      Tokenizer::load(path);
    } catch (const linfer::Error& e) {
      fs::remove(path);
      return std::string(e.what());
    }
    fs::remove(path);
    return std::string("loaded");
  };
  std::string msg = error_of(write(gguf_of(tj, "default", "llama"), "linfer_tok_spm.gguf"));
  EXPECT_NE(msg.find("tokenizer.ggml.model 'llama' (SentencePiece) is not supported"), std::string::npos) << msg;
  msg = error_of(write(gguf_of(tj, "deepseek-llm"), "linfer_tok_pre.gguf"));
  EXPECT_NE(msg.find("tokenizer.ggml.pre 'deepseek-llm' is not supported"), std::string::npos) << msg;
  GgufWriter none;
  none.kv_string("general.architecture", "mamba2");
  msg = error_of(write(none, "linfer_tok_none.gguf"));
  EXPECT_NE(msg.find("no tokenizer in this GGUF file"), std::string::npos) << msg;
}

}  // namespace
