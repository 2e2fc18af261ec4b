#pragma once
// A loaded model: weights (mmap'd, as stored) plus its architecture, built from the checkpoint's
// own config.json. Immutable after load and safe to share across threads; all per-sequence data
// lives in SequenceState.
//
//   auto model = linfer::Model::load("path/to/hf-folder");
//   linfer::SequenceState s(model->state_spec());
//   std::vector<int32_t> ids = {5, 17, 42};
//   std::vector<float> logits(model->info().vocab_size);
//   model->forward(linfer::Batch::single(ids), {&s}, logits.data(), linfer::Logits::Last);

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "linfer/core/function_ref.h"
#include "linfer/device.h"
#include "linfer/state.h"
#include "linfer/state_slots.h"

namespace linfer {

// Tokens of several sequences, packed: sequence i owns tokens[offsets[i] .. offsets[i+1]).
struct Batch {
  std::span<const int32_t> tokens;
  std::vector<int64_t> offsets;  // n_seqs + 1 entries, offsets[0] == 0

  static Batch single(std::span<const int32_t> ids) { return {ids, {0, int64_t(ids.size())}}; }
  int n_seqs() const { return int(offsets.size()) - 1; }
};

enum class Logits {
  None,  // advance the states only
  Last,  // one row per sequence: [n_seqs, vocab]
  All,   // one row per token:    [n_tokens, vocab]
};

struct ModelInfo {
  std::string architecture;         // config.json model_type: "kimi_linear", "qwen3_next", "mamba2"
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t n_params = 0;
  std::vector<std::string> layers;  // one entry per layer, e.g. "kda+moe", "mla+dense"
  int64_t eos_token_id = -1;
  int64_t bos_token_id = -1;
};

class Model {
 public:
  virtual ~Model() = default;
  // Loads config.json + model.safetensors (or sharded with model.safetensors.index.json) from dir, with
  // its weights on `device`. Throws linfer::Error naming the file / tensor / field on any problem, and
  // for a device that linfer was built without, that is missing, or that does not run one of the
  // model's layers yet (naming the layer and the op).
  static std::shared_ptr<const Model> load(const std::string& dir, Device device = Device::Cpu);

  virtual const ModelInfo& info() const = 0;
  virtual const StateSpec& state_spec() const = 0;
  // Architecture + weights hash: a state written by one model is refused by another.
  virtual const std::string& fingerprint() const = 0;
  virtual const std::string& dir() const = 0;

  // Runs every sequence's tokens through the model, advancing states[i] (one per sequence).
  // Sequences of one token use the recurrent (step) path; longer ones the chunked prefill path.
  // logits: see Logits; may be null for Logits::None.
  //
  // Failure leaves every state as it was. Before any state changes, forward checks the whole call
  // and throws linfer::Error naming the sequence / state at fault: at least one sequence, one state
  // per sequence, offsets rising from 0 to the token count with at least one token per sequence,
  // every token id in [0, vocab_size), a logits buffer unless Logits::None, every state non-null,
  // made from this model's state_spec() (same tensors, shapes and layouts) and given only once; then
  // it reserves room for the call's rows in every Growing (KV) tensor (out of memory there is an
  // Error too). Past that point only running out of memory for scratch buffers (std::bad_alloc) or a
  // failed LINFER_DUMP file write can interrupt a call, and those may leave states part-advanced:
  // keep a copy of a state (SequenceState is a value) where that must be recoverable.
  virtual void forward(const Batch& batch, std::span<SequenceState* const> states, float* logits,
                       Logits mode) const = 0;

  // forward(), calling on_layer(l) on the calling thread as soon as layer l's mixer has run over
  // every token of the call: from then on layer l's state tensors (every sequence's) are final,
  // while later layers still compute (the states' n_tokens advance only after the last layer). A
  // caller can ship layer l's state while layer l + 1 runs (runtime/prefill_stream.h); it may read
  // layer l's tensors from another thread but must change nothing. On a device, layer l's tensors
  // (its caches' new rows) are copied into the host states when the layer is done, before on_layer(l).
  // The default runs forward() and then reports every layer.
  virtual void forward_layerwise(const Batch& batch, std::span<SequenceState* const> states, float* logits,
                                 Logits mode, FunctionRef<void(int layer)> on_layer) const;

  // Where the weights live and forward runs. On a device, forward() above copies each state in and out
  // of device memory around the call; the slot API below keeps states there between calls.
  virtual Device device() const { return Device::Cpu; }
  // A pool of n empty states on this model's device (linfer/state_slots.h). The default: host states.
  virtual std::unique_ptr<StateSlots> make_slots(int n) const;
  // forward() on states that live in `slots` (made by this model's make_slots): sequence i advances
  // slots[i], which must be distinct and in range. Same contract as forward() otherwise.
  virtual void forward_slots(const Batch& batch, StateSlots& pool, std::span<const int32_t> slots, float* logits,
                             Logits mode) const;
};

}  // namespace linfer
