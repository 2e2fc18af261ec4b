#pragma once
// Internal: the attention inner loop shared by full, sliding-window and MLA attention.
// attention.cpp decides the work split (which query rows against which key segments); an
// `attend_rows` per SIMD level does the arithmetic (attention_core.h holds its one template body: scalar in
// attention.cpp, every Highway target in attention_hwy.cpp).

#include <cstdint>

#include "linfer/core/cpu_features.h"

namespace linfer::kernels {

// A run of consecutive key positions stored at fixed row strides: key pos0 + i at k + i·k_stride.
struct KvSegment {
  int64_t pos0 = 0, n = 0;
  const float* k = nullptr;
  const float* v = nullptr;
  int64_t k_stride = 0, v_stride = 0;
};

// One query row, the key positions it may see (inclusive), and where its KV head sits inside a
// segment's key / value row (so one task can serve rows of several KV heads).
struct AttnRow {
  const float* q = nullptr;
  int64_t lo = 0, hi = -1;
  int64_t k_off = 0, v_off = 0;
};

struct AttnShape {
  int64_t D = 0, Dv = 0;  // q/k and v head dims
  float scale = 0.0f;
};

// Online softmax running state of R rows: max m, sum l, unnormalised output o [R, Dv].
// Start with m = -inf, l = 0, o = 0; finish with o / l (attn_finish), or merge partials first.
struct AttnAcc {
  float* m;
  float* l;
  float* o;
};

using AttendRowsFn = void (*)(const AttnShape& s, const AttnRow* rows, int64_t R, const KvSegment* segs,
                              int64_t n_segs, AttnAcc acc);

namespace scalar {
void attend_rows(const AttnShape& s, const AttnRow* rows, int64_t R, const KvSegment* segs, int64_t n_segs,
                 AttnAcc acc);
}
namespace hwy_paths {
// The Highway kernel (attention_hwy.cpp) of `level`, which is not the scalar path.
AttendRowsFn attend_rows_for(SimdLevel level);
}

}  // namespace linfer::kernels
