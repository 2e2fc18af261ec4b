#pragma once
// What a loaded tokenizer is, whichever file it came from. The loaders (load_hf.cpp,
// load_tiktoken.cpp) fill it; tokenizer.cpp runs it:
//   text -> repair UTF-8 -> raw added tokens | normalize -> normalized added tokens
//        -> pre-tokenize -> BPE per word (cached per call) -> ids.

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "linfer/tokenizer.h"
#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pre_tokenizer.h"

namespace linfer {

struct Tokenizer::Impl {
  std::string source;                    // file it came from, for messages
  tok::Normalization normalization = tok::Normalization::kNone;
  std::vector<tok::AddedToken> added;    // every added / special token
  tok::AddedTokenMatcher raw_matcher;    // added tokens matched in the text as given
  tok::AddedTokenMatcher normalized_matcher;  // ... and in the normalized text
  tok::PreTokenizer pre_tokenizer;
  tok::BpeModel bpe;
  std::vector<std::string> id_bytes;     // [vocab_size] what decode emits for each id
  std::vector<bool> id_used;             // [vocab_size] false for holes in the id range
  std::vector<bool> id_special;          // [vocab_size] special tokens (dropped by skip_special)
  std::unordered_map<std::string, int32_t> token_ids;  // token string (as the file writes it) -> id
  int32_t eos = -1;
  std::string fingerprint;

  // Splits `added` into the two matchers and computes the fingerprint; loaders call it last.
  void finish(std::string_view kind);
};

namespace tok {
std::unique_ptr<Tokenizer::Impl> load_hf_tokenizer(const std::string& tokenizer_json,
                                                   const std::string& tokenizer_config);
std::unique_ptr<Tokenizer::Impl> load_tiktoken(const std::string& tiktoken_model, const std::string& tokenizer_config);
// tokenizer.ggml.* of a GGUF file (load_gguf.cpp).
std::unique_ptr<Tokenizer::Impl> load_gguf_tokenizer(const std::string& gguf_path);
// eos token id named by tokenizer_config.json ("eos_token": "..." or {"content": ...}); -1 if the
// file is missing or names none.
int32_t config_eos_id(const std::string& tokenizer_config, const Tokenizer::Impl& impl);
}  // namespace tok

}  // namespace linfer
