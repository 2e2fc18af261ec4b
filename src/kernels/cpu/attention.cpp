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
  static float dot(const float* a, const float* b, int64_t n) {
    float r = 0;
    for (int64_t i = 0; i < n; ++i) r += a[i] * b[i];
    return r;
  }
  static void scale(float* o, float alpha, int64_t n) {
    for (int64_t i = 0; i < n; ++i) o[i] *= alpha;
  }
  static void axpy(float* o, float p, const float* v, int64_t n) {
    for (int64_t i = 0; i < n; ++i) o[i] += p * v[i];
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

AttendRowsFn attend_fn(SimdLevel level) { return level >= SimdLevel::Avx2 ? avx2::attend_rows : scalar::attend_rows; }

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

// One unit of work: queries [j0, j1) of sequence `seq` (local indices), grouped heads of KV head g,
// keys [k0, k1] of what they may see. partial < 0: finish into the output; else write the running
// state to partial slot `partial` for a later merge.
struct Task {
  int64_t seq, g, j0, j1, k0, k1;
  int64_t partial;
};

struct Problem {
  AttnShape shape;
  int64_t Hq, Hkv, group, window;  // window 0: full attention
  const float* q;
  float* o;
  std::span<const int64_t> offsets;
  std::vector<int64_t> past;                    // per sequence: position of its first query
  std::vector<const KeySource*> sources;        // per sequence
};

// Row r of a task: token j0 + r / group, head g·group + r % group.
void run_task(const Problem& pb, const Task& task, AttendRowsFn attend, std::vector<float>& partials) {
  const int64_t R = (task.j1 - task.j0) * pb.group, Dv = pb.shape.Dv;
  thread_local std::vector<AttnRow> rows;
  thread_local std::vector<float> m, l, o;
  rows.resize(size_t(R));
  m.assign(size_t(R), -INFINITY);
  l.assign(size_t(R), 0.0f);
  o.assign(size_t(R * Dv), 0.0f);
  const int64_t t0 = pb.offsets[task.seq], past = pb.past[task.seq];
  for (int64_t r = 0; r < R; ++r) {
    const int64_t j = task.j0 + r / pb.group, h = task.g * pb.group + r % pb.group;
    const int64_t pos = past + j;
    rows[r] = {pb.q + ((t0 + j) * pb.Hq + h) * pb.shape.D, pb.window ? std::max<int64_t>(0, pos - pb.window + 1) : 0,
               pos};
    rows[r].lo = std::max(rows[r].lo, task.k0);
    rows[r].hi = std::min(rows[r].hi, task.k1);
  }
  KvSegment segs[3];
  const int64_t lo = rows[0].lo, hi = rows[R - 1].hi;  // rows are ordered by position
  const int n_segs = lo <= hi ? pb.sources[task.seq]->segments(lo, hi, task.g, segs) : 0;
  attend(pb.shape, rows.data(), R, segs, n_segs, {m.data(), l.data(), o.data()});
  if (task.partial < 0) {
    for (int64_t r = 0; r < R; ++r) {
      const int64_t j = task.j0 + r / pb.group, h = task.g * pb.group + r % pb.group;
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

// Prefill tasks: query blocks of ~kQueryRows rows; decode (one query) may split long key ranges.
void solve(const Problem& pb, SimdLevel level, bool split_keys) {
  const int64_t n_seqs = int64_t(pb.offsets.size()) - 1;
  std::vector<Task> tasks;
  int64_t n_partials = 0;
  const int64_t q_block = std::max<int64_t>(1, kQueryRows / pb.group);
  const int64_t want = 4 * int64_t(num_threads());
  for (int64_t s = 0; s < n_seqs; ++s) {
    const int64_t n = pb.offsets[s + 1] - pb.offsets[s];
    for (int64_t g = 0; g < pb.Hkv; ++g) {
      for (int64_t j0 = 0; j0 < n; j0 += q_block) {
        const int64_t j1 = std::min(n, j0 + q_block), keys = pb.past[s] + j1;
        int64_t splits = 1;
        if (split_keys && n == 1)
          splits = std::clamp<int64_t>(want / std::max<int64_t>(1, n_seqs * pb.Hkv), 1, std::max<int64_t>(1, keys / kMinSplit));
        if (splits == 1) {
          tasks.push_back({s, g, j0, j1, 0, keys - 1, -1});
          continue;
        }
        const int64_t step = (keys + splits - 1) / splits;
        for (int64_t k0 = 0; k0 < keys; k0 += step)
          tasks.push_back({s, g, j0, j1, k0, std::min(keys, k0 + step) - 1, n_partials++});
      }
    }
  }
  const int64_t R1 = pb.group, Dv = pb.shape.Dv;  // split tasks are single-query: group rows
  std::vector<float> partials(size_t(n_partials * R1 * (Dv + 2)));
  const AttendRowsFn attend = attend_fn(level);
  parallel_for(0, int64_t(tasks.size()), [&](int64_t a, int64_t b) {
    for (int64_t i = a; i < b; ++i) run_task(pb, tasks[i], attend, partials);
  });
  // Merge split partials: consecutive tasks of one (sequence, head group).
  for (size_t i = 0; i < tasks.size();) {
    if (tasks[i].partial < 0) {
      ++i;
      continue;
    }
    size_t e = i;
    while (e < tasks.size() && tasks[e].partial >= 0 && tasks[e].seq == tasks[i].seq && tasks[e].g == tasks[i].g) ++e;
    const Task& t = tasks[i];
    for (int64_t r = 0; r < R1; ++r) {
      float m = -INFINITY;
      for (size_t x = i; x < e; ++x) m = std::max(m, partials[(tasks[x].partial * R1 + r) * (Dv + 2)]);
      float* out = pb.o + ((pb.offsets[t.seq] + t.j0) * pb.Hq + t.g * pb.group + r) * Dv;
      std::fill(out, out + Dv, 0.0f);
      float l = 0;
      for (size_t x = i; x < e; ++x) {
        const float* slot = partials.data() + (tasks[x].partial * R1 + r) * (Dv + 2);
        if (slot[1] == 0) continue;
        const float w = std::exp(slot[0] - m);
        l += slot[1] * w;
        for (int64_t d = 0; d < Dv; ++d) out[d] += slot[2 + d] * w;
      }
      const float inv = l > 0 ? 1.0f / l : 0.0f;
      for (int64_t d = 0; d < Dv; ++d) out[d] *= inv;
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
  solve(pb, level, decode);
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
  solve(pb, level, false);
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
