#include "ffn/mlp.h"

namespace linfer {

void swiglu_up_calls(const MlpWeights& w, const Mat& x, float* h, std::vector<Backend::MatmulCall>& calls) {
  const int64_t T = x.rows, I = w.intermediate();
  if (!w.gate_up.empty()) {
    calls.push_back({x, &w.gate_up, Mat(h, T, 2 * I)});
  } else {
    calls.push_back({x, &w.gate, Mat(h, T, I)});
    calls.push_back({x, &w.up, Mat(h + T * I, T, I)});
  }
}

Mat swiglu_activate(Backend& be, const MlpWeights& w, int64_t T, float* h) {
  const int64_t I = w.intermediate();
  const Mat act(h, T, I);  // [T, I] at the front of the [T, 2·I] buffer
  if (!w.gate_up.empty()) {
    const Mat gu(h, T, 2 * I);
    be.swiglu(gu.cols_of(0, I), gu.cols_of(I, I), act);
  } else {
    be.swiglu(act, Mat(h + T * I, T, I), act);
  }
  return act;
}

void swiglu_mlp(Backend& be, const MlpWeights& w, const Mat& x, const Mat& y) {
  const int64_t T = x.rows, I = w.intermediate();
  Tmp tmp(be);
  float* h = tmp.mat(T, 2 * I).p;
  thread_local std::vector<Backend::MatmulCall> calls;  // reused: decode allocates nothing
  calls.clear();
  swiglu_up_calls(w, x, h, calls);
  be.matmul_many(calls);
  be.matmul(swiglu_activate(be, w, T, h), w.down, {}, y);
}

void Mlp::forward(Backend& be, const Mat& x, const Mat& y) const { swiglu_mlp(be, w_, x, y); }

}  // namespace linfer
