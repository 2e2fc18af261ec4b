#include "backend/cuda/cuda_backend.h"

#include <cstdlib>
#include <cstring>
#include <string_view>

#include <algorithm>
#include <array>

#include "backend/cuda/cuda_slots.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/cache_rows.h"
#include "kernels/cuda/conv1d.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/delta_rule_decode.h"
#include "kernels/cuda/delta_rule_prefill.h"
#include "kernels/cuda/dense.h"
#include "kernels/cuda/expert_gemm.h"
#include "kernels/cuda/linear_attn_decode.h"
#include "kernels/cuda/moe_route.h"
#include "kernels/cuda/rope.h"
#include "linfer/core/error.h"

namespace linfer {

namespace kc = kernels::cuda;
using kc::cuda_check;

namespace {

kc::Rows rows(const Mat& m) { return {m.p, m.rows, m.cols, m.ld}; }
kc::SlotPool pool(const StateRef& s) { return {s.base, s.stride}; }

// Whether an M-row product with weights of dtype w runs as GEMVs (kGemvMaxRows rows per launch, each launch
// reading the weight) rather than a cuBLAS GEMM: one launch for float32 weights, two for 2-byte ones, which
// take two more launches around theirs (bf16: x split into terms, then their products summed; f16: the weight
// widened). Measured on an H200 (docs/benchmarks.md, 2026-12-03, against widening + GEMM): at 16 rows two GEMV
// launches won by 1.2-1.3x in a whole decode step; at 32 rows four lost by 0.85-0.95x.
bool gemv_wins(int64_t M, DType w) {
  const int64_t passes = (M + kc::kGemvMaxRows - 1) / kc::kGemvMaxRows;
  return passes <= 1 || (w != DType::F32 && passes <= 2);
}
const float* opt(const Param& p) { return p.empty() ? nullptr : p.p; }

void blas_check(cublasStatus_t st, const char* what) {
  if (st != CUBLAS_STATUS_SUCCESS) fail("{}: cuBLAS error {} ({})", what, int(st), cublasGetStatusString(st));
}

// A device allocation freed with its last handle.
std::shared_ptr<const void> device_alloc(size_t bytes, void** p) {
  cuda_check(cudaMalloc(p, bytes ? bytes : 1), "cudaMalloc of a weight");
  return {*p, [](const void* q) { cudaFree(const_cast<void*>(q)); }};
}

}  // namespace

std::shared_ptr<Backend> make_cuda_backend() { return std::make_shared<CudaBackend>(); }

CudaBackend::CudaBackend() {
  std::string why;
  if (kc::device_count(&why) == 0)
    fail("--device cuda: no usable CUDA device ({}); run with --device cpu", why);
  cuda_check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
  blas_check(cublasCreate(&blas_), "cublasCreate");
  blas_check(cublasSetStream(blas_, stream_), "cublasSetStream");
  // Float32 GEMMs stay float32 (the default math mode takes no TF32 shortcut; the references are fp32).
  blas_check(cublasSetMathMode(blas_, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
  const char* graphs = std::getenv("LINFER_CUDA_GRAPHS");
  graphs_ = !(graphs && std::string_view(graphs) == "0");
}

CudaBackend::~CudaBackend() {
  if (stream_) cudaStreamSynchronize(stream_);
  forget_recordings();
  for (auto& [p, n] : scratch_) cudaFree(p);
  cudaFree(widened_);
  cudaFree(expert_scratch_);
  cudaFree(split_x_);
  cudaFree(split_c_);
  for (Staged* s : {&ids_, &offsets_, &positions_, &inv_freq_, &attn_seqs_}) cudaFree(s->p);
  if (blas_) cublasDestroy(blas_);
  if (stream_) cudaStreamDestroy(stream_);
}

bool CudaBackend::supports(Op op, DType weights) const {
  switch (op) {
    case Op::Matmul:
    case Op::Embedding: return weights == DType::F32 || weights == DType::BF16 || weights == DType::F16;
    case Op::RmsNorm:
    case Op::RmsNormGated:
    case Op::RmsNormGateFirst:
    case Op::Unary:
    case Op::Swiglu:
    case Op::Add:
    case Op::Mul:
    case Op::Copy:
    case Op::Fill:
    case Op::DecayGate:
    case Op::Conv1d:
    case Op::DeltaRule:
    case Op::Mamba2Ssd:
    case Op::ScaleRowsSigmoid:
    case Op::Rope:
    case Op::Attention:
    case Op::Mla:
    case Op::MoeRoute: return true;
    case Op::GatherRows:  // the host-routed MoE's row moves: this backend routes on the device
    case Op::ScatterAddRows: return false;
  }
  return false;
}

// ---- memory ----

Weight CudaBackend::weight(const TensorView& host, WeightUse) {
  LINFER_CHECK(host.ndim() == 2, "cuda weight: expected a matrix, found shape {}", shape_str(host.shape()));
  LINFER_CHECK(!is_quantized(host.dtype()), "a {} weight: the cuda backend has no kernels for quantized weights yet "
               "(run with --device cpu, or load the unquantized checkpoint)", dtype_name(host.dtype()));
  const size_t row_bytes = size_t(host.dim(1)) * dtype_size(host.dtype());
  void* p = nullptr;
  auto owner = device_alloc(row_bytes * size_t(host.dim(0)), &p);
  const size_t pitch = size_t(host.strides()[0]) * dtype_size(host.dtype());
  cuda_check(cudaMemcpy2D(p, row_bytes, host.data(), pitch, row_bytes, size_t(host.dim(0)), cudaMemcpyHostToDevice),
             "upload of a weight");
  return {TensorView(p, host.dtype(), host.shape()), owner};
}

Param CudaBackend::param(const Tensor& host) {
  if (host.view().empty() || host.numel() == 0) return {};  // a default Tensor: no data, shape {} (numel 1)
  void* p = nullptr;
  auto owner = device_alloc(host.nbytes(), &p);
  cuda_check(cudaMemcpy(p, host.f32(), host.nbytes(), cudaMemcpyHostToDevice), "upload of a parameter");
  return {static_cast<const float*>(p), host.numel(), owner};
}

void CudaBackend::download(const Mat& src, float* dst) {
  if (src.size() == 0) return;
  cuda_check(cudaMemcpy2DAsync(dst, src.cols * sizeof(float), src.p, src.ld * sizeof(float), src.cols * sizeof(float),
                               src.rows, cudaMemcpyDeviceToHost, stream_),
             "download to the host");
  cuda_check(cudaStreamSynchronize(stream_), "download to the host");
}

void CudaBackend::upload(const float* src, const Mat& dst) {
  if (dst.size() == 0) return;
  cuda_check(cudaMemcpy2DAsync(dst.p, dst.ld * sizeof(float), src, dst.cols * sizeof(float), dst.cols * sizeof(float),
                               dst.rows, cudaMemcpyHostToDevice, stream_),
             "upload to the device");
  cuda_check(cudaStreamSynchronize(stream_), "upload to the device");
}

float* CudaBackend::scratch(int64_t n) {
  if (top_ == scratch_.size()) scratch_.push_back({nullptr, 0});
  auto& [p, cap] = scratch_[top_++];
  if (cap < n) {
    cuda_check(cudaStreamSynchronize(stream_), "scratch growth");  // queued kernels may still use the old one
    forget_recordings();
    cudaFree(p);
    p = nullptr;
    cuda_check(cudaMalloc(&p, size_t(n) * sizeof(float)), "cudaMalloc of scratch");
    cap = n;
  }
  return p;
}

const void* CudaBackend::stage(Staged& s, const void* host, size_t bytes) {
  if (s.last.size() == bytes && std::memcmp(s.last.data(), host, bytes) == 0) return s.p;
  reserve(s.p, s.bytes, bytes, "staging");
  // Stream-ordered after the kernels that read the previous contents.
  cuda_check(cudaMemcpyAsync(s.p, host, bytes, cudaMemcpyHostToDevice, stream_), "upload of indices");
  s.last.assign(static_cast<const char*>(host), static_cast<const char*>(host) + bytes);
  return s.p;
}

void CudaBackend::reserve(void*& p, size_t& have, size_t need, const char* what) {
  if (have >= need) return;
  cuda_check(cudaStreamSynchronize(stream_), what);
  forget_recordings();
  cudaFree(p);
  p = nullptr;
  have = 0;
  cuda_check(cudaMalloc(&p, need), what);
  have = need;
}

const int64_t* CudaBackend::on_device(Staged& s, std::span<const int64_t> host, const int64_t* bound) {
  return bound ? bound : static_cast<const int64_t*>(stage(s, host.data(), host.size_bytes()));
}

std::unique_ptr<StateSlots> CudaBackend::make_slots(const StateSpec& spec, int n) {
  return std::make_unique<CudaStateSlots>(*this, spec, n);
}

// ---- dense ops ----

void CudaBackend::matmul(const Mat& x, const Weight& w, const Param& bias, const Mat& y) {
  const int64_t M = x.rows, N = w.dim(0), K = w.dim(1);
  LINFER_CHECK(x.cols == K && y.rows == M && y.cols == N, "cuda matmul: x [{}, {}] · w [{}, {}]ᵀ -> y [{}, {}]", M,
               x.cols, N, K, y.rows, y.cols);
  if (gemv_wins(M, w.view.dtype()))
    return kc::gemv(rows(x), w.view.data(), w.view.dtype(), N, K, opt(bias), rows(y), stream_);
  if (w.view.dtype() == DType::BF16) return matmul_bf16(x, w, bias, y);
  const float* wf = w.view.as<float>();
  if (w.view.dtype() != DType::F32) {
    reserve(widened_, widened_bytes_, size_t(N * K) * sizeof(float), "weight scratch");
    kc::widen(w.view.data(), w.view.dtype(), N * K, static_cast<float*>(widened_), stream_);
    wf = static_cast<const float*>(widened_);
  }
  // Column-major view: yᵀ [N, M] = w [N, K] (a K x N column-major matrix, transposed) · xᵀ [K, M].
  const float one = 1.0f, zero = 0.0f;
  blas_check(cublasSgemm(blas_, CUBLAS_OP_T, CUBLAS_OP_N, int(N), int(M), int(K), &one, wf, int(K), x.p, int(x.ld),
                         &zero, y.p, int(y.ld)),
             "cuda matmul");
  if (!bias.empty()) kc::add_bias(rows(y), bias.p, stream_);
}

// bf16 weights as stored, on the tensor cores: x's rows (kSplitRows at a time, which bounds the scratch) as three
// exact bf16 terms stacked in one bf16 GEMM, whose three row blocks are summed into y (kernels/cuda/dense.h
// split_bf16x3): float32-grade products without a float32 copy of the weight.
void CudaBackend::matmul_bf16(const Mat& x, const Weight& w, const Param& bias, const Mat& y) {
  constexpr int64_t kSplitRows = 4096;
  const int64_t M = x.rows, N = w.dim(0), K = w.dim(1), rows_each = std::min(M, kSplitRows);
  reserve(split_x_, split_x_bytes_, size_t(3 * rows_each * K) * sizeof(uint16_t), "bf16 terms of x");
  reserve(split_c_, split_c_bytes_, size_t(3 * rows_each * N) * sizeof(float), "bf16 GEMM output");
  const float one = 1.0f, zero = 0.0f;
  for (int64_t m0 = 0; m0 < M; m0 += rows_each) {
    const int64_t m = std::min(rows_each, M - m0);
    kc::split_bf16x3(rows(x.rows_of(m0, m)), static_cast<uint16_t*>(split_x_), stream_);
    // Column-major view: cᵀ [N, 3m] = w [N, K] (a K x N column-major matrix, transposed) · termsᵀ [K, 3m].
    blas_check(cublasGemmEx(blas_, CUBLAS_OP_T, CUBLAS_OP_N, int(N), int(3 * m), int(K), &one, w.view.data(),
                            CUDA_R_16BF, int(K), split_x_, CUDA_R_16BF, int(K), &zero, split_c_, CUDA_R_32F, int(N),
                            CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
               "cuda matmul (bf16)");
    kc::sum_bf16x3(static_cast<const float*>(split_c_), opt(bias), rows(y.rows_of(m0, m)), stream_);
  }
}

// Decode-sized products (gemv_wins) of one weight dtype in gemv_many launches (a layer's projections: one
// kernel); the rest one by one.
void CudaBackend::matmul_many(std::span<const MatmulCall> calls) {
  const bool together = calls.size() > 1 && std::all_of(calls.begin(), calls.end(), [&](const MatmulCall& c) {
    return c.x.rows == calls[0].x.rows && gemv_wins(c.x.rows, c.w->view.dtype()) &&
           c.w->view.dtype() == calls[0].w->view.dtype();
  });
  if (!together) return Backend::matmul_many(calls);
  std::array<kc::GemvProduct, kc::kGemvManyMax> p;
  for (size_t first = 0; first < calls.size(); first += p.size()) {
    const size_t n = std::min(p.size(), calls.size() - first);
    for (size_t i = 0; i < n; ++i) {
      const MatmulCall& c = calls[first + i];
      const int64_t N = c.w->dim(0), K = c.w->dim(1);
      LINFER_CHECK(c.x.cols == K && c.y.rows == c.x.rows && c.y.cols == N,
                   "cuda matmul_many: x [{}, {}] · w [{}, {}]ᵀ -> y [{}, {}]", c.x.rows, c.x.cols, N, K, c.y.rows,
                   c.y.cols);
      p[i] = {.x = c.x.p, .ldx = c.x.ld, .w = c.w->view.data(), .N = N, .K = K,
              .bias = c.bias ? opt(*c.bias) : nullptr, .y = c.y.p, .ldy = c.y.ld};
    }
    kc::gemv_many(p.data(), int(n), calls[0].x.rows, calls[0].w->view.dtype(), stream_);
  }
}

void CudaBackend::embedding(const Weight& table, std::span<const int32_t> ids, const Mat& y) {
  const auto* d_ids = static_cast<const int32_t*>(stage(ids_, ids.data(), ids.size_bytes()));
  kc::embedding(table.view.data(), table.view.dtype(), d_ids, rows(y), stream_);
}

void CudaBackend::rms_norm(const Mat& x, const Param& w, const Mat& y, float eps, kernels::NormWeight mode) {
  kc::rms_norm(rows(x), opt(w), rows(y), eps, mode == kernels::NormWeight::OnePlus, stream_);
}

void CudaBackend::add_rms_norm(const Mat& x, const Mat& r, const Param& w, const Mat& y, float eps,
                               kernels::NormWeight mode) {
  kc::add_rms_norm(rows(x), rows(r), opt(w), rows(y), eps, mode == kernels::NormWeight::OnePlus, stream_);
}

void CudaBackend::rms_norm_gated(const Mat& x, const Mat& gate, const Param& w, const Mat& y, float eps,
                                 kernels::GateAct act) {
  kc::rms_norm_gated(rows(x), rows(gate), opt(w), rows(y), eps, act == kernels::GateAct::Silu, stream_);
}

void CudaBackend::rms_norm_gate_first(const Mat& x, const Mat& z, const Param& w, const Mat& y, int64_t group,
                                      float eps) {
  kc::rms_norm_gate_first(rows(x), rows(z), opt(w), rows(y), group, eps, stream_);
}

void CudaBackend::unary(Unary f, const Mat& x, const Mat& y) {
  const auto e = f == Unary::Sigmoid ? kc::Elementwise::Sigmoid
                 : f == Unary::Softplus ? kc::Elementwise::Softplus
                                        : kc::Elementwise::Silu;
  kc::elementwise(e, rows(x), {}, rows(y), stream_);
}

void CudaBackend::swiglu(const Mat& gate, const Mat& up, const Mat& y) {
  // A packed [gate | up] compacted in place (y = gate's storage, narrower rows) would let one row's output
  // overwrite another row's input while it is read: go through scratch.
  if (y.p == gate.p && y.ld != gate.ld && gate.rows > 1) {
    Tmp tmp(*this);
    const Mat t = tmp.mat(y.rows, y.cols);
    kc::elementwise(kc::Elementwise::Swiglu, rows(gate), rows(up), rows(t), stream_);
    return copy(t, y);
  }
  kc::elementwise(kc::Elementwise::Swiglu, rows(gate), rows(up), rows(y), stream_);
}

void CudaBackend::add(const Mat& y, const Mat& x) { kc::elementwise(kc::Elementwise::Add, rows(x), {}, rows(y), stream_); }
void CudaBackend::mul(const Mat& y, const Mat& x) { kc::elementwise(kc::Elementwise::Mul, rows(x), {}, rows(y), stream_); }

void CudaBackend::copy(const Mat& src, const Mat& dst) {
  if (src.size() == 0) return;
  cuda_check(cudaMemcpy2DAsync(dst.p, dst.ld * sizeof(float), src.p, src.ld * sizeof(float), src.cols * sizeof(float),
                               src.rows, cudaMemcpyDeviceToDevice, stream_),
             "cuda copy");
}

void CudaBackend::fill(const Mat& y, float value) { kc::fill(rows(y), value, stream_); }

void CudaBackend::decay_gate(const Mat& g, const Param& dt_bias, const Param& A_log, int64_t per_head) {
  kc::decay_gate(rows(g), dt_bias.p, A_log.p, per_head, stream_);
}

void CudaBackend::scale_rows_sigmoid(const Mat& y, const Mat& g) { kc::scale_rows_sigmoid(rows(y), rows(g), stream_); }

// ---- a MoE's routed experts ----

ExpertTable CudaBackend::expert_table(std::span<const Weight* const> first, std::span<const Weight* const> second) {
  const int64_t E = int64_t(first.size());
  LINFER_CHECK(E > 0 && (second.empty() || int64_t(second.size()) == E),
               "cuda expert_table: {} experts' first weights, {} second ones", E, second.size());
  const TensorView& w0 = first[0]->view;
  const int64_t n1 = w0.dim(0), n2 = second.empty() ? 0 : second[0]->dim(0), K = w0.dim(1);
  std::vector<kc::ExpertRows> host(static_cast<size_t>(E));
  for (int64_t e = 0; e < E; ++e) {
    const Weight* a = first[e];
    const Weight* b = second.empty() ? nullptr : second[e];
    auto same = [&](const Weight* w, int64_t n) {
      return w->view.dtype() == w0.dtype() && w->dim(0) == n && w->dim(1) == K &&
             reinterpret_cast<uintptr_t>(w->view.data()) % 16 == 0;
    };
    LINFER_CHECK(same(a, n1) && (!b || same(b, n2)),
                 "cuda expert_table: expert {}'s weights differ from expert 0's ({} [{}, {}] then [{}, {}]) in shape, "
                 "dtype or alignment", e, dtype_name(w0.dtype()), n1, K, n2, K);
    host[size_t(e)] = {a->view.data(), b ? b->view.data() : nullptr};
  }
  void* p = nullptr;
  auto owner = device_alloc(host.size() * sizeof(kc::ExpertRows), &p);
  cuda_check(cudaMemcpy(p, host.data(), host.size() * sizeof(kc::ExpertRows), cudaMemcpyHostToDevice),
             "upload of an expert table");
  return {.experts = E, .N = n1 + n2, .K = K, .first_rows = n1, .dtype = w0.dtype(), .p = p, .owner = owner};
}

void CudaBackend::moe_route(const Mat& logits, const MoeRouting& r, const Param& bias, const Mat& ids,
                            const Mat& weights) {
  LINFER_CHECK(logits.cols == r.experts && ids.rows == logits.rows && ids.cols == r.top_k &&
                   weights.rows == logits.rows && weights.cols == r.top_k && (bias.empty() || bias.n == r.experts),
               "cuda moe_route: logits [{}, {}], ids [{}, {}], weights [{}, {}], bias {} for {} experts, top {}",
               logits.rows, logits.cols, ids.rows, ids.cols, weights.rows, weights.cols, bias.n, r.experts, r.top_k);
  kc::moe_route(rows(logits), r, opt(bias), rows(ids), rows(weights), stream_);
}

void CudaBackend::expert_matmul(const Mat& x, int64_t x_every, const ExpertTable& w, const Mat& ids, const Mat& y) {
  LINFER_CHECK(!w.empty() && ids.dense() && ids.size() == y.rows,
               "cuda expert_matmul: {} expert ids (dense: {}) for {} rows of y, table {}", ids.size(), ids.dense(),
               y.rows, w.empty() ? "empty" : "set");
  const auto* table = static_cast<const kc::ExpertRows*>(w.p);
  if (kc::expert_gemm_takes(rows(x), w.dtype, w.experts, w.K, y.rows)) {  // many rows per expert: tensor cores
    reserve(expert_scratch_, expert_scratch_bytes_, size_t(kc::expert_gemm_scratch_bytes(w.experts, y.rows, x_every, w.K)),
            "expert_gemm scratch");
    return kc::expert_gemm(rows(x), x_every, table, w.experts, w.first_rows, w.N, w.K, ids.p, rows(y),
                           expert_scratch_, stream_);
  }
  kc::expert_gemv(rows(x), x_every, table, w.experts, w.first_rows, w.dtype, w.N, w.K, ids.p, rows(y), stream_);
}

void CudaBackend::moe_combine(const Mat& src, const Mat& weights, const Mat& y) {
  kc::moe_combine(rows(src), rows(weights), rows(y), stream_);
}

// ---- sequence ops ----

void CudaBackend::conv1d(const Mat& x, const Param& w, const Param& bias, int64_t W, const StateRef& state,
                         const Seqs& seqs, bool silu, const Mat& y) {
  LINFER_CHECK(y.dense() && state.slots, "cuda conv1d: y must be dense and the states in a slot pool");
  if (seqs.decode)
    return kc::conv1d_step(x.p, x.ld, w.p, opt(bias), x.cols, W, pool(state), state.slots, seqs.n(), silu, y.p,
                           stream_);
  const int64_t* d_off = on_device(offsets_, seqs.offsets, seqs.device_offsets);
  kc::conv1d_prefill(x.p, x.ld, w.p, opt(bias), x.cols, W, d_off, seqs.n(), pool(state), state.slots, silu, y.p,
                     stream_);
}

void CudaBackend::delta_rule(const kernels::DeltaRuleShape& shape, const DeltaIo& io, const StateRef& S,
                             const Seqs& seqs) {
  LINFER_CHECK(S.slots && io.beta.dense() && io.o.dense() && (io.g.p == nullptr || io.g.dense()),
               "cuda delta_rule: beta, g and o must be dense and the states in a slot pool");
  kc::DeltaDecodeArgs a{};  // the recurrence alone: conv, gates and norm are the mixer's ops here
  a.shape = shape;
  auto inputs_at = [&](int64_t t) {  // the call's rows from token t on
    return kernels::DeltaRuleInputs{.q = io.q.row(t), .k = io.k.row(t), .v = io.v.row(t), .beta = io.beta.row(t),
                                    .g = io.g.p ? io.g.row(t) : nullptr, .q_stride = io.q.ld, .k_stride = io.k.ld,
                                    .v_stride = io.v.ld};
  };
  if (seqs.decode) {
    a.in = inputs_at(0);
    return kc::delta_rule_decode(a, pool(S), S.slots, seqs.n(), io.o.p, stream_);
  }
  // Prefill: the chunked kernel where it takes the shape (GDN, DeltaNet, KDA with K <= 128, V <= 256), else
  // token by token.
  if (kc::delta_rule_prefill_supported(shape))
    return kc::delta_rule_prefill(shape, inputs_at(0), seqs.offsets, pool(S), S.slots, io.o.p, stream_);
  for (int64_t i = 0; i < seqs.n(); ++i)
    for (int64_t t = seqs.offsets[i]; t < seqs.offsets[i + 1]; ++t) {
      a.in = inputs_at(t);
      kc::delta_rule_decode(a, pool(S), S.slots + i, 1, io.o.row(t), stream_);
    }
}

void CudaBackend::delta_layer(const kernels::DeltaRuleShape& shape, const DeltaLayerIo& io, const StateRef& S,
                              const Seqs& seqs) {
  // A decode step is one kernel (delta_rule_decode with the conv, gates and norm fused); prefill composes.
  if (!seqs.decode) return Backend::delta_layer(shape, io, S, seqs);
  LINFER_CHECK(S.slots && io.beta.dense() && io.g.dense() && io.o.dense(),
               "cuda delta_layer: beta, g and o must be dense and the states in a slot pool");
  const int64_t W = io.conv_width;
  // Channels [first, first + n) of the convs: the pre-conv input, the taps and the windows there.
  auto conv_at = [&](int64_t first, int64_t n, const float*& x, int64_t& x_stride, kc::DecodeConv& conv) {
    const auto [i, at] = io.conv_channels(first, n);
    const DeltaConv& c = io.conv[i];
    x = c.x.p + at, x_stride = c.x.ld;
    conv = {c.w.p + at * W, {c.window.base + at * (W - 1), c.window.stride}};
  };
  const int64_t kd = shape.H * shape.K, vd = shape.HV * shape.V;
  kc::DeltaDecodeArgs a{};
  a.shape = shape, a.conv_width = W, a.A_log = io.A_log.p, a.dt_bias = opt(io.dt_bias), a.beta_logits = true;
  a.norm_w = io.norm_w.p, a.norm_gate = io.gate.p, a.norm_gate_stride = io.gate.ld, a.norm_act = io.act;
  a.norm_eps = io.eps;
  a.in.beta = io.beta.p, a.in.g = io.g.p;
  conv_at(0, kd, a.in.q, a.in.q_stride, a.conv_q);
  conv_at(kd, kd, a.in.k, a.in.k_stride, a.conv_k);
  conv_at(2 * kd, vd, a.in.v, a.in.v_stride, a.conv_v);
  kc::delta_rule_decode(a, pool(S), S.slots, seqs.n(), io.o.p, stream_);
}

void CudaBackend::mamba2_ssd(const kernels::Mamba2Dims& dims, const Mamba2Gates& gates, const Mamba2Io& io,
                             const StateRef& S, const Seqs& seqs) {
  LINFER_CHECK(S.slots && io.y.dense(), "cuda mamba2_ssd: y must be dense and the states in a slot pool");
  const kernels::Mamba2Params params{.A_log = gates.A_log.p, .dt_bias = gates.dt_bias.p, .D = opt(gates.D),
                                     .dt_min = gates.dt_min, .dt_max = gates.dt_max};
  auto inputs_at = [&](int64_t t) {
    return kernels::Mamba2Inputs{.x = io.x.row(t), .dt = io.dt.row(t), .B = io.B.row(t), .C = io.C.row(t),
                                 .x_stride = io.x.ld, .dt_stride = io.dt.ld, .B_stride = io.B.ld, .C_stride = io.C.ld};
  };
  if (seqs.decode) return kc::mamba2_decode(dims, params, inputs_at(0), pool(S), S.slots, seqs.n(), io.y.p, stream_);
  // Prefill: the chunked kernel where it takes the shape (N <= 128, P <= 256), else token by token.
  if (kc::mamba2_prefill_supported(dims))
    return kc::mamba2_prefill(dims, params, inputs_at(0), seqs.offsets, pool(S), S.slots, io.y.p, stream_);
  for (int64_t i = 0; i < seqs.n(); ++i)
    for (int64_t t = seqs.offsets[i]; t < seqs.offsets[i + 1]; ++t)
      kc::mamba2_decode(dims, params, inputs_at(t), pool(S), S.slots + i, 1, io.y.row(t), stream_);
}

void CudaBackend::rope(const Mat& x, int64_t H, int64_t D, int64_t rotary_dim, const Seqs& seqs,
                       std::span<const float> inv_freq) {
  LINFER_CHECK(int64_t(seqs.positions.size()) >= x.rows && int64_t(inv_freq.size()) == rotary_dim / 2,
               "cuda rope: {} positions for {} rows, {} inverse frequencies for rotary dim {}", seqs.positions.size(),
               x.rows, inv_freq.size(), rotary_dim);
  const int64_t* d_pos = on_device(positions_, seqs.positions, seqs.device_positions);
  const auto* d_inv = static_cast<const float*>(stage(inv_freq_, inv_freq.data(), inv_freq.size_bytes()));
  kc::rope(rows(x), H, D, rotary_dim, d_pos, d_inv, stream_);
}

// The call's largest query count and longest cache (Growing tensor `cache`, this call's rows included).
static std::pair<int64_t, int64_t> call_extent(const StateRef& cache, const Seqs& seqs) {
  LINFER_CHECK(cache.pool && cache.rows && seqs.device_offsets,
               "cuda attention: the caches must be in a slot pool bound to the call");
  int64_t max_n = 0, max_len = 0;
  for (int64_t i = 0; i < seqs.n(); ++i) {
    max_n = std::max(max_n, seqs.offsets[size_t(i) + 1] - seqs.offsets[size_t(i)]);
    max_len = std::max(max_len, cache.pool->rows(cache.host_slots[size_t(i)], cache.tensor));
  }
  return {max_n, max_len};
}

kc::AttnSeq* CudaBackend::attn_seqs(int64_t n) {
  return reinterpret_cast<kc::AttnSeq*>(scratch((n * int64_t(sizeof(kc::AttnSeq)) + 3) / 4));
}

void CudaBackend::attention(const Mat& q, const Mat& k, const Mat& v, const kernels::AttentionDims& d,
                            const StateRef& k_cache, const StateRef& v_cache, const Seqs& seqs, const Mat& o) {
  LINFER_CHECK(v_cache.rows, "cuda attention: the caches must be in a slot pool bound to the call");
  const int64_t n_seqs = seqs.n();
  LINFER_CHECK(k.cols == d.n_kv_heads * d.qk_dim && v.cols == d.n_kv_heads * d.v_dim &&
                   q.cols == d.n_heads * d.qk_dim && o.cols == d.n_heads * d.v_dim,
               "cuda attention: q [{}, {}], k [{}, {}], v [{}, {}], o [{}, {}] do not match {} / {} heads of {} / {}",
               q.rows, q.cols, k.rows, k.cols, v.rows, v.cols, o.rows, o.cols, d.n_heads, d.n_kv_heads, d.qk_dim,
               d.v_dim);
  const auto [max_n, max_len] = call_extent(k_cache, seqs);
  kc::append_to_caches(rows(k), seqs.device_offsets, k_cache.rows, n_seqs, max_n, stream_);
  kc::append_to_caches(rows(v), seqs.device_offsets, v_cache.rows, n_seqs, max_n, stream_);
  Tmp tmp(*this);
  kc::AttnSeq* as = attn_seqs(n_seqs);
  kc::attn_seqs_from_caches(k_cache.rows, v_cache.rows, -1, seqs.device_offsets, n_seqs, as, stream_);
  const kc::AttnLayout l{.Hq = d.n_heads, .Hkv = d.n_kv_heads, .D1 = d.qk_dim, .D2 = 0, .Dv = d.v_dim,
                         .q_ld = q.ld, .o_ld = o.ld, .k1_row = k.cols, .k1_head = d.qk_dim, .k2_row = 0,
                         .k2_head = 0, .v_row = v.cols, .v_head = d.v_dim, .scale = d.scale};
  attend(q.p, as, n_seqs, max_n, max_len, l, o.p);
}

void CudaBackend::attend(const float* q, const kc::AttnSeq* seqs, int64_t n_seqs, int64_t max_n, int64_t max_len,
                         const kc::AttnLayout& l, float* o) {
  const int64_t splits = kc::attention_splits(l, n_seqs, max_n, cache_length_class(max_len));
  Tmp tmp(*this);
  float* partial = splits > 1 ? scratch(kc::attention_partial_floats(l, n_seqs, max_n, splits)) : nullptr;
  kc::attention(q, seqs, n_seqs, max_n, l, o, stream_, {.splits = splits, .partial = partial});
}

// Prefill: the expanded form, per sequence kv = c · kv_bᵀ over all its cached rows ([len, H, d_n + d_v]), then
// attention with key [k_nope | k_r] (k_r read from the cache, shared by the heads) and value v. Decode: the
// absorbed form (mla_absorbed), which reads the cache once per step instead of rebuilding K / V from it.
void CudaBackend::mla(const Mat& q, const Mat& latent, const Weight& kv_b, const Weight& k_t,
                      const kernels::MlaDims& d, const StateRef& cache, const Seqs& seqs, const Mat& o) {
  const int64_t H = d.n_heads, r = d.kv_lora_rank, dn = d.qk_nope_dim, dr = d.qk_rope_dim, dv = d.v_dim;
  const int64_t L = latent.cols, kv_row = H * (dn + dv);
  LINFER_CHECK(L == r + dr && q.cols == H * (dn + dr) && o.cols == H * dv && kv_b.dim(0) == kv_row &&
                   kv_b.dim(1) == r,
               "cuda mla: latent [{}, {}], q [{}, {}], kv_b [{}, {}] do not match {} heads, rank {}, nope {}, rope {}, "
               "v {}", latent.rows, L, q.rows, q.cols, kv_b.dim(0), kv_b.dim(1), H, r, dn, dr, dv);
  const auto [max_n, max_len] = call_extent(cache, seqs);
  kc::append_to_caches(rows(latent), seqs.device_offsets, cache.rows, seqs.n(), max_n, stream_);
  static_assert(kMlaStepMaxRank <= kc::kAttnMaxDv, "the absorbed form attends with value dim r");
  if (seqs.decode && r <= kMlaStepMaxRank) return mla_absorbed(q, kv_b, k_t, d, cache, seqs, max_len, o);
  const kc::AttnLayout l{.Hq = H, .Hkv = H, .D1 = dn, .D2 = dr, .Dv = dv, .q_ld = q.ld, .o_ld = o.ld,
                         .k1_row = kv_row, .k1_head = dn + dv, .k2_row = L, .k2_head = 0, .v_row = kv_row,
                         .v_head = dn + dv, .scale = d.scale};
  for (int64_t i = 0; i < seqs.n(); ++i) {
    const int64_t b = seqs.offsets[i], n = seqs.offsets[i + 1] - b;
    const int slot = cache.host_slots[size_t(i)];
    const int64_t len = cache.pool->rows(slot, cache.tensor);
    float* rows0 = const_cast<float*>(cache.pool->rows_data(slot, cache.tensor));
    Tmp tmp(*this);
    const Mat kv = tmp.mat(len, kv_row);
    matmul(Mat(rows0, len, r, L), kv_b, {}, kv);
    const kc::AttnSeq s{.k1 = kv.p, .k2 = rows0 + r, .v = kv.p + dn, .len = len, .q0 = b, .n = n};
    attend(q.p, static_cast<const kc::AttnSeq*>(stage(attn_seqs_, &s, sizeof s)), 1, n, len, l, o.p);
  }
}

// One query per sequence: q̃[h] = W_k[h]ᵀ q_nope[h] (k_t) for every head in one GEMV launch, q_r beside it;
// attention over the latent rows as they are cached — key [c | k_r] and value c, one KV head shared by all
// H — gives ctx[h] = Σ p · c; o[h] = W_v[h] · ctx[h] (W_v[h]: kv_b's last d_v rows of head h), one launch.
void CudaBackend::mla_absorbed(const Mat& q, const Weight& kv_b, const Weight& k_t, const kernels::MlaDims& d,
                               const StateRef& cache, const Seqs& seqs, int64_t max_len, const Mat& o) {
  const int64_t T = q.rows, H = d.n_heads, r = d.kv_lora_rank, dn = d.qk_nope_dim, dr = d.qk_rope_dim,
                dv = d.v_dim, L = r + dr;
  LINFER_CHECK(q.dense() && k_t.dim(0) == H * r && k_t.dim(1) == dn,
               "cuda mla: q must be dense and k_t [{}, {}] (W_k[h]ᵀ per head), found [{}, {}]", H * r, dn, k_t.dim(0),
               k_t.dim(1));
  Tmp tmp(*this);
  const Mat qa = tmp.mat(T, H * L), ctx = tmp.mat(T, H * r);
  const void* w_v = static_cast<const std::byte*>(kv_b.view.data()) + size_t(dn * r) * dtype_size(kv_b.view.dtype());
  kc::gemv({q.p, T, dn, q.ld}, k_t.view.data(), k_t.view.dtype(), r, dn, nullptr, {qa.p, T, r, qa.ld}, stream_,
           {.n = H, .x = dn + dr, .w = r * dn, .y = L});
  copy(Mat(q.p + dn, T * H, dr, dn + dr), Mat(qa.p + r, T * H, dr, L));  // q_r of every (token, head)
  kc::AttnSeq* as = attn_seqs(seqs.n());
  kc::attn_seqs_from_caches(cache.rows, cache.rows, r, seqs.device_offsets, seqs.n(), as, stream_);
  const kc::AttnLayout l{.Hq = H, .Hkv = 1, .D1 = r, .D2 = dr, .Dv = r, .q_ld = qa.ld, .o_ld = ctx.ld, .k1_row = L,
                         .k1_head = 0, .k2_row = L, .k2_head = 0, .v_row = L, .v_head = 0, .scale = d.scale};
  attend(qa.p, as, seqs.n(), 1, max_len, l, ctx.p);
  kc::gemv({ctx.p, T, r, ctx.ld}, w_v, kv_b.view.dtype(), dv, r, nullptr, {o.p, T, dv, o.ld}, stream_,
           {.n = H, .x = r, .w = (dn + dv) * r, .y = dv});
}

}  // namespace linfer
