#pragma once
// Pre-tokenization: cutting normalized text into words before BPE, as a sequence of steps each
// applied to every piece the previous steps produced (Hugging Face's pre_tokenizers.Sequence).
//   Split:     a regex, with what happens to the matches (Hugging Face's SplitDelimiterBehavior);
//   ByteLevel: optional leading space, then the GPT-2 regex (use_regex). Mapping bytes to the
//              byte-level alphabet is not needed here: BPE works on raw bytes.

#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/regex.h"

namespace linfer::tok {

// GPT-2's pattern, as the ByteLevel pre-tokenizer hard-codes it (before translate_pattern()).
inline constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

enum class SplitBehavior { kIsolated, kRemoved, kMergedWithPrevious, kMergedWithNext, kContiguous };

struct PreTokenizeStep {
  std::shared_ptr<const Regex> regex;  // null: the step does not split
  SplitBehavior behavior = SplitBehavior::kIsolated;
  bool invert = false;                 // the pieces between matches are the "matches"
  bool add_prefix_space = false;       // prepend ' ' to a piece that does not start with one
};

class PreTokenizer {
 public:
  std::vector<PreTokenizeStep> steps;

  // Replaces `pieces` by their pre-tokenized words, in order. Words point into the input pieces or
  // into strings added to `arena` (kept alive by the caller).
  void run(std::vector<std::string_view>& pieces, std::deque<std::string>& arena) const;
};

}  // namespace linfer::tok
