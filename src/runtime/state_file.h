#pragma once
// Saving and loading a sequence's state as a file for a given model: the wire format
// (runtime/state_format.h) plus the identity checks and an atomic write. Used by `linfer prefill`,
// `linfer generate --load-state` and the server.
//
//   save_state_file("chat.lstate", *model, tok.get(), state, last_logits, {.dtype = DType::BF16});
//   LoadedState l = load_state_file("chat.lstate", *model, tok.get());  // refuses other models

#include <span>
#include <string>
#include <vector>

#include "linfer/model.h"
#include "linfer/tokenizer.h"
#include "runtime/state_format.h"

namespace linfer {

// The identity a state is written with / checked against. `tok` may be null (token-id interfaces).
StateIdentity state_identity(const Model& model, const Tokenizer* tok);

// Writes path.tmp, then renames it over path: a crash never leaves a half-written state under path.
void save_state_file(const std::string& path, const Model& model, const Tokenizer* tok,
                     const SequenceState& state, std::span<const float> last_logits,
                     const StateWriteOptions& options);

struct LoadedState {
  SequenceState state;
  std::vector<float> logits;  // the last token's logits [vocab], or empty if the file has none
  StateHeader header;
};

// Which states load_state_file accepts. SameModel: only those written by this model (equal fingerprints).
// OtherWeights: also those of another checkpoint of the same architecture whose state layout matches this
// model's, e.g. a state prefilled by the bf16 model continued by its quantized copy: the user's explicit
// choice (docs/state-format.md, "Loading a state into other weights", measures what it costs).
enum class StateOrigin { SameModel, OtherWeights };

LoadedState load_state_file(const std::string& path, const Model& model, const Tokenizer* tok,
                            StateOrigin accept = StateOrigin::SameModel);

}  // namespace linfer
