#pragma once
// Text in, text out: byte-level BPE tokenizers.
//
// Three on-disk formats load into one Tokenizer:
//   - Hugging Face tokenizer.json with a byte-level BPE model (GPT-2 / Qwen family);
//   - tiktoken.model (+ tokenizer_config.json for the special tokens), as Kimi models ship it, with
//     Kimi's pre-tokenizer pattern;
//   - a GGUF file's tokenizer.ggml.* metadata with a byte-level BPE ("gpt2") vocabulary.
// See docs/tokenizers.md for what is supported and how it is checked.
//
//   auto tok = linfer::Tokenizer::load("models/demo");          // throws linfer::Error on bad files
//   std::vector<int32_t> ids = tok->encode("ROMEO: hello<|endoftext|>");
//   std::string text = tok->decode(ids);
//   linfer::StreamDecoder stream(*tok);
//   for (int32_t id : ids) fputs(stream.push(id).c_str(), stdout);   // never half a character
//   fputs(stream.flush().c_str(), stdout);
//
// Thread safety: a loaded Tokenizer is immutable; all const methods may be called from many threads
// at once. A StreamDecoder belongs to one stream (one thread at a time).

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace linfer {

// Whether special tokens written in the text become their ids. Text from an untrusted user should
// be encoded kAsText, so that typing "<|im_end|>" cannot end a chat turn.
enum class SpecialTokens {
  kRecognize,  // every added token in the text maps to its id
  kAsText,     // tokens marked special are tokenized as ordinary text (Hugging Face:
               // encode_special_tokens; tiktoken: encode_ordinary); non-special added tokens still match
};

class Tokenizer {
 public:
  // model_dir holds tokenizer.json, or tiktoken.model + tokenizer_config.json, or is a .gguf file. Throws linfer::Error
  // when neither is there or a file is malformed / uses a feature this tokenizer does not support.
  static std::unique_ptr<Tokenizer> load(const std::string& model_dir);
  ~Tokenizer();

  // Invalid UTF-8 in `text` is first replaced by U+FFFD (as Python's bytes.decode(errors="replace")).
  // No BOS/EOS is added.
  std::vector<int32_t> encode(std::string_view text, SpecialTokens special = SpecialTokens::kRecognize) const;
  // Concatenated token bytes, invalid UTF-8 replaced by U+FFFD (as Hugging Face / tiktoken decode).
  // skip_special drops the ids of special tokens. Throws linfer::Error for ids outside
  // [0, vocab_size()).
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;
  // The raw bytes of one token (may be part of a UTF-8 character); empty for an unused id. Throws
  // linfer::Error for ids outside [0, vocab_size()).
  std::string_view token_bytes(int32_t id) const;
  bool is_special(int32_t id) const;

  // Id of a token given its vocabulary string (tokenizer.json: as written in "vocab" / added_tokens,
  // e.g. "Ġthe", "<|endoftext|>"; tiktoken: its raw bytes or special-token name); -1 if unknown.
  int32_t token_id(std::string_view token) const;
  // One past the largest id (base vocabulary + added / special tokens).
  int64_t vocab_size() const;
  // End-of-sequence id from tokenizer_config.json's "eos_token" (or -1 when not given).
  int32_t eos_id() const;
  // Hex hash of everything that decides encode/decode: pattern(s), normalizer, token bytes, merges /
  // ranks, added tokens. Two tokenizers with equal fingerprints tokenize identically.
  const std::string& fingerprint() const;

  struct Impl;  // src/tokenizer/tokenizer_impl.h
  explicit Tokenizer(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

// Incremental decoding for streaming output: push ids one at a time and get the text that became
// complete. The concatenation of everything returned (including flush()) equals decode(all ids), and
// every returned piece is valid UTF-8: bytes of an unfinished character are held back until it
// completes (or turn into U+FFFD once it cannot complete).
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer);
  std::string push(int32_t id);
  // Whatever is still held back (an unfinished character becomes U+FFFD); the decoder is then empty.
  std::string flush();

 private:
  const Tokenizer& tokenizer_;
  std::string pending_;  // bytes of a possibly unfinished UTF-8 character
};

}  // namespace linfer
