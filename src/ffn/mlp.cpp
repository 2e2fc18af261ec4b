#include "ffn/mlp.h"

namespace linfer {

void swiglu_mlp(Backend& be, const MlpWeights& w, const Mat& x, const Mat& y) {
  const int64_t T = x.rows, I = w.intermediate();
  Tmp tmp(be);
  Mat h(tmp.mat(T, 2 * I).p, T, I);  // [T, I] at the front of a [T, 2·I] buffer
  if (!w.gate_up.empty()) {
    const Mat gu(h.p, T, 2 * I);
    be.matmul(x, w.gate_up, {}, gu);
    be.swiglu(gu.cols_of(0, I), gu.cols_of(I, I), h);
  } else {
    const Mat up(h.p + T * I, T, I);
    be.matmul(x, w.gate, {}, h);
    be.matmul(x, w.up, {}, up);
    be.swiglu(h, up, h);
  }
  be.matmul(h, w.down, {}, y);
}

void Mlp::forward(Backend& be, const Mat& x, const Mat& y) const { swiglu_mlp(be, w_, x, y); }

}  // namespace linfer
