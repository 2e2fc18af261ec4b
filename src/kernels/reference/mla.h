#pragma once
// Reference (specification) of kernels/cpu/mla.h, by definition: for every cached row expand the
// latent into per-head keys [W_k[h]·c, k_r] and values W_v[h]·c (float64 sums), then plain causal
// softmax attention (ref::attend_one).

#include <cstdint>
#include <span>

#include "kernels/cpu/mla.h"
#include "linfer/core/tensor.h"

namespace linfer::kernels::ref {

void mla_attention(const float* q, const MlaDims& d, const TensorView& w_kv_b, std::span<const int64_t> offsets,
                   std::span<const MlaCache> caches, float* o);

}  // namespace linfer::kernels::ref
