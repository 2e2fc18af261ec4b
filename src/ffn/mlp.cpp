#include "ffn/mlp.h"

#include "kernels/cpu/activation.h"
#include "kernels/cpu/matmul.h"
#include "mixers/scratch.h"

namespace linfer {

void swiglu_mlp(const MlpWeights& w, const float* x, float* y, int64_t T) {
  using namespace kernels;
  const int64_t I = w.intermediate();
  Scratch s;
  float* h = s.get(T * 2 * I);
  if (!w.gate_up.empty()) {
    matmul(x, T, w.gate_up, nullptr, h);
    swiglu_packed(h, h, T, I);
  } else {
    float* up = h + T * I;
    matmul(x, T, w.gate, nullptr, h);
    matmul(x, T, w.up, nullptr, up);
    swiglu(h, up, h, T * I);
  }
  matmul(h, T, w.down, nullptr, y);
}

void Mlp::forward(const float* x, float* y, int64_t T) const { swiglu_mlp(w_, x, y, T); }

}  // namespace linfer
