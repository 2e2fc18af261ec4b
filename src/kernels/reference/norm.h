#pragma once
// Reference (specification) of kernels/cpu/norm.h: float64 per-row loops of transformers' formulas.

#include <cstdint>

#include "kernels/cpu/norm.h"

namespace linfer::kernels::ref {

void rms_norm(const float* x, const float* w, float* y, int64_t rows, int64_t n, float eps, NormWeight mode);
void rms_norm_gated(const float* x, const float* gate, const float* w, float* y, int64_t rows, int64_t n,
                    float eps, GateAct act);
void rms_norm_gate_first(const float* x, const float* z, const float* w, float* y, int64_t rows, int64_t n,
                         int64_t group, float eps);
void l2_norm(const float* x, float* y, int64_t rows, int64_t n, float eps);

}  // namespace linfer::kernels::ref
