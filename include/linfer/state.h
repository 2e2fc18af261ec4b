#pragma once
// A sequence's state: every layer's tensors plus the token count. Separate from the model (which is
// immutable and shared); one SequenceState per sequence, owned by the caller. Copying it is a
// snapshot; a copy continues exactly like the original.
//
//   StateSpec spec = model->state_spec();
//   SequenceState s(spec);                 // empty sequence: recurrent tensors zero, KV empty
//   model->forward(batch, {&s}, logits);   // advances s
//   SequenceState snap = s;                // snapshot; `s = snap` restores
//
// Thread-safety: a SequenceState is a plain value; use one from one thread at a time.

#include <cstdint>
#include <string>
#include <vector>

#include "linfer/core/aligned.h"
#include "linfer/core/tensor.h"

namespace linfer {

enum class StateKind : uint8_t {
  Fixed = 0,    // constant size: recurrent matrices, conv windows
  Growing = 1,  // one row per token: the KV / latent cache of full-attention layers
  Ring = 2,     // the last `capacity` rows: the KV of sliding-window layers
};

struct StateTensorSpec {
  int layer = 0;
  std::string name;    // role within the layer, e.g. "kda.S", "conv.q", "mla.latent"
  StateKind kind = StateKind::Fixed;
  Shape shape;         // Fixed: the whole tensor; Growing / Ring: one token's row
  int64_t capacity = 0;  // Ring only: rows kept
  std::string layout;  // e.g. "[HV, V, K] v-major" — recorded in the wire format, checked on load
};

struct StateSpec {
  std::vector<StateTensorSpec> tensors;
};

class SequenceState {
 public:
  SequenceState() = default;
  explicit SequenceState(const StateSpec& spec);

  const StateSpec& spec() const { return spec_; }
  int64_t n_tokens() const { return n_tokens_; }
  void set_n_tokens(int64_t n) { n_tokens_ = n; }
  size_t n_tensors() const { return data_.size(); }

  // Float32 storage of tensor i. Fixed: shape(); Growing: rows() rows; Ring: capacity rows, row of
  // token t at (t % capacity).
  float* data(size_t i) { return data_[i].data(); }
  const float* data(size_t i) const { return data_[i].data(); }
  int64_t row_elems(size_t i) const;     // elements of one row (Growing / Ring) or of the whole tensor
  int64_t rows(size_t i) const;          // Growing: rows stored; Ring: min(n_tokens, capacity); Fixed: 1
  Shape shape(size_t i) const;           // current shape (Growing: [rows, row...])
  // Growing tensors: make room for `n` more rows (amortised); returns the first new row.
  float* append_rows(size_t i, int64_t n);
  // Growing tensors: make sure `n` more rows fit without reallocating (contents unchanged), so the
  // next append_rows(i, <= n) cannot fail. Throws std::bad_alloc when memory runs out.
  void reserve_rows(size_t i, int64_t n);
  size_t bytes() const;                  // float32 bytes held now

  void reset();                          // back to an empty sequence

 private:
  StateSpec spec_;
  std::vector<AlignedVector<float>> data_;
  std::vector<int64_t> growing_rows_;    // rows in use per Growing tensor
  int64_t n_tokens_ = 0;
};

}  // namespace linfer
