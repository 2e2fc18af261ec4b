// Delta-rule kernels: argument checks, the split into (sequence, value head) tasks, and the choice of
// the SIMD build. The kernels themselves are in delta_rule_kernels.h.
#include "kernels/cpu/delta_rule.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "kernels/cpu/delta_rule_impl.h"
#include "linfer/core/error.h"
#include "linfer/core/thread_pool.h"

namespace linfer::kernels {

using delta_detail::HeadTask;
using delta_detail::Kernels;

// Measured on a 2-core AMD EPYC (AVX2, FP32 only), head dim 128: see docs/benchmarks.md.
static constexpr DeltaPrefillForm kDefaultForm = DeltaPrefillForm::Recurrent;
static constexpr int kDefaultChunk = 16;

float delta_rule_scale(const DeltaRuleShape& s) {
  return s.scale != 0.0f ? s.scale : 1.0f / std::sqrt(float(s.K));
}

static void check_args(const DeltaRuleShape& s, const DeltaRuleInputs& in, float* o) {
  LINFER_CHECK(s.H > 0 && s.HV > 0 && s.K > 0 && s.V > 0, "delta rule: bad head shape H={} HV={} K={} V={}", s.H,
               s.HV, s.K, s.V);
  LINFER_CHECK(s.HV % s.H == 0, "delta rule: value heads HV={} must be a multiple of q/k heads H={}", s.HV, s.H);
  LINFER_CHECK(in.q && in.k && in.v && in.beta && o, "delta rule: q, k, v, beta and o must all be given");
  LINFER_CHECK(s.decay == DeltaDecay::None || in.g, "delta rule: decay {} needs the log-decay input g",
               s.decay == DeltaDecay::Scalar ? "Scalar" : "PerKey");
  LINFER_CHECK(in.q_stride == 0 || in.q_stride >= s.H * s.K, "delta rule: q_stride {} < H*K = {}", in.q_stride,
               s.H * s.K);
  LINFER_CHECK(in.k_stride == 0 || in.k_stride >= s.H * s.K, "delta rule: k_stride {} < H*K = {}", in.k_stride,
               s.H * s.K);
  LINFER_CHECK(in.v_stride == 0 || in.v_stride >= s.HV * s.V, "delta rule: v_stride {} < HV*V = {}", in.v_stride,
               s.HV * s.V);
}

static const Kernels& pick_kernels(const DeltaRuleShape& s, SimdLevel level) {
  const bool vector8 = s.K % 8 == 0 && s.V % 8 == 0;
#if LINFER_X86
  if (vector8 && level >= SimdLevel::Avx2) return delta_detail::avx2_kernels(s.decay);
#endif
  return delta_detail::portable_kernels(s.decay, vector8);
}

// The task of value head hv over tokens [tok0, tok0 + T).
static HeadTask head_task(const DeltaRuleShape& s, const DeltaRuleInputs& in, int64_t tok0, int64_t T, int64_t hv,
                          float* state, float* o) {
  const int64_t h = hv / (s.HV / s.H);
  HeadTask t;
  t.T = T;
  t.K = s.K;
  t.V = s.V;
  t.decay = s.decay;
  t.l2norm = s.l2norm_qk;
  t.scale = delta_rule_scale(s);
  t.q_stride = in.q_stride ? in.q_stride : s.H * s.K;
  t.k_stride = in.k_stride ? in.k_stride : s.H * s.K;
  t.v_stride = in.v_stride ? in.v_stride : s.HV * s.V;
  t.bg_stride = s.HV;
  t.g_stride = s.decay == DeltaDecay::PerKey ? s.HV * s.K : s.HV;
  t.o_stride = s.HV * s.V;
  t.q = in.q + tok0 * t.q_stride + h * s.K;
  t.k = in.k + tok0 * t.k_stride + h * s.K;
  t.v = in.v + tok0 * t.v_stride + hv * s.V;
  t.beta = in.beta + tok0 * s.HV + hv;
  if (s.decay != DeltaDecay::None) t.g = in.g + tok0 * t.g_stride + hv * (s.decay == DeltaDecay::PerKey ? s.K : 1);
  t.o = o + tok0 * t.o_stride + hv * s.V;
  t.state = state + hv * s.V * s.K;
  return t;
}

void delta_rule_step(const DeltaRuleShape& s, const DeltaRuleInputs& in, std::span<float* const> states, float* o,
                     SimdLevel level) {
  check_args(s, in, o);
  for (size_t i = 0; i < states.size(); ++i) LINFER_CHECK(states[i], "delta rule step: state {} is null", i);
  const Kernels& kernels = pick_kernels(s, level);
  const int64_t n = int64_t(states.size()) * s.HV;
  // a head-token is ~1 µs of work: hand threads several at a time
  parallel_for(0, n, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      const int64_t seq = i / s.HV;
      kernels.step(head_task(s, in, seq, 1, i % s.HV, states[seq], o));
    }
  }, 4);
}

void delta_rule_prefill(const DeltaRuleShape& s, const DeltaRuleInputs& in, std::span<const int64_t> offsets,
                        std::span<float* const> states, float* o, DeltaPrefillOptions options, SimdLevel level) {
  check_args(s, in, o);
  LINFER_CHECK(!offsets.empty() && offsets[0] == 0, "delta rule prefill: offsets must start at 0");
  LINFER_CHECK(offsets.size() == states.size() + 1, "delta rule prefill: {} offsets for {} states (want n+1)",
               offsets.size(), states.size());
  for (size_t i = 0; i < states.size(); ++i) {
    LINFER_CHECK(offsets[i + 1] >= offsets[i], "delta rule prefill: offsets decrease at sequence {}", i);
    LINFER_CHECK(states[i], "delta rule prefill: state {} is null", i);
  }
  const int chunk = options.chunk ? options.chunk : kDefaultChunk;
  LINFER_CHECK(chunk >= 1 && chunk <= delta_detail::kMaxChunk, "delta rule prefill: chunk {} outside 1..{}", chunk,
               delta_detail::kMaxChunk);
  const DeltaPrefillForm form = options.form == DeltaPrefillForm::Auto ? kDefaultForm : options.form;
  const Kernels& kernels = pick_kernels(s, level);

  // longest sequences first, so the dynamic schedule ends balanced
  std::vector<int64_t> order(states.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return offsets[a + 1] - offsets[a] > offsets[b + 1] - offsets[b];
  });
  parallel_for(0, int64_t(order.size()) * s.HV, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      const int64_t seq = order[i / s.HV];
      const int64_t T = offsets[seq + 1] - offsets[seq];
      if (T == 0) continue;
      const HeadTask task = head_task(s, in, offsets[seq], T, i % s.HV, states[seq], o);
      if (form == DeltaPrefillForm::Chunked) kernels.chunked(task, chunk);
      else kernels.recurrent(task);
    }
  });
}

}  // namespace linfer::kernels
