// SequenceState: one float32 buffer per state tensor. Fixed and Ring tensors are allocated whole at
// construction; Growing tensors (attention KV) grow by doubling so appending one token per decode
// step costs amortised O(row).

#include <algorithm>

#include "linfer/core/error.h"
#include "linfer/state.h"

namespace linfer {

namespace {

int64_t checked_elems(const StateTensorSpec& t) {
  int64_t n = 1;
  for (int64_t d : t.shape) {
    LINFER_CHECK(d >= 0 && !__builtin_mul_overflow(n, d, &n), "state tensor '{}' of layer {}: bad shape {}",
                 t.name, t.layer, shape_str(t.shape));
  }
  return n;
}

}  // namespace

SequenceState::SequenceState(const StateSpec& spec) : spec_(spec) {
  data_.resize(spec_.tensors.size());
  growing_rows_.assign(spec_.tensors.size(), 0);
  for (size_t i = 0; i < spec_.tensors.size(); ++i) {
    const StateTensorSpec& t = spec_.tensors[i];
    int64_t row = checked_elems(t);
    switch (t.kind) {
      case StateKind::Fixed:
        data_[i].resize(size_t(row));
        break;
      case StateKind::Ring:
        LINFER_CHECK(t.capacity > 0, "ring state '{}' of layer {}: capacity {} must be positive", t.name,
                     t.layer, t.capacity);
        data_[i].resize(size_t(row * t.capacity));
        break;
      case StateKind::Growing:
        break;  // empty until the first append
    }
  }
}

int64_t SequenceState::row_elems(size_t i) const { return shape_numel(spec_.tensors[i].shape); }

int64_t SequenceState::rows(size_t i) const {
  const StateTensorSpec& t = spec_.tensors[i];
  switch (t.kind) {
    case StateKind::Fixed: return 1;
    case StateKind::Growing: return growing_rows_[i];
    case StateKind::Ring: return std::min(n_tokens_, t.capacity);
  }
  return 0;
}

Shape SequenceState::shape(size_t i) const {
  const StateTensorSpec& t = spec_.tensors[i];
  if (t.kind == StateKind::Fixed) return t.shape;
  Shape s{rows(i)};
  s.insert(s.end(), t.shape.begin(), t.shape.end());
  return s;
}

void SequenceState::reserve_rows(size_t i, int64_t n) {
  const StateTensorSpec& t = spec_.tensors[i];
  LINFER_CHECK(t.kind == StateKind::Growing, "reserve_rows on state tensor '{}' of layer {}, which is not "
               "Growing", t.name, t.layer);
  LINFER_CHECK(n >= 0, "reserve_rows: negative row count {}", n);
  const size_t need = size_t(growing_rows_[i] + n) * size_t(row_elems(i));
  AlignedVector<float>& v = data_[i];
  // Explicit doubling: the growth policy is ours, not the standard library's.
  if (need > v.capacity()) v.reserve(std::max(need, 2 * v.capacity()));
}

float* SequenceState::append_rows(size_t i, int64_t n) {
  reserve_rows(i, n);
  const size_t used = size_t(growing_rows_[i]) * size_t(row_elems(i));
  AlignedVector<float>& v = data_[i];
  v.resize(used + size_t(n) * size_t(row_elems(i)));
  growing_rows_[i] += n;
  return v.data() + used;
}

size_t SequenceState::bytes() const {
  size_t total = 0;
  for (size_t i = 0; i < data_.size(); ++i) {
    const StateTensorSpec& t = spec_.tensors[i];
    int64_t stored_rows = t.kind == StateKind::Ring ? t.capacity : rows(i);
    total += size_t(stored_rows * row_elems(i)) * sizeof(float);
  }
  return total;
}

void SequenceState::reset() {
  for (size_t i = 0; i < data_.size(); ++i) {
    if (spec_.tensors[i].kind == StateKind::Growing) {
      data_[i].clear();  // keeps the capacity: a reused slot does not reallocate
      growing_rows_[i] = 0;
    } else {
      std::fill(data_[i].begin(), data_[i].end(), 0.0f);
    }
  }
  n_tokens_ = 0;
}

}  // namespace linfer
