// A tokenizer from a GGUF file's tokenizer.ggml.* metadata, as llama.cpp's converter writes it for
// byte-level BPE tokenizers (tokenizer.ggml.model "gpt2"):
//   tokens      every id's token, in id order; NORMAL tokens in the byte-level alphabet (as in
//               tokenizer.json's vocab), CONTROL / USER_DEFINED tokens as their plain text;
//   token_type  1 NORMAL, 2 UNKNOWN, 3 CONTROL, 4 USER_DEFINED, 5 UNUSED (padding ids), 6 BYTE;
//   merges      "left right" in rank order, as tokenizer.json's merges;
//   pre         the pre-tokenizer by name: the converter recognises a tokenizer and writes its name,
//               the regex itself is not in the file. linfer knows the names of the tokenizers the
//               supported architectures ship: "qwen2" (Qwen3-Next), "kimi-k2" (Kimi Linear), and GPT-2's
//               ("gpt-2", "default", "olmo": GPT-NeoX-style tokenizers, which Mamba2 checkpoints use).
// CONTROL and UNKNOWN tokens are special added tokens, USER_DEFINED ones non-special added tokens:
// both are found in the text before pre-tokenization, as their raw text. No Unicode normalization
// is applied (the file records none; Qwen's tokenizer.json applies NFC, so text that is not in NFC
// may tokenize differently from it).
// SentencePiece ("llama"), WordPiece ("bert"), Unigram ("t5") and RWKV vocabularies are refused.

#include <string_view>

#include "io/gguf.h"
#include "linfer/core/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/kimi_pattern.h"
#include "tokenizer/tokenizer_impl.h"

namespace linfer::tok {
namespace {

// Qwen2's pre-tokenizer pattern (its tokenizer.json Split regex), which "qwen2" names.
constexpr std::string_view kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

enum TokenType : int64_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

void set_pre_tokenizer(const std::string& pre, const std::string& path, Tokenizer::Impl& impl) {
  PreTokenizeStep step;
  if (pre == "qwen2") {
    step.regex = std::make_shared<Regex>(translate_pattern(kQwen2Pattern), path + ": qwen2 pre-tokenizer");
  } else if (pre == "kimi-k2") {
    step.regex = std::make_shared<Regex>(translate_pattern(kKimiPattern), path + ": kimi-k2 pre-tokenizer");
    impl.bpe.ignore_merges = true;  // tiktoken: a piece that is a whole token is emitted as is
  } else if (pre == "gpt-2" || pre == "default" || pre == "olmo") {
    step.regex = std::make_shared<Regex>(translate_pattern(kGpt2Pattern), path + ": gpt-2 pre-tokenizer");
  } else {
    fail("{}: tokenizer.ggml.pre '{}' is not supported (linfer knows qwen2, kimi-k2, gpt-2, default, olmo)", path, pre);
  }
  impl.pre_tokenizer.steps.push_back(std::move(step));
}

}  // namespace

std::unique_ptr<Tokenizer::Impl> load_gguf_tokenizer(const std::string& path) {
  const GgufFile file(path);
  const GgufHeader& h = file.header();
  const std::string model = h.opt_string("tokenizer.ggml.model").value_or("");
  LINFER_CHECK(!model.empty(), "{}: no tokenizer in this GGUF file (tokenizer.ggml.model is missing)", path);
  LINFER_CHECK(model == "gpt2", "{}: tokenizer.ggml.model '{}' ({}) is not supported: linfer reads byte-level BPE "
               "tokenizers ('gpt2')", path, model,
               model == "llama" ? "SentencePiece" : model == "bert" ? "WordPiece" : model == "t5" ? "Unigram" : "not BPE");
  auto impl = std::make_unique<Tokenizer::Impl>();
  impl->source = path;
  set_pre_tokenizer(h.opt_string("tokenizer.ggml.pre").value_or("default"), path, *impl);

  const GgufValue& tokens = h.get_array("tokenizer.ggml.tokens", GgufType::String);
  const size_t n = tokens.items.size();
  LINFER_CHECK(n > 0 && n < (size_t{1} << 31), "{}: tokenizer.ggml.tokens has {} tokens", path, n);
  std::vector<int64_t> types(n, kNormal);
  if (h.find("tokenizer.ggml.token_type")) {
    const GgufValue& t = h.get_array("tokenizer.ggml.token_type", GgufType::I32);
    LINFER_CHECK(t.items.size() == n, "{}: tokenizer.ggml.token_type has {} entries for {} tokens", path,
                 t.items.size(), n);
    for (size_t i = 0; i < n; ++i) types[i] = t.items[i].i;
  }
  impl->id_bytes.resize(n);
  impl->id_used.resize(n);
  impl->id_special.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const std::string& token = tokens.items[i].str;
    const auto id = static_cast<int32_t>(i);
    switch (types[i]) {
      case kUnused: continue;  // padding ids: no text, never produced
      case kNormal: case kByte:
        impl->id_bytes[i] = byte_level_decode(token);
        if (auto bytes = byte_level_to_bytes(token)) impl->bpe.words[std::move(*bytes)] = id;
        break;
      case kControl: case kUnknown: case kUserDefined: {
        LINFER_CHECK(!token.empty(), "{}: token {} (an added token) is empty", path, i);
        AddedToken t;
        t.id = id;
        t.content = token;
        t.special = types[i] != kUserDefined;
        impl->id_bytes[i] = token;
        impl->id_special[i] = t.special;
        impl->added.push_back(std::move(t));
        break;
      }
      default: fail("{}: token {} has type {} (expected 1..6)", path, i, types[i]);
    }
    impl->id_used[i] = true;
    impl->token_ids.emplace(token, id);
  }
  impl->bpe.index_bytes();

  if (h.find("tokenizer.ggml.merges")) {
    const GgufValue& merges = h.get_array("tokenizer.ggml.merges", GgufType::String);
    auto id_of = [&](const std::string& token, size_t rank) {
      auto it = impl->token_ids.find(token);
      LINFER_CHECK(it != impl->token_ids.end(), "{}: tokenizer.ggml.merges[{}]: token '{}' is not in the vocabulary",
                   path, rank, token);
      return it->second;
    };
    for (size_t rank = 0; rank < merges.items.size(); ++rank) {
      const std::string& s = merges.items[rank].str;
      const size_t space = s.find(' ');
      LINFER_CHECK(space != std::string::npos && s.find(' ', space + 1) == std::string::npos,
                   "{}: tokenizer.ggml.merges[{}]: expected \"left right\", found \"{}\"", path, rank, s);
      const std::string a = s.substr(0, space), b = s.substr(space + 1);
      impl->bpe.merges.set(BpeModel::pair_key(id_of(a, rank), id_of(b, rank)),
                           {static_cast<int32_t>(rank), id_of(a + b, rank)});
    }
  }
  if (auto eos = h.opt_int("tokenizer.ggml.eos_token_id")) {
    LINFER_CHECK(*eos >= 0 && size_t(*eos) < n, "{}: tokenizer.ggml.eos_token_id {} is not a token id", path, *eos);
    impl->eos = static_cast<int32_t>(*eos);
  }
  impl->finish("bpe");
  return impl;
}

}  // namespace linfer::tok
