#pragma once
// What one generated sequence (one choice of a request) has produced, and when it must stop: the ids,
// the text decoded incrementally (StreamDecoder; special tokens are left out of the text, as
// Hugging Face's skip_special_tokens), stop strings (StopMatcher), end of sequence, min_tokens and
// max_tokens. The engine samples; this decides what the client sees.
//
//   SequenceOutput out(tok, {.max_tokens = 16, .eos = tok->eos_id(), .stop = {"\n"}});
//   auto step = out.push(id);        // step.text: new visible text; step.finish: why it ended, if it did
//   if (out.eos_banned()) ...        // before min_tokens: the engine masks EOS before sampling
//
// Thread-safety: one per sequence.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "linfer/tokenizer.h"
#include "runtime/stop_matcher.h"

namespace linfer {

enum class FinishReason { Stop, Length, Cancelled, Error };
const char* finish_reason_name(FinishReason r);  // "stop", "length", "cancelled", "error"

struct StopRules {
  int64_t max_tokens = 16;         // >= 0
  int64_t min_tokens = 0;          // the first min_tokens tokens are never EOS (the engine masks it)
                                   // and stop strings count only from the min_tokens-th token on
  int32_t eos = -1;                // -1: none
  bool ignore_eos = false;         // EOS is an ordinary token
  std::vector<std::string> stop;   // stop strings (needs a tokenizer)
};

class SequenceOutput {
 public:
  SequenceOutput(const Tokenizer* tok, StopRules rules);  // tok may be null: no text

  struct Step {
    std::string text;                   // newly visible text (may be empty while held back)
    std::optional<FinishReason> finish;
  };
  Step push(int32_t id);                // one generated token
  Step finish(FinishReason why);        // ends it for a reason from outside (cancel, error)

  bool finished() const { return finish_.has_value(); }
  std::optional<FinishReason> finish_reason() const { return finish_; }
  bool eos_banned() const { return rules_.eos >= 0 && !rules_.ignore_eos && n_generated() < rules_.min_tokens; }
  int32_t eos() const { return rules_.eos; }
  int64_t n_generated() const { return int64_t(ids_.size()); }
  const std::vector<int32_t>& ids() const { return ids_; }
  const std::string& text() const { return text_; }  // everything visible so far

 private:
  std::string close_text();  // flush decoder and matcher at a finish

  const Tokenizer* tok_;
  StopRules rules_;
  std::unique_ptr<StreamDecoder> decoder_;
  StopMatcher matcher_;
  std::vector<int32_t> ids_;
  std::string text_;
  std::optional<FinishReason> finish_;
};

}  // namespace linfer
