#pragma once
// Internal: the body of attend_rows, instantiated once per SIMD level with that level's vector
// primitives (Ops: dots, scale, pv, exp_shift). Keys are visited in blocks of kKeyBlock: a block's
// K/V rows stay in cache while every query row of the task uses them (flash-attention order), and
// each row keeps a running max / sum so scores never overflow.

#include <algorithm>
#include <cmath>

#include "kernels/cpu/attention_simd.h"

namespace linfer::kernels {

template <class Ops>
void attend_rows_impl(const AttnShape& s, const AttnRow* rows, int64_t R, const KvSegment* segs, int64_t n_segs,
                      AttnAcc acc) {
  constexpr int64_t kKeyBlock = 32;
  alignas(32) float p[kKeyBlock];
  for (int64_t si = 0; si < n_segs; ++si) {
    const KvSegment& seg = segs[si];
    for (int64_t b0 = seg.pos0; b0 < seg.pos0 + seg.n; b0 += kKeyBlock) {
      const int64_t b1 = std::min(b0 + kKeyBlock, seg.pos0 + seg.n);  // exclusive
      for (int64_t r = 0; r < R; ++r) {
        const int64_t j0 = std::max(b0, rows[r].lo), j1 = std::min(b1, rows[r].hi + 1);
        if (j0 >= j1) continue;
        const int64_t n = j1 - j0;
        const float* k = seg.k + (j0 - seg.pos0) * seg.k_stride + rows[r].k_off;
        const float* v = seg.v + (j0 - seg.pos0) * seg.v_stride + rows[r].v_off;
        Ops::dots(rows[r].q, k, seg.k_stride, n, s.D, p);
        float mx = -INFINITY;
        for (int64_t j = 0; j < n; ++j) mx = std::max(mx, p[j] *= s.scale);
        float* o = acc.o + r * s.Dv;
        const float m_new = std::max(acc.m[r], mx);
        if (m_new > acc.m[r]) {  // rescale what was accumulated under the old max
          const float alpha = std::exp(acc.m[r] - m_new);
          acc.l[r] *= alpha;
          Ops::scale(o, alpha, s.Dv);
          acc.m[r] = m_new;
        }
        acc.l[r] += Ops::exp_shift(p, n, m_new);
        Ops::pv(o, p, v, seg.v_stride, n, s.Dv);
      }
    }
  }
}

}  // namespace linfer::kernels
