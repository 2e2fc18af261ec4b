#include "kernels/cuda/moe_route.h"

#include <bit>
#include <climits>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/decode_common.cuh"
#include "kernels/cuda/launch.cuh"

namespace linfer::kernels::cuda {

namespace {

using detail::warp_max;
using detail::warp_sum;

// (v, i) becomes (ov, oi) where that is the better pick: higher value, or the same value and a lower index.
__device__ __forceinline__ void keep_better(float& v, int& i, float ov, int oi) {
  if (ov > v || (ov == v && oi < i)) v = ov, i = oi;
}

// The best (value, index) over the warp; every lane gets it.
__device__ __forceinline__ void warp_best(float& v, int& i) {
  for (int m = 16; m > 0; m >>= 1) keep_better(v, i, __shfl_xor_sync(0xffffffffu, v, m), __shfl_xor_sync(0xffffffffu, i, m));
}

// One warp per token, expert lane + 32·j in lane's j-th register (PL per lane: E <= 32·PL, a power of two, so
// that a model with few experts keeps few registers). Shared memory: the choices [E], then group scores [G]
// and kept flags [G] (groups > 1).
template <int PL>
__global__ void moe_route_kernel(const float* logits, int64_t ldl, int E, int k, bool softmax, bool renormalize,
                                 float scaling, int G, int topk_groups, const float* bias, float* ids, int64_t ldi,
                                 float* weights, int64_t ldw) {
  pdl_enter();
  extern __shared__ float shared[];
  const int lane = threadIdx.x;
  const float* l = logits + int64_t(blockIdx.x) * ldl;
  float score[PL], choice[PL];
  float m = -INFINITY;
#pragma unroll
  for (int j = 0; j < PL; ++j) {
    const int e = lane + 32 * j;
    score[j] = e < E ? l[e] : -INFINITY;
    m = fmaxf(m, score[j]);
  }
  if (softmax) {
    m = warp_max(m);
    float sum = 0.f;
#pragma unroll
    for (int j = 0; j < PL; ++j) {
      score[j] = lane + 32 * j < E ? expf(score[j] - m) : 0.f;
      sum += score[j];
    }
    const float inv = 1.0f / warp_sum(sum);
#pragma unroll
    for (int j = 0; j < PL; ++j) score[j] *= inv;
  } else {
#pragma unroll
    for (int j = 0; j < PL; ++j) score[j] = 1.0f / (1.0f + expf(-score[j]));
  }
#pragma unroll
  for (int j = 0; j < PL; ++j) {
    const int e = lane + 32 * j;
    choice[j] = e < E ? score[j] + (bias ? bias[e] : 0.f) : -INFINITY;
  }
  if (G > 1) {
    // Keep the topk_groups groups whose two best choices sum highest; the others' experts are out.
    float* c = shared;
    float* group_score = shared + E;
    float* kept = group_score + G;
    const int per_group = E / G;
#pragma unroll
    for (int j = 0; j < PL; ++j)
      if (lane + 32 * j < E) c[lane + 32 * j] = choice[j];
    __syncwarp();
    for (int g = lane; g < G; g += 32) {
      float a = -INFINITY, b = -INFINITY;
      for (int e = g * per_group; e < (g + 1) * per_group; ++e) {
        if (c[e] > a) b = a, a = c[e];
        else if (c[e] > b) b = c[e];
      }
      group_score[g] = a + (per_group > 1 ? b : 0.f);
      kept[g] = 0.f;
    }
    __syncwarp();
    for (int r = 0; r < topk_groups; ++r) {
      float v = -INFINITY;
      int i = INT_MAX;
      for (int g = lane; g < G; g += 32)
        if (kept[g] == 0.f) keep_better(v, i, group_score[g], g);
      warp_best(v, i);
      if (lane == 0) kept[i] = 1.f;
      __syncwarp();
    }
#pragma unroll
    for (int j = 0; j < PL; ++j) {
      const int e = lane + 32 * j;
      if (e < E && kept[e / per_group] == 0.f) choice[j] = -INFINITY;
    }
  }
  // The top k, best first: k rounds of a warp arg-max over the experts not yet taken.
  unsigned taken = 0;
  float sum = 0.f;
  float* id_row = ids + int64_t(blockIdx.x) * ldi;
  float* w_row = weights + int64_t(blockIdx.x) * ldw;
  for (int r = 0; r < k; ++r) {
    float v = -INFINITY;
    int i = INT_MAX;
#pragma unroll
    for (int j = 0; j < PL; ++j) {
      const int e = lane + 32 * j;
      if (e < E && !(taken >> j & 1u)) keep_better(v, i, choice[j], e);
    }
    warp_best(v, i);
    float s = 0.f;
#pragma unroll
    for (int j = 0; j < PL; ++j)
      if (lane + 32 * j == i) taken |= 1u << j, s = score[j];
    s = __shfl_sync(0xffffffffu, s, i % 32);
    sum += s;
    if (lane == 0) id_row[r] = float(i), w_row[r] = s;
  }
  if (lane == 0) {
    const float norm = renormalize ? 1.0f / sum : 1.0f;
    for (int r = 0; r < k; ++r) w_row[r] = w_row[r] * norm * scaling;
  }
}

}  // namespace

void moe_route(const Rows& logits, const MoeRouting& r, const float* bias, const Rows& ids, const Rows& weights,
               cudaStream_t stream) {
  const int64_t T = logits.rows, E = r.experts, G = r.groups;
  LINFER_CUDA_CHECK(E >= 1 && E <= kRouteMaxExperts && logits.cols == E, "cuda moe_route: ", E,
                    " experts (the kernel takes 1 to ", kRouteMaxExperts, ")");
  LINFER_CUDA_CHECK(r.top_k >= 1 && r.top_k <= E && G >= 1 && E % G == 0 && r.topk_groups >= 1 &&
                        r.topk_groups <= G && ids.rows == T && ids.cols == r.top_k && weights.rows == T &&
                        weights.cols == r.top_k && T < (int64_t(1) << 31),
                    "cuda moe_route: top ", r.top_k, " of ", E, " experts in ", G, " groups (", r.topk_groups,
                    " kept), ids [", ids.rows, ", ", ids.cols, "], weights [", weights.rows, ", ", weights.cols, "]");
  if (T == 0) return;
  const size_t smem = G > 1 ? size_t(E + 2 * G) * sizeof(float) : 0;
  const int per_lane = int(std::bit_ceil(uint64_t((E + 31) / 32)));
  auto launch = [&](auto kernel) {
    launch_kernel("cuda moe_route", {unsigned(T), 32, smem, stream}, kernel, logits.p, logits.ld, int(E), int(r.top_k),
                  r.router == RouterKind::Softmax, r.renormalize, float(r.routed_scaling), int(G), int(r.topk_groups),
                  bias, ids.p, ids.ld, weights.p, weights.ld);
  };
  static_assert(kRouteMaxExperts == 32 * 32);
  switch (per_lane) {
    case 1: launch(moe_route_kernel<1>); break;
    case 2: launch(moe_route_kernel<2>); break;
    case 4: launch(moe_route_kernel<4>); break;
    case 8: launch(moe_route_kernel<8>); break;
    case 16: launch(moe_route_kernel<16>); break;
    default: launch(moe_route_kernel<32>); break;
  }
}

}  // namespace linfer::kernels::cuda
