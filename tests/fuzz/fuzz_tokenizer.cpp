// libFuzzer target: the tokenizers. For any bytes, with both fixture tokenizers (tests/golden/tokenizer):
// encode never fails, decode(encode(x)) gives back x with invalid UTF-8 repaired (both are
// byte-level and lossless), and the streaming decoder's pieces add up to decode. The same bytes as a
// pre-tokenizer pattern must translate and compile, or be refused with linfer::Error.
#include <cstddef>
#include <cstdint>
#include <string>

#include "linfer/core/error.h"
#include "linfer/tokenizer.h"
#include "tokenizer/regex.h"
#include "tokenizer/utf8.h"

namespace {

const linfer::Tokenizer& fixture(const char* name) {
  static const auto bpe = linfer::Tokenizer::load(std::string(LINFER_SOURCE_DIR) + "/tests/golden/tokenizer/bpe");
  static const auto tiktoken =
      linfer::Tokenizer::load(std::string(LINFER_SOURCE_DIR) + "/tests/golden/tokenizer/tiktoken");
  return std::string(name) == "bpe" ? *bpe : *tiktoken;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const std::string repaired = linfer::tok::utf8_repair(text);
  for (const char* name : {"bpe", "tiktoken"}) {
    const linfer::Tokenizer& tok = fixture(name);
    for (auto special : {linfer::SpecialTokens::kRecognize, linfer::SpecialTokens::kAsText}) {
      const std::vector<int32_t> ids = tok.encode(text, special);
      if (tok.decode(ids) != repaired) __builtin_trap();
      linfer::StreamDecoder stream(tok);
      std::string joined;
      for (const int32_t id : ids) joined += stream.push(id);
      joined += stream.flush();
      if (joined != repaired) __builtin_trap();
    }
  }
  try {
    linfer::tok::Regex re(linfer::tok::translate_pattern(text), "fuzz pattern");
    if (linfer::tok::utf8_is_valid(text)) re.for_each_match(text, [](size_t, size_t) {});
  } catch (const linfer::Error&) {
  }
  return 0;
}
