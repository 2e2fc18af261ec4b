#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu/attention_core.h"
#include "linfer/core/error.h"
#include "linfer/core/thread_pool.h"

namespace linfer::kernels {

namespace scalar {
namespace {
struct Ops {
  // out[j] = q · k_j for n keys of dimension D, k_j at k + j·stride
  static void dots(const float* q, const float* k, int64_t stride, int64_t n, int64_t D, float* out) {
    for (int64_t j = 0; j < n; ++j) {
      float r = 0;
      for (int64_t i = 0; i < D; ++i) r += q[i] * k[j * stride + i];
      out[j] = r;
    }
  }
  static void scale(float* o, float alpha, int64_t n) {
    for (int64_t i = 0; i < n; ++i) o[i] *= alpha;
  }
  // o[Dv] += Σ_j p[j] · v_j
  static void pv(float* o, const float* p, const float* v, int64_t stride, int64_t n, int64_t Dv) {
    for (int64_t j = 0; j < n; ++j)
      for (int64_t i = 0; i < Dv; ++i) o[i] += p[j] * v[j * stride + i];
  }
  static float exp_shift(float* p, int64_t n, float m) {
    float r = 0;
    for (int64_t j = 0; j < n; ++j) r += (p[j] = std::exp(p[j] - m));
    return r;
  }
};
}  // namespace

void attend_rows(const AttnShape& s, const AttnRow* rows, int64_t R, const KvSegment* segs, int64_t n_segs,
                 AttnAcc acc) {
  attend_rows_impl<Ops>(s, rows, R, segs, n_segs, acc);
}
}  // namespace scalar

namespace {

constexpr int64_t kQueryRows = 32;   // query rows (tokens × grouped heads) per prefill task
constexpr int64_t kMinSplit = 256;   // fewest keys worth a decode split of their own

AttendRowsFn attend_fn(SimdLevel level) {
#if LINFER_HWY
  if (level != SimdLevel::Scalar) return hwy_paths::attend_rows_for(level);
#endif
  return scalar::attend_rows;
}

void check_dims(const AttentionDims& d, const char* op) {
  LINFER_CHECK(d.n_heads > 0 && d.n_kv_heads > 0 && d.n_heads % d.n_kv_heads == 0,
               "{}: n_heads {} must be a positive multiple of n_kv_heads {}", op, d.n_heads, d.n_kv_heads);
  LINFER_CHECK(d.qk_dim > 0 && d.v_dim > 0, "{}: head dims must be positive (qk {}, v {})", op, d.qk_dim, d.v_dim);
}

// Where the keys of one sequence live, as segments covering [lo, hi] (positions).
struct KeySource {
  virtual ~KeySource() = default;
  virtual int segments(int64_t lo, int64_t hi, int64_t g, KvSegment* out) const = 0;  // <= 3
};

struct CacheSource final : KeySource {
  const KvCache* kv;
  int64_t Hkv, D, Dv;
  int segments(int64_t lo, int64_t hi, int64_t g, KvSegment* out) const override {
    const int64_t ks = kv->k_stride ? kv->k_stride : Hkv * D, vs = kv->v_stride ? kv->v_stride : Hkv * Dv;
    out[0] = {lo, hi - lo + 1, kv->k + lo * ks + g * D, kv->v + lo * vs + g * Dv, ks, vs};
    return 1;
  }
};

// Positions before `past` from the ring (at most one wrap), the rest from this call's new rows.
struct RingSource final : KeySource {
  const KvRing* ring;
  const float* k_new;  // rows of this sequence's first new token
  const float* v_new;
  int64_t Hkv, D, Dv;
  int segments(int64_t lo, int64_t hi, int64_t g, KvSegment* out) const override {
    int n = 0;
    for (int64_t p = lo; p <= hi && p < ring->past;) {
      const int64_t row = p % ring->capacity;
      const int64_t run = std::min({hi + 1, ring->past, p + ring->capacity - row}) - p;
      out[n++] = {p, run, ring->k + (row * Hkv + g) * D, ring->v + (row * Hkv + g) * Dv, Hkv * D, Hkv * Dv};
      p += run;
    }
    const int64_t first_new = std::max(lo, ring->past);
    if (first_new <= hi) {
      const int64_t i = first_new - ring->past;
      out[n++] = {first_new, hi - first_new + 1, k_new + (i * Hkv + g) * D, v_new + (i * Hkv + g) * Dv, Hkv * D,
                  Hkv * Dv};
    }
    return n;
  }
};

// One unit of work: queries [j0, j1) of sequence `seq` (local indices), query heads [h0, h0 + nh),
// keys [k0, k1] of what they may see. Prefill tasks take the heads of one KV head (nh = group) and
// a block of queries; decode tasks take every head of one token, so the key rows [Hkv, D] are read
// front to back (per-head tasks would jump Hkv·D floats between keys, defeating the prefetcher).
// partial < 0: finish into the output; else write the running state to slot `partial` for a merge.
struct Task {
  int64_t seq, h0, nh, j0, j1, k0, k1;
  int64_t partial;
};

struct Problem {
  AttnShape shape;
  int64_t Hq, Hkv, group, window;  // window 0: full attention
  const float* q;
  float* o;
  std::span<const int64_t> offsets;
  std::vector<int64_t> past;              // per sequence: position of its first query
  std::vector<const KeySource*> sources;  // per sequence
};

// Row r of a task: token j0 + r / nh, head h0 + r % nh.
void run_task(const Problem& pb, const Task& task, AttendRowsFn attend, std::vector<float>& partials) {
  const int64_t R = (task.j1 - task.j0) * task.nh, D = pb.shape.D, Dv = pb.shape.Dv;
  thread_local std::vector<AttnRow> rows;
  thread_local std::vector<float> m, l, o;
  rows.resize(size_t(R));
  m.assign(size_t(R), -INFINITY);
  l.assign(size_t(R), 0.0f);
  o.assign(size_t(R * Dv), 0.0f);
  const int64_t t0 = pb.offsets[task.seq], past = pb.past[task.seq];
  const int64_t g0 = task.h0 / pb.group;  // first KV head: segments point at it
  for (int64_t r = 0; r < R; ++r) {
    const int64_t j = task.j0 + r / task.nh, h = task.h0 + r % task.nh, pos = past + j;
    const int64_t dg = h / pb.group - g0;
    const int64_t lo = pb.window ? std::max<int64_t>(0, pos - pb.window + 1) : 0;
    rows[r] = {pb.q + ((t0 + j) * pb.Hq + h) * D, std::max(lo, task.k0), std::min(pos, task.k1), dg * D, dg * Dv};
  }
  KvSegment segs[3];
  const int64_t lo = rows[0].lo, hi = rows[R - 1].hi;  // rows are ordered by position
  const int n_segs = lo <= hi ? pb.sources[task.seq]->segments(lo, hi, g0, segs) : 0;
  attend(pb.shape, rows.data(), R, segs, n_segs, {m.data(), l.data(), o.data()});
  if (task.partial < 0) {
    for (int64_t r = 0; r < R; ++r) {
      const int64_t j = task.j0 + r / task.nh, h = task.h0 + r % task.nh;
      float* out = pb.o + ((t0 + j) * pb.Hq + h) * Dv;
      const float inv = l[r] > 0 ? 1.0f / l[r] : 0.0f;
      for (int64_t i = 0; i < Dv; ++i) out[i] = o[r * Dv + i] * inv;
    }
  } else {  // slot layout per row: m, l, o[Dv]
    float* slot = partials.data() + task.partial * R * (Dv + 2);
    for (int64_t r = 0; r < R; ++r) {
      slot[r * (Dv + 2)] = m[r];
      slot[r * (Dv + 2) + 1] = l[r];
      std::memcpy(slot + r * (Dv + 2) + 2, o.data() + r * Dv, size_t(Dv) * 4);
    }
  }
}

// Merges the partial states of split tasks [first, last) (one token, all heads) into the output.
void merge_partials(const Problem& pb, std::span<const Task> split, const std::vector<float>& partials) {
  const int64_t Dv = pb.shape.Dv, Hq = pb.Hq;
  const Task& t = split[0];
  for (int64_t h = 0; h < Hq; ++h) {
    auto slot = [&](const Task& x) { return partials.data() + (x.partial * Hq + h) * (Dv + 2); };
    float m = -INFINITY;
    for (const Task& x : split) m = std::max(m, slot(x)[0]);
    float* out = pb.o + ((pb.offsets[t.seq] + t.j0) * Hq + h) * Dv;
    std::fill(out, out + Dv, 0.0f);
    float l = 0;
    for (const Task& x : split) {
      const float* sl = slot(x);
      if (sl[1] == 0) continue;
      const float w = std::exp(sl[0] - m);
      l += sl[1] * w;
      for (int64_t d = 0; d < Dv; ++d) out[d] += sl[2 + d] * w;
    }
    const float inv = l > 0 ? 1.0f / l : 0.0f;
    for (int64_t d = 0; d < Dv; ++d) out[d] *= inv;
  }
}

void solve(const Problem& pb, SimdLevel level, bool decode) {
  const int64_t n_seqs = int64_t(pb.offsets.size()) - 1;
  std::vector<Task> tasks;
  int64_t n_partials = 0;
  if (decode) {  // one token per sequence, all heads per task; split long caches across threads
    const int64_t want = 4 * int64_t(num_threads());
    for (int64_t s = 0; s < n_seqs; ++s) {
      const int64_t end = pb.past[s] + 1, first = pb.window ? std::max<int64_t>(0, end - pb.window) : 0;
      const int64_t keys = end - first;
      const int64_t splits = std::clamp<int64_t>(want / n_seqs, 1, std::max<int64_t>(1, keys / kMinSplit));
      if (splits == 1) {
        tasks.push_back({s, 0, pb.Hq, 0, 1, first, end - 1, -1});
        continue;
      }
      const int64_t step = (keys + splits - 1) / splits;
      for (int64_t k0 = first; k0 < end; k0 += step)
        tasks.push_back({s, 0, pb.Hq, 0, 1, k0, std::min(end, k0 + step) - 1, n_partials++});
    }
  } else {
    const int64_t q_block = std::max<int64_t>(1, kQueryRows / pb.group);
    for (int64_t s = 0; s < n_seqs; ++s) {
      const int64_t n = pb.offsets[s + 1] - pb.offsets[s];
      for (int64_t g = 0; g < pb.Hkv; ++g)
        for (int64_t j0 = 0; j0 < n; j0 += q_block)
          tasks.push_back({s, g * pb.group, pb.group, j0, std::min(n, j0 + q_block), 0, pb.past[s] + n - 1, -1});
    }
  }
  std::vector<float> partials(size_t(n_partials * pb.Hq * (pb.shape.Dv + 2)));
  const AttendRowsFn attend = attend_fn(level);
  parallel_for(0, int64_t(tasks.size()), [&](int64_t a, int64_t b) {
    for (int64_t i = a; i < b; ++i) run_task(pb, tasks[i], attend, partials);
  });
  for (size_t i = 0; i < tasks.size();) {  // split tasks of one sequence are consecutive
    size_t e = i + 1;
    if (tasks[i].partial >= 0) {
      while (e < tasks.size() && tasks[e].partial >= 0 && tasks[e].seq == tasks[i].seq) ++e;
      merge_partials(pb, std::span<const Task>(tasks).subspan(i, e - i), partials);
    }
    i = e;
  }
}

Problem make_problem(const float* q, const AttentionDims& d, std::span<const int64_t> offsets, float* o,
                     int64_t window) {
  Problem pb;
  pb.shape = {d.qk_dim, d.v_dim, d.scale};
  pb.Hq = d.n_heads;
  pb.Hkv = d.n_kv_heads;
  pb.group = d.n_heads / d.n_kv_heads;
  pb.window = window;
  pb.q = q;
  pb.o = o;
  pb.offsets = offsets;
  return pb;
}

bool one_token_each(std::span<const int64_t> offsets) {
  for (size_t s = 0; s + 1 < offsets.size(); ++s)
    if (offsets[s + 1] - offsets[s] != 1) return false;
  return true;
}

std::vector<int64_t> unit_offsets(size_t n) {
  std::vector<int64_t> offsets(n + 1);
  for (size_t i = 0; i <= n; ++i) offsets[i] = int64_t(i);
  return offsets;
}

void full_attention(const float* q, const AttentionDims& d, std::span<const int64_t> offsets,
                    std::span<const KvCache> kv, float* o, SimdLevel level, bool decode) {
  check_dims(d, "attention");
  LINFER_CHECK(kv.size() + 1 == offsets.size(), "attention: {} caches for {} sequences", kv.size(),
               offsets.size() - 1);
  Problem pb = make_problem(q, d, offsets, o, 0);
  std::vector<CacheSource> sources(kv.size());
  for (size_t s = 0; s < kv.size(); ++s) {
    const int64_t n = offsets[s + 1] - offsets[s];
    LINFER_CHECK(kv[s].len >= n, "attention: sequence {} has {} new tokens but its cache holds {} rows", s, n,
                 kv[s].len);
    sources[s].kv = &kv[s];
    sources[s].Hkv = d.n_kv_heads;
    sources[s].D = d.qk_dim;
    sources[s].Dv = d.v_dim;
    pb.past.push_back(kv[s].len - n);
    pb.sources.push_back(&sources[s]);
  }
  solve(pb, level, decode || one_token_each(offsets));
}

}  // namespace

void attention_prefill(const float* q, const AttentionDims& d, std::span<const int64_t> offsets,
                       std::span<const KvCache> kv, float* o, SimdLevel level) {
  full_attention(q, d, offsets, kv, o, level, false);
}

void attention_decode(const float* q, const AttentionDims& d, std::span<const KvCache> kv, float* o,
                      SimdLevel level) {
  const auto offsets = unit_offsets(kv.size());
  full_attention(q, d, offsets, kv, o, level, true);
}

void sliding_attention_prefill(const float* q, const float* k_new, const float* v_new, const AttentionDims& d,
                               int64_t window, std::span<const int64_t> offsets, std::span<const KvRing> rings,
                               float* o, SimdLevel level) {
  check_dims(d, "sliding_attention");
  LINFER_CHECK(window >= 1, "sliding_attention: window must be positive, got {}", window);
  LINFER_CHECK(rings.size() + 1 == offsets.size(), "sliding_attention: {} rings for {} sequences", rings.size(),
               offsets.size() - 1);
  Problem pb = make_problem(q, d, offsets, o, window);
  std::vector<RingSource> sources(rings.size());
  for (size_t s = 0; s < rings.size(); ++s) {
    LINFER_CHECK(rings[s].capacity >= window - 1 && rings[s].capacity > 0,
                 "sliding_attention: ring of {} rows cannot hold a window of {}", rings[s].capacity, window);
    sources[s] = {};
    sources[s].ring = &rings[s];
    sources[s].k_new = k_new + offsets[s] * d.n_kv_heads * d.qk_dim;
    sources[s].v_new = v_new + offsets[s] * d.n_kv_heads * d.v_dim;
    sources[s].Hkv = d.n_kv_heads;
    sources[s].D = d.qk_dim;
    sources[s].Dv = d.v_dim;
    pb.past.push_back(rings[s].past);
    pb.sources.push_back(&sources[s]);
  }
  solve(pb, level, one_token_each(offsets));
}

void sliding_attention_decode(const float* q, const float* k_new, const float* v_new, const AttentionDims& d,
                              int64_t window, std::span<const KvRing> rings, float* o, SimdLevel level) {
  const auto offsets = unit_offsets(rings.size());
  sliding_attention_prefill(q, k_new, v_new, d, window, offsets, rings, o, level);
}

void ring_write(const KvRing& ring, const float* k_new, const float* v_new, int64_t n, int64_t n_kv_heads,
                int64_t qk_dim, int64_t v_dim) {
  LINFER_CHECK(ring.capacity > 0, "ring_write: ring has no rows");
  const int64_t kr = n_kv_heads * qk_dim, vr = n_kv_heads * v_dim;
  for (int64_t i = std::max<int64_t>(0, n - ring.capacity); i < n; ++i) {
    const int64_t row = (ring.past + i) % ring.capacity;
    std::memcpy(ring.k + row * kr, k_new + i * kr, size_t(kr) * 4);
    std::memcpy(ring.v + row * vr, v_new + i * vr, size_t(vr) * 4);
  }
}

}  // namespace linfer::kernels
