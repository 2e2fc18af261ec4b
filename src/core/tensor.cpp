#include "linfer/core/tensor.h"

#include "linfer/core/error.h"

namespace linfer {

int64_t shape_numel(const Shape& shape) {
  // A zero anywhere makes the count 0 whatever the order: a file may declare [0, 2^62, 146], whose product
  // taken left to right from the other end would overflow first (fuzz_gguf found one).
  for (int64_t d : shape)
    if (d == 0) return 0;
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_str(const Shape& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

static Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  int64_t s = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

TensorView::TensorView(void* data, DType dtype, Shape shape)
    : data_(data), dtype_(dtype), shape_(std::move(shape)), strides_(contiguous_strides(shape_)) {}

TensorView::TensorView(void* data, DType dtype, Shape shape, Shape strides)
    : data_(data), dtype_(dtype), shape_(std::move(shape)), strides_(std::move(strides)) {
  LINFER_CHECK(shape_.size() == strides_.size(), "tensor view: {} dims but {} strides", shape_.size(),
               strides_.size());
}

bool TensorView::contiguous() const { return strides_ == contiguous_strides(shape_); }

TensorView TensorView::slice0(int64_t begin, int64_t end) const {
  LINFER_CHECK(ndim() > 0 && 0 <= begin && begin <= end && end <= shape_[0],
               "slice [{}, {}) out of range for shape {}", begin, end, shape_str(shape_));
  LINFER_CHECK(!is_rows16(dtype_), "slice of a {} weight: its rows are interleaved in groups of 16, not ld elements "
               "apart (a weight whose rows are sliced is taken with WeightUse::RowRanges)", dtype_name(dtype_));
  Shape shape = shape_;
  shape[0] = end - begin;
  auto* base = static_cast<std::byte*>(data_) + dtype_nbytes(dtype_, begin * strides_[0]);
  return TensorView(base, dtype_, std::move(shape), strides_);
}

TensorView TensorView::reshape(Shape shape) const {
  LINFER_CHECK(contiguous(), "reshape of a non-contiguous view");
  LINFER_CHECK(shape_numel(shape) == numel(), "cannot reshape {} to {}", shape_str(shape_), shape_str(shape));
  return TensorView(data_, dtype_, std::move(shape));
}

Tensor Tensor::zeros(Shape shape, DType dtype) {
  Tensor t;
  int64_t n = shape_numel(shape);
  LINFER_CHECK(n >= 0, "negative tensor size {}", shape_str(shape));
  LINFER_CHECK(n % dtype_block(dtype) == 0, "{} tensor {}: not whole blocks of {}", dtype_name(dtype),
               shape_str(shape), dtype_block(dtype));
  t.storage_ = std::make_shared<AlignedVector<std::byte>>(dtype_nbytes(dtype, n));
  t.view_ = TensorView(t.storage_->data(), dtype, std::move(shape));
  return t;
}

Tensor Tensor::to_f32(const TensorView& view) {
  Tensor t = zeros(view.shape(), DType::F32);
  if (view.contiguous()) {
    linfer::to_f32(view.dtype(), view.data(), t.f32(), size_t(view.numel()));
    return t;
  }
  // Strided: walk every index (loading path only, not a hot loop).
  LINFER_CHECK(!is_quantized(view.dtype()), "to_f32: a strided {} view (only contiguous ones)",
               dtype_name(view.dtype()));
  const int nd = view.ndim();
  Shape idx(nd, 0);
  const size_t esz = dtype_size(view.dtype());
  for (int64_t i = 0; i < view.numel(); ++i) {
    int64_t off = 0;
    for (int d = 0; d < nd; ++d) off += idx[d] * view.strides()[d];
    linfer::to_f32(view.dtype(), static_cast<const std::byte*>(view.data()) + off * int64_t(esz), t.f32() + i, 1);
    for (int d = nd - 1; d >= 0; --d) {
      if (++idx[d] < view.shape()[d]) break;
      idx[d] = 0;
    }
  }
  return t;
}

}  // namespace linfer
