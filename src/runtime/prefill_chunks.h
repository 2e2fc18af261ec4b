#pragma once
// One sequence's prompt run through the model in micro-batches ("ubatches") of at most `ubatch` tokens,
// each continuing the state the one before left (as decode does), so the activations ([n, hidden] per
// buffer), the MoE's per-expert rows and the attention scratch are sized by the ubatch, not by the prompt.
// What still grows with the prompt: attention's KV / latent cache, Logits::All's output, and the scratch
// of MLA's expanded form, which rebuilds K / V of the whole cache in each call (docs/benchmarks.md,
// "Prompts in micro-batches of 512").
// The CLI's prefills (generate, logits, prefill, eval, bench) run here; the server cuts prompts itself
// (runtime/scheduler.h, prompt_chunk).
//
//   auto slots = model->make_slots(1);
//   std::vector<float> last(size_t(model->info().vocab_size));
//   forward_chunked(*model, prompt, *slots, 0, last.data(), Logits::Last, 512);
//
// Results equal one pass up to float32 rounding, not bit for bit: a chunk boundary moves the blocks of
// the chunked kernels (the delta rule's, Mamba2's SSD), a 1-token chunk runs the step (decode) kernels,
// and Kimi's MLA may take its absorbed form for a short chunk over a long cache
// (tests/runtime/test_prefill_chunks.cpp measures the difference on every golden fixture).
//
// Logits: All fills [ids.size(), vocab] as one pass would; Last the last token's row (earlier chunks
// compute no logits); None none. Every id is checked against the vocabulary before the first chunk, so
// bad input changes no state; past that, a chunk that fails (out of memory) leaves the state advanced
// by the chunks before it. Thread-safety: as Model::forward (the model is shared, the state is not).

#include <cstdint>
#include <span>

#include "linfer/device.h"
#include "linfer/model.h"

namespace linfer {

// The CLI's default: llama.cpp's ubatch. The GPU keeps one pass (its chunked prefill kernels want the
// whole prompt, and its memory is not the limit at these lengths).
inline constexpr int64_t kDefaultUbatchCpu = 512;
inline int64_t default_ubatch(Device device) { return device == Device::Cpu ? kDefaultUbatchCpu : 0; }

// Throws linfer::Error naming the first id of `ids` outside [0, vocab): what Model::forward checks, for
// callers that split a prompt into several forward calls and must refuse it before the first one.
void check_token_ids(std::span<const int32_t> ids, int64_t vocab);

// Advances `state` by `ids` in chunks of at most `ubatch` tokens (0, or >= ids.size(): one forward call).
void forward_chunked(const Model& model, std::span<const int32_t> ids, SequenceState& state, float* logits,
                     Logits mode, int64_t ubatch);
// The same on a state slot (model.make_slots), where the state stays on the model's device between chunks.
void forward_chunked(const Model& model, std::span<const int32_t> ids, StateSlots& slots, int32_t slot,
                     float* logits, Logits mode, int64_t ubatch);

}  // namespace linfer
