// The CUDA backend's matmul against float64 loops, for every weight dtype it takes and row counts on both sides of
// the GEMV / GEMM switch (above it bf16 weights through x's three bf16 terms, in two passes past 4,096 rows; f16
// ones widened to float32 for cuBLAS): strided x and y, a bias, awkward shapes; columns of y past N untouched.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "../cuda_test_util.h"
#include "backend/backend.h"
#include "linfer/core/dtype.h"
#include "linfer/core/tensor.h"

namespace {

using namespace cuda_test;

linfer::Tensor weight_tensor(const std::vector<float>& w, int64_t N, int64_t K, linfer::DType dt) {
  linfer::Tensor t = linfer::Tensor::zeros({N, K}, dt);
  for (int64_t i = 0; i < N * K; ++i) {
    if (dt == linfer::DType::F32) t.f32()[i] = w[i];
    else if (dt == linfer::DType::BF16) t.view().as<uint16_t>()[i] = linfer::f32_to_bf16(w[i]);
    else t.view().as<uint16_t>()[i] = linfer::f32_to_f16(w[i]);
  }
  return t;
}

TEST(CudaMatmul, EveryDtypeAndRowCountMatchesFloat64) {
  LINFER_SKIP_WITHOUT_CUDA();
  auto be = linfer::make_cuda_backend();
  std::mt19937 rng(3);
  struct Shape {
    int64_t N, K;
  };
  for (auto dt : {linfer::DType::BF16, linfer::DType::F16, linfer::DType::F32})
    for (Shape s : {Shape{77, 100}, Shape{256, 1024}, Shape{9, 8}})
      for (int64_t M : {1, 8, 16, 17, 33, 200, 4133}) {
        if (M > 200 && s.N * s.K > 10000) continue;  // the float64 loops' time
        const int64_t N = s.N, K = s.K, ldx = K + (M % 2 ? 5 : 4), ldy = N + 3;  // x's rows 16-byte aligned or not
        const auto x = normal(rng, M * ldx), w = normal(rng, N * K, 1.0f / std::sqrt(float(K))),
                   bias = normal(rng, N), y0 = normal(rng, M * ldy);
        const linfer::Tensor wt = weight_tensor(w, N, K, dt), bt = weight_tensor(bias, 1, N, linfer::DType::F32);
        const linfer::Weight dw = be->weight(wt.view(), linfer::WeightUse::Products);
        const linfer::Tensor wf = linfer::Tensor::to_f32(wt.view());  // the weight's values as stored
        const bool with_bias = M % 2 == 1;
        linfer::Tmp tmp(*be);
        const linfer::Mat xs = tmp.mat(M, ldx), ys = tmp.mat(M, ldy);  // x and y: the first K / N columns
        be->upload(x.data(), xs);
        be->upload(y0.data(), ys);
        be->matmul(xs.cols_of(0, K), dw, with_bias ? be->param(bt) : linfer::Param{}, ys.cols_of(0, N));
        std::vector<float> got(M * ldy);
        be->download(ys, got.data());

        std::vector<float> body;
        std::vector<double> want;
        size_t pad_changed = 0;
        for (int64_t m = 0; m < M; ++m) {
          for (int64_t n = 0; n < N; ++n) {
            double sum = with_bias ? bias[n] : 0.0;
            for (int64_t k = 0; k < K; ++k) sum += double(x[m * ldx + k]) * wf.f32()[n * K + k];
            want.push_back(sum), body.push_back(got[m * ldy + n]);
          }
          for (int64_t n = N; n < ldy; ++n) pad_changed += got[m * ldy + n] != y0[m * ldy + n];
        }
        const double err = rel_err(body, want);
        const std::string what = std::string(linfer::dtype_name(dt)) + " M " + std::to_string(M) + " N " +
                                 std::to_string(N) + " K " + std::to_string(K);
        EXPECT_LT(err, 2e-5) << what;
        if (M > 16) std::printf("%s: %.2e\n", what.c_str(), err);
        EXPECT_EQ(pad_changed, 0u) << what;
      }
}

}  // namespace
