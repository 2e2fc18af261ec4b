#include "kernels/reference/matmul.h"

#include <vector>

#include "linfer/core/error.h"

namespace linfer::kernels::ref {

void weight_row(const TensorView& w, int64_t r, float* out) {
  const auto* base = static_cast<const std::byte*>(w.data()) + dtype_nbytes(w.dtype(), r * w.strides()[0]);
  to_f32(w.dtype(), base, out, size_t(w.dim(1)));
}

void matmul(const float* x, int64_t M, const TensorView& w, const float* bias, float* y) {
  LINFER_CHECK(w.ndim() == 2, "matmul: weight must be 2-D, got {}", shape_str(w.shape()));
  const int64_t N = w.dim(0), K = w.dim(1);
  std::vector<float> row(K);
  for (int64_t n = 0; n < N; ++n) {
    weight_row(w, n, row.data());
    for (int64_t m = 0; m < M; ++m) {
      double acc = bias ? bias[n] : 0.0;
      for (int64_t k = 0; k < K; ++k) acc += double(x[m * K + k]) * row[k];
      y[m * N + n] = float(acc);
    }
  }
}

void embedding(const TensorView& table, std::span<const int32_t> ids, float* out) {
  const int64_t V = table.dim(0), D = table.dim(1);
  for (size_t i = 0; i < ids.size(); ++i) {
    LINFER_CHECK(ids[i] >= 0 && ids[i] < V, "embedding: token id {} outside [0, {})", ids[i], V);
    weight_row(table, ids[i], out + int64_t(i) * D);
  }
}

}  // namespace linfer::kernels::ref
