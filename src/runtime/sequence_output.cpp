#include "runtime/sequence_output.h"

#include "linfer/core/error.h"

namespace linfer {

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::Stop: return "stop";
    case FinishReason::Length: return "length";
    case FinishReason::Cancelled: return "cancelled";
    case FinishReason::Error: return "error";
  }
  return "?";
}

SequenceOutput::SequenceOutput(const Tokenizer* tok, StopRules rules)
    : tok_(tok), rules_(std::move(rules)), matcher_(rules_.stop) {
  LINFER_CHECK(tok_ || rules_.stop.empty(), "stop strings need the model's tokenizer");
  if (tok_) decoder_ = std::make_unique<StreamDecoder>(*tok_);
}

SequenceOutput::Step SequenceOutput::push(int32_t id) {
  LINFER_CHECK(!finished(), "SequenceOutput: a token after the sequence finished");
  ids_.push_back(id);
  const bool can_stop = n_generated() >= rules_.min_tokens;  // vLLM: stops count from min_tokens on
  Step step;
  if (id == rules_.eos && !rules_.ignore_eos && can_stop) {
    finish_ = FinishReason::Stop;
    step.text = close_text();
  } else {
    std::string piece;
    if (decoder_ && !tok_->is_special(id)) piece = decoder_->push(id);
    if (can_stop) {
      step.text = matcher_.push(piece);
      if (matcher_.stopped()) finish_ = FinishReason::Stop;
    } else {
      // Before min_tokens a stop string does not count; text passes through the matcher's buffer
      // unchanged so nothing is reordered.
      step.text = matcher_.flush() + piece;
    }
    if (!finished() && n_generated() >= rules_.max_tokens) {
      finish_ = FinishReason::Length;
      step.text += close_text();
    }
  }
  step.finish = finish_;
  text_ += step.text;
  return step;
}

SequenceOutput::Step SequenceOutput::finish(FinishReason why) {
  Step step;
  if (finished()) return step;
  finish_ = why;
  step.text = close_text();
  step.finish = finish_;
  text_ += step.text;
  return step;
}

std::string SequenceOutput::close_text() {
  if (!decoder_ || matcher_.stopped()) return {};
  std::string out = matcher_.push(decoder_->flush());
  return out + matcher_.flush();  // nothing more if the tail completed a stop string
}

}  // namespace linfer
