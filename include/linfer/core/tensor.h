#pragma once
// Tensor views (non-owning) and tensors (owning, 64-byte aligned) over f32 / bf16 / f16 data, or
// block-quantized weights (logical shape and element strides; core/quant_formats.h).
// Shapes are row-major with explicit element strides; a view over mmap'd checkpoint bytes costs
// nothing. Kernels take raw pointers plus dims; views are for loading, checking and plumbing.
//
//   Tensor x = Tensor::zeros({T, hidden});          // f32, contiguous
//   TensorView w = weights.get("lm_head.weight");    // bf16 view into the mmap'd file
//   LINFER_CHECK(w.shape() == Shape{vocab, hidden}, ...);

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "linfer/core/aligned.h"
#include "linfer/core/dtype.h"

namespace linfer {

using Shape = std::vector<int64_t>;

// The product of the dims; 0 when any dim is 0. Readers check the product of a file's dims for overflow
// (in any order: with every dim >= 1 no partial product exceeds the whole).
int64_t shape_numel(const Shape& shape);
std::string shape_str(const Shape& shape);  // "[2, 3, 4]"

class TensorView {
 public:
  TensorView() = default;
  TensorView(void* data, DType dtype, Shape shape);                  // contiguous
  TensorView(void* data, DType dtype, Shape shape, Shape strides);   // strides in elements

  void* data() const { return data_; }
  template <class T>
  T* as() const { return static_cast<T*>(data_); }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }
  int ndim() const { return int(shape_.size()); }
  int64_t dim(int i) const { return shape_[i < 0 ? shape_.size() + i : i]; }
  int64_t numel() const { return shape_numel(shape_); }
  size_t nbytes() const { return dtype_nbytes(dtype_, numel()); }
  bool contiguous() const;
  bool empty() const { return data_ == nullptr; }

  // Rows [begin, end) of dimension 0 (not of the types with rows interleaved, is_rows16).
  TensorView slice0(int64_t begin, int64_t end) const;
  // Same bytes, new contiguous shape with the same element count.
  TensorView reshape(Shape shape) const;

 private:
  void* data_ = nullptr;
  DType dtype_ = DType::F32;
  Shape shape_;
  Shape strides_;
};

class Tensor {
 public:
  Tensor() = default;
  static Tensor zeros(Shape shape, DType dtype = DType::F32);
  // A float32 copy of any view (converted from bf16 / f16, made contiguous).
  static Tensor to_f32(const TensorView& view);

  TensorView view() const { return view_; }
  operator TensorView() const { return view_; }
  float* f32() const { return view_.as<float>(); }
  DType dtype() const { return view_.dtype(); }
  const Shape& shape() const { return view_.shape(); }
  int64_t dim(int i) const { return view_.dim(i); }
  int64_t numel() const { return view_.numel(); }
  size_t nbytes() const { return view_.nbytes(); }

 private:
  std::shared_ptr<AlignedVector<std::byte>> storage_;
  TensorView view_;
};

}  // namespace linfer
