#pragma once
// Text normalization before pre-tokenization. Only Unicode NFC is supported (Qwen's tokenizer.json
// uses it); loading a tokenizer with any other normalizer fails.

#include <string>
#include <string_view>

namespace linfer::tok {

enum class Normalization { kNone, kNfc };

// `text` (valid UTF-8) in the given form.
std::string normalize(Normalization form, std::string_view text);

}  // namespace linfer::tok
