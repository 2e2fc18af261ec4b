#include "backend/cpu_backend.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "backend/host_slots.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/conv1d.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/quant/rows16.h"
#include "kernels/cpu/rope.h"
#include "linfer/core/aligned.h"
#include "linfer/core/error.h"
#include "linfer/core/mmap_file.h"
#include "linfer/core/weight_arena.h"

namespace linfer {

namespace {

// Per-thread scratch stack: slot t is reused by the t-th live buffer of every call, grown on demand. A
// forward pass runs on one calling thread (kernels fan out on the pool with their own buffers).
std::vector<AlignedVector<float>>& scratch_slots() {
  thread_local std::vector<AlignedVector<float>> slots;
  return slots;
}
size_t& scratch_top() {
  thread_local size_t t = 0;
  return t;
}

// Each sequence's pointer to one state tensor, as the kernels take them; the buffer is reused.
std::span<float* const> state_ptrs(const StateRef& s) {
  thread_local std::vector<float*> v;
  v.resize(s.seqs.size());
  for (size_t i = 0; i < s.seqs.size(); ++i) v[i] = s.seqs[i]->data(s.tensor);
  return v;
}

const float* opt(const Param& p) { return p.empty() ? nullptr : p.p; }

// The bytes from a view's first element to the end of its last (a block type's view ends on a whole block); 0 for
// an empty view or one with a negative stride.
size_t spanned_bytes(const TensorView& v) {
  if (v.numel() == 0) return 0;
  int64_t last = 0;  // the offset of the last element, in elements
  for (int i = 0; i < v.ndim(); ++i) {
    if (v.strides()[i] < 0) return 0;
    last += (v.dim(i) - 1) * v.strides()[i];
  }
  const int64_t bs = dtype_block(v.dtype());
  return dtype_nbytes(v.dtype(), (last + bs) / bs * bs);
}

bool all_dense(std::initializer_list<const Mat*> ms) {
  for (const Mat* m : ms)
    if (!m->dense()) return false;
  return true;
}

}  // namespace

Backend& cpu_backend() {
  static CpuBackend be;
  return be;
}

bool CpuBackend::supports(Op op, DType weights) const {
  // Op::MoeRoute is for backends across a bus from the host; here Moe::forward routes on the host anyway.
  return op != Op::MoeRoute &&
         (weights == DType::F32 || weights == DType::BF16 || weights == DType::F16 || is_quantized(weights));
}

Weight CpuBackend::weight(const TensorView& host, WeightUse use) {
  using namespace kernels::quant;
  const std::optional<DType> t16 = rows16_type(host.dtype());
  if (use == WeightUse::RowRanges || !t16 || host.ndim() != 2 || host.strides()[1] != 1 || !rows16_runs(simd_level()))
    return resident(host);
  const int64_t N = host.dim(0), K = host.dim(1), bs = dtype_block(host.dtype());
  LINFER_CHECK(K % bs == 0 && host.strides()[0] % bs == 0,
               "a {} weight needs K (here {}) and its row stride (here {}) to be whole blocks of {}",
               dtype_name(host.dtype()), K, host.strides()[0], bs);
  auto packed = std::make_shared<AlignedVector<uint8_t>>(size_t(rows16_bytes(*t16, N, K)));
  const auto row_bytes = int64_t(dtype_nbytes(host.dtype(), host.strides()[0]));
  repack_rows16(*t16, host.data(), N, K, row_bytes, packed->data());
  // the source is not read again: where a checkpoint file maps it, its pages leave memory
  release_mapped(host.data(), spanned_bytes(host));
  return {TensorView(packed->data(), *t16, {N, K}), packed};
}

Weight CpuBackend::resident(const TensorView& host) {
  const size_t bytes = spanned_bytes(host);
  if (!resident_weights() || bytes == 0) return {host, nullptr};
  auto copy = arena_.copy(host.data(), bytes);
  if (!copy) {
    if (!told_mapped_.exchange(true))
      std::fprintf(stderr, "linfer: memory is short: weights not yet copied stay mapped from the checkpoint file\n");
    return {host, nullptr};
  }
  release_mapped(host.data(), bytes);  // where a checkpoint file maps the source, its pages leave memory
  return {TensorView(const_cast<std::byte*>(copy.get()), host.dtype(), host.shape(), host.strides()), copy};
}

Param CpuBackend::param(const Tensor& host) {
  if (host.numel() == 0) return {};
  auto keep = std::make_shared<Tensor>(host);
  return {keep->f32(), keep->numel(), keep};
}

void CpuBackend::download(const Mat& src, float* dst) {
  if (src.p == dst && src.dense()) return;
  for (int64_t r = 0; r < src.rows; ++r) std::memmove(dst + r * src.cols, src.row(r), src.cols * sizeof(float));
}

void CpuBackend::upload(const float* src, const Mat& dst) {
  if (src == dst.p && dst.dense()) return;
  for (int64_t r = 0; r < dst.rows; ++r) std::memmove(dst.row(r), src + r * dst.cols, dst.cols * sizeof(float));
}

size_t CpuBackend::scratch_mark() { return scratch_top(); }
void CpuBackend::scratch_release(size_t mark) { scratch_top() = mark; }
float* CpuBackend::scratch(int64_t n) {
  auto& slots = scratch_slots();
  size_t& t = scratch_top();
  if (t == slots.size()) slots.emplace_back();
  auto& v = slots[t++];
  if (int64_t(v.size()) < n) v.resize(size_t(n));
  return v.data();
}

std::unique_ptr<StateSlots> CpuBackend::make_slots(const StateSpec& spec, int n) {
  return std::make_unique<HostStateSlots>(spec, n);
}

// ---- dense ops ----

void CpuBackend::matmul(const Mat& x, const Weight& w, const Param& bias, const Mat& y) {
  LINFER_CHECK(all_dense({&x, &y}) && x.rows == y.rows, "cpu matmul: x and y must be dense with equal rows");
  kernels::matmul(x.p, x.rows, w.view, opt(bias), y.p);
}

void CpuBackend::matmul_many(std::span<const MatmulCall> calls) {
  thread_local std::vector<kernels::MatmulArgs> args;  // reused: decode allocates nothing
  args.clear();
  for (const MatmulCall& c : calls) {
    LINFER_CHECK(all_dense({&c.x, &c.y}) && c.x.rows == c.y.rows, "cpu matmul: x and y must be dense with equal rows");
    args.push_back({c.x.p, c.x.rows, &c.w->view, c.bias ? opt(*c.bias) : nullptr, c.y.p});
  }
  kernels::matmul_many(args);
}

void CpuBackend::embedding(const Weight& table, std::span<const int32_t> ids, const Mat& y) {
  LINFER_CHECK(y.dense(), "cpu embedding: y must be dense");
  kernels::embedding(table.view, ids, y.p);
}

void CpuBackend::rms_norm(const Mat& x, const Param& w, const Mat& y, float eps, kernels::NormWeight mode) {
  if (all_dense({&x, &y})) return kernels::rms_norm(x.p, opt(w), y.p, x.rows, x.cols, eps, mode);
  for (int64_t r = 0; r < x.rows; ++r) kernels::rms_norm(x.row(r), opt(w), y.row(r), 1, x.cols, eps, mode);
}

void CpuBackend::rms_norm_gated(const Mat& x, const Mat& gate, const Param& w, const Mat& y, float eps,
                                kernels::GateAct act) {
  if (all_dense({&x, &gate, &y})) return kernels::rms_norm_gated(x.p, gate.p, w.p, y.p, x.rows, x.cols, eps, act);
  for (int64_t r = 0; r < x.rows; ++r)
    kernels::rms_norm_gated(x.row(r), gate.row(r), w.p, y.row(r), 1, x.cols, eps, act);
}

void CpuBackend::rms_norm_gate_first(const Mat& x, const Mat& z, const Param& w, const Mat& y, int64_t group,
                                     float eps) {
  if (all_dense({&x, &z, &y})) return kernels::rms_norm_gate_first(x.p, z.p, w.p, y.p, x.rows, x.cols, group, eps);
  for (int64_t r = 0; r < x.rows; ++r)
    kernels::rms_norm_gate_first(x.row(r), z.row(r), w.p, y.row(r), 1, x.cols, group, eps);
}

void CpuBackend::unary(Unary f, const Mat& x, const Mat& y) {
  auto run = [f](const float* a, float* b, int64_t n) {
    switch (f) {
      case Unary::Sigmoid: return kernels::sigmoid(a, b, n);
      case Unary::Softplus: return kernels::softplus(a, b, n);
      case Unary::Silu: return kernels::silu(a, b, n);
    }
  };
  if (all_dense({&x, &y})) return run(x.p, y.p, x.size());
  for (int64_t r = 0; r < x.rows; ++r) run(x.row(r), y.row(r), x.cols);
}

void CpuBackend::swiglu(const Mat& gate, const Mat& up, const Mat& y) {
  const bool packed = up.p == gate.p + gate.cols && up.cols == gate.cols && gate.ld == 2 * gate.cols &&
                      up.ld == gate.ld && y.dense();
  if (packed) return kernels::swiglu_packed(gate.p, y.p, gate.rows, gate.cols);
  if (all_dense({&gate, &up, &y})) return kernels::swiglu(gate.p, up.p, y.p, gate.size());
  for (int64_t r = 0; r < gate.rows; ++r) kernels::swiglu(gate.row(r), up.row(r), y.row(r), gate.cols);
}

void CpuBackend::add(const Mat& y, const Mat& x) {
  for (int64_t r = 0; r < y.rows; ++r) {
    float* a = y.row(r);
    const float* b = x.row(r);
    for (int64_t c = 0; c < y.cols; ++c) a[c] += b[c];
  }
}

void CpuBackend::mul(const Mat& y, const Mat& x) {
  for (int64_t r = 0; r < y.rows; ++r) {
    float* a = y.row(r);
    const float* b = x.row(r);
    for (int64_t c = 0; c < y.cols; ++c) a[c] *= b[c];
  }
}

void CpuBackend::copy(const Mat& src, const Mat& dst) {
  for (int64_t r = 0; r < src.rows; ++r) std::memcpy(dst.row(r), src.row(r), src.cols * sizeof(float));
}

void CpuBackend::fill(const Mat& y, float value) {
  for (int64_t r = 0; r < y.rows; ++r) std::fill(y.row(r), y.row(r) + y.cols, value);
}

void CpuBackend::decay_gate(const Mat& g, const Param& dt_bias, const Param& A_log, int64_t per_head) {
  for (int64_t r = 0; r < g.rows; ++r)
    for (int64_t c = 0; c < g.cols; ++c) g.row(r)[c] += dt_bias.p[c];
  unary(Unary::Softplus, g, g);
  for (int64_t r = 0; r < g.rows; ++r)
    for (int64_t h = 0; h < g.cols / per_head; ++h) {
      const float a = -std::exp(A_log.p[h]);
      float* gh = g.row(r) + h * per_head;
      for (int64_t i = 0; i < per_head; ++i) gh[i] *= a;
    }
}

void CpuBackend::scale_rows_sigmoid(const Mat& y, const Mat& g) {
  for (int64_t t = 0; t < y.rows; ++t) {
    const float sg = 1.0f / (1.0f + std::exp(-g.row(t)[0]));
    for (int64_t j = 0; j < y.cols; ++j) y.row(t)[j] *= sg;
  }
}

void CpuBackend::gather_rows(const Mat& src, std::span<const int64_t> rows, const Mat& dst) {
  for (size_t j = 0; j < rows.size(); ++j) std::memcpy(dst.row(int64_t(j)), src.row(rows[j]), src.cols * sizeof(float));
}

void CpuBackend::scatter_add_rows(const Mat& src, std::span<const int64_t> rows, std::span<const float> w,
                                  const Mat& dst) {
  for (size_t j = 0; j < rows.size(); ++j) {
    const float wt = w[j];
    float* d = dst.row(rows[j]);
    const float* s = src.row(int64_t(j));
    for (int64_t c = 0; c < dst.cols; ++c) d[c] += wt * s[c];
  }
}

// ---- sequence ops ----

void CpuBackend::conv1d(const Mat& x, const Param& w, const Param& bias, int64_t W, const StateRef& state,
                        const Seqs& seqs, bool silu, const Mat& y) {
  LINFER_CHECK(y.dense(), "cpu conv1d: y must be dense");
  const int64_t x_stride = x.ld == x.cols ? 0 : x.ld;
  auto states = state_ptrs(state);
  if (seqs.decode) kernels::conv1d_step(x.p, x_stride, w.p, opt(bias), x.cols, W, states, silu, y.p);
  else kernels::conv1d_prefill(x.p, x_stride, w.p, opt(bias), x.cols, W, seqs.offsets, states, silu, y.p);
}

void CpuBackend::delta_rule(const kernels::DeltaRuleShape& shape, const DeltaIo& io, const StateRef& S,
                            const Seqs& seqs) {
  LINFER_CHECK(all_dense({&io.beta, &io.g, &io.o}), "cpu delta_rule: beta, g and o must be dense");
  kernels::DeltaRuleInputs in{.q = io.q.p, .k = io.k.p, .v = io.v.p, .beta = io.beta.p, .g = io.g.p,
                              .q_stride = io.q.ld, .k_stride = io.k.ld, .v_stride = io.v.ld};
  auto states = state_ptrs(S);
  if (seqs.decode) kernels::delta_rule_step(shape, in, states, io.o.p);
  else kernels::delta_rule_prefill(shape, in, seqs.offsets, states, io.o.p);
}

void CpuBackend::mamba2_ssd(const kernels::Mamba2Dims& dims, const Mamba2Gates& gates, const Mamba2Io& io,
                            const StateRef& S, const Seqs& seqs) {
  LINFER_CHECK(io.y.dense(), "cpu mamba2_ssd: y must be dense");
  kernels::Mamba2Params params{.A_log = gates.A_log.p, .dt_bias = gates.dt_bias.p, .D = opt(gates.D),
                               .dt_min = gates.dt_min, .dt_max = gates.dt_max};
  kernels::Mamba2Inputs in{.x = io.x.p, .dt = io.dt.p, .B = io.B.p, .C = io.C.p, .x_stride = io.x.ld,
                           .dt_stride = io.dt.ld, .B_stride = io.B.ld, .C_stride = io.C.ld};
  auto states = state_ptrs(S);
  if (seqs.decode) kernels::mamba2_ssd_step(dims, params, in, states, io.y.p);
  else kernels::mamba2_ssd_prefill(dims, params, in, seqs.offsets, states, io.y.p);
}

void CpuBackend::rope(const Mat& x, int64_t H, int64_t D, int64_t rotary_dim, const Seqs& seqs,
                      std::span<const float> inv_freq) {
  LINFER_CHECK(x.dense() && x.cols == H * D, "cpu rope: x must be dense [T, H·D]");
  kernels::rope(x.p, x.rows, H, D, rotary_dim, seqs.positions, inv_freq);
}

void CpuBackend::attention(const Mat& q, const Mat& k, const Mat& v, const kernels::AttentionDims& d,
                           const StateRef& k_cache, const StateRef& v_cache, const Seqs& seqs, const Mat& o) {
  LINFER_CHECK(all_dense({&q, &k, &v, &o}), "cpu attention: q, k, v and o must be dense");
  thread_local std::vector<kernels::KvCache> caches;
  caches.resize(size_t(seqs.n()));
  const int64_t row = k.cols;
  for (int64_t i = 0; i < seqs.n(); ++i) {
    const int64_t b = seqs.offsets[i], n = seqs.offsets[i + 1] - b;
    SequenceState& st = *k_cache.seqs[i];
    std::memcpy(st.append_rows(k_cache.tensor, n), k.p + b * row, n * row * sizeof(float));
    std::memcpy(st.append_rows(v_cache.tensor, n), v.p + b * row, n * row * sizeof(float));
    caches[i] = {st.data(k_cache.tensor), st.data(v_cache.tensor), st.rows(k_cache.tensor)};
  }
  if (seqs.decode) kernels::attention_decode(q.p, d, caches, o.p);
  else kernels::attention_prefill(q.p, d, seqs.offsets, caches, o.p);
}

void CpuBackend::mla(const Mat& q, const Mat& latent, const Weight& kv_b, const Weight& k_t,
                     const kernels::MlaDims& d, const StateRef& cache, const Seqs& seqs, const Mat& o) {
  LINFER_CHECK(all_dense({&q, &latent, &o}), "cpu mla: q, latent and o must be dense");
  thread_local std::vector<kernels::MlaCache> caches;
  caches.resize(size_t(seqs.n()));
  const int64_t L = latent.cols;
  for (int64_t i = 0; i < seqs.n(); ++i) {
    const int64_t b = seqs.offsets[i], n = seqs.offsets[i + 1] - b;
    SequenceState& st = *cache.seqs[i];
    std::memcpy(st.append_rows(cache.tensor, n), latent.p + b * L, n * L * sizeof(float));
    caches[i] = {st.data(cache.tensor), st.rows(cache.tensor)};
  }
  kernels::mla_attention(q.p, d, {kv_b.view, k_t.view}, seqs.offsets, caches, o.p);
}

}  // namespace linfer
