#pragma once
// The backend seam (docs/architecture.md, "Backends"). Every mixer and FFN is written once, over the ops
// of this interface; a backend implements them on its own memory: the CPU backend with src/kernels/cpu,
// the CUDA backend with src/kernels/cuda and cuBLAS. A backend owns what it allocates: weights (as
// stored), float32 parameters, scratch and sequence-state slots. Mixers see only views (Mat), handles
// (Weight, Param) and state references (StateRef), never whose memory they are in.
//
//   Tmp tmp(be);                                   // scratch, released at the end of the scope
//   Mat h = tmp.mat(T, I);                         // [T, I] float32 on the backend
//   be.matmul(x, w_.up, {}, h);                    // h = x · upᵀ
//   be.unary(Unary::Silu, h, h);
//
// Ops other than memory and matmul default to "not implemented on this backend" (an Error naming the
// op), so an op can land on one backend first; supports(op, dtype) answers without throwing, and a model
// checks every op its layers need at load. One model runs on one backend: operands never mix devices.
// Thread-safety: a backend's ops may run on one thread at a time per backend object, except the CPU
// backend's, which are reentrant (per-thread scratch).

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "backend/cache_rows.h"
#include "backend/moe_routing.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/delta_rule.h"
#include "kernels/cpu/mamba2_ssd.h"
#include "kernels/cpu/mla.h"
#include "kernels/cpu/norm.h"
#include "linfer/core/function_ref.h"
#include "linfer/core/tensor.h"
#include "linfer/device.h"
#include "linfer/state.h"
#include "linfer/state_slots.h"

namespace linfer {

// A float32 matrix in a backend's memory: rows × cols, `ld` floats from one row to the next. A view.
struct Mat {
  float* p = nullptr;
  int64_t rows = 0, cols = 0, ld = 0;

  Mat() = default;
  Mat(float* p_, int64_t rows_, int64_t cols_, int64_t ld_ = 0) : p(p_), rows(rows_), cols(cols_), ld(ld_ ? ld_ : cols_) {}
  bool dense() const { return ld == cols || rows <= 1; }
  int64_t size() const { return rows * cols; }
  float* row(int64_t r) const { return p + r * ld; }
  Mat cols_of(int64_t first, int64_t n) const { return {p + first, rows, n, ld}; }
  Mat rows_of(int64_t first, int64_t n) const { return {p + first * ld, n, cols, ld}; }
  // Each row cut into pieces of n (cols % n == 0): [rows · cols / n, n]. Dense matrices only.
  Mat split_rows(int64_t n) const;
};

// A weight matrix [N, K] as stored (f32 / bf16 / f16, or block-quantized q8_0 / q4_0 / q4_k / q6_k:
// view.dtype() names the type, view's shape is the logical [N, K], core/quant_formats.h has the bytes),
// in a backend's memory. `owner` keeps a backend allocation alive (null where the model's mmap'd
// checkpoint holds the bytes: CPU).
struct Weight {
  TensorView view;
  std::shared_ptr<const void> owner;
  int64_t dim(int i) const { return view.dim(i); }
  bool empty() const { return view.empty(); }
};

// A float32 vector (norm weights, conv taps, A_log, biases ...) in a backend's memory; empty = absent.
struct Param {
  const float* p = nullptr;
  int64_t n = 0;
  std::shared_ptr<const void> owner;
  bool empty() const { return p == nullptr; }
};

class DeviceStateSlots;

// One state tensor of every sequence in a call, wherever the call's states live: host SequenceStates
// (the CPU backend: tensor `tensor` of each) or a backend's slot pool (Fixed tensors: sequence i's at
// base + slots[i] · stride floats, `slots` in the backend's memory; Growing tensors: through `pool`,
// sequence i in slot host_slots[i], its rows at rows[i], this call's included).
struct StateRef {
  std::span<SequenceState* const> seqs;
  size_t tensor = 0;
  float* base = nullptr;
  int64_t stride = 0;
  const int32_t* slots = nullptr;
  DeviceStateSlots* pool = nullptr;
  std::span<const int32_t> host_slots = {};
  const CacheRows* rows = nullptr;  // [n_seqs], the backend's memory (Growing tensors of a pool)
};

// A backend's slot pool bound to one call (DeviceStateSlots::bind): Fixed state tensor j of sequence i at
// base + offsets[j] + ids[i] · stride floats; Growing ones at cache_rows[growing[j] · n_seqs + i], grown
// by the call's rows already. Every pointer but the spans is in the backend's memory.
struct SlotBinding {
  float* base = nullptr;
  int64_t stride = 0;
  std::span<const int64_t> offsets;  // per state tensor of the model, host
  const int32_t* ids = nullptr;
  DeviceStateSlots* pool = nullptr;
  std::span<const int32_t> host_ids = {};
  const CacheRows* cache_rows = nullptr;  // [Growing tensor][sequence]
  std::span<const int> growing = {};      // per state tensor: its index among the Growing ones, or -1
  const int64_t* call_offsets = nullptr;  // the call's Seqs::offsets [n_seqs + 1] and positions [T]
  const int64_t* call_positions = nullptr;
  StateRef tensor(size_t j) const {
    StateRef r;
    r.tensor = j, r.base = base + offsets[j], r.stride = stride, r.slots = ids, r.pool = pool, r.host_slots = host_ids;
    if (j < growing.size() && growing[j] >= 0) r.rows = cache_rows + int64_t(growing[j]) * int64_t(host_ids.size());
    return r;
  }
};

// The sequences of one call: sequence i owns tokens [offsets[i], offsets[i+1]) of every Mat row.
struct Seqs {
  std::span<const int64_t> offsets;    // n_seqs + 1, host
  std::span<const int64_t> positions;  // [T] absolute position of each token, host
  bool decode = false;                 // every sequence has exactly one token: the step form
  // The same two in the backend's memory where the call is bound to a slot pool (SlotBinding), else null:
  // ops that read them there issue the same launches at every step, so a decode step records as a graph.
  const int64_t* device_offsets = nullptr;
  const int64_t* device_positions = nullptr;
  int64_t n() const { return int64_t(offsets.size()) - 1; }
};

// The class of a cache length that a backend may split attention work by (the power of two at or above it,
// at least 256), never by the length itself: a decode step recorded at one length then replays at every
// length of its class, and a model keys its recordings by the class of its longest cache.
inline int64_t cache_length_class(int64_t rows) {
  return int64_t(std::bit_ceil(uint64_t(std::max<int64_t>(rows, 256))));
}
// MLA decode steps with a latent rank up to this issue the same ops at every step (the absorbed form).
constexpr int64_t kMlaStepMaxRank = 512;

enum class Op : uint8_t {
  Matmul, Embedding, RmsNorm, RmsNormGated, RmsNormGateFirst, Unary, Swiglu, Add, Mul, Copy, Fill,
  DecayGate, ScaleRowsSigmoid, GatherRows, ScatterAddRows, Conv1d, DeltaRule, Mamba2Ssd, Rope, Attention, Mla,
  MoeRoute,  // moe_route, expert_table, expert_matmul and moe_combine: a MoE's routed experts without the host
};
const char* op_name(Op op);

enum class Unary : uint8_t { Sigmoid, Softplus, Silu };

// A MoE layer's routed experts as one table the backend indexes by expert id in its own memory: expert e's
// weight [N, K] is the rows of first[e], then those of second[e] where given (gate then up). One dtype.
struct ExpertTable {
  int64_t experts = 0, N = 0, K = 0;
  int64_t first_rows = 0;   // rows of each first[e]
  DType dtype = DType::F32;
  const void* p = nullptr;  // the backend's own layout
  std::shared_ptr<const void> owner;
  bool empty() const { return p == nullptr; }
};

// Mamba2's gates (kernels/cpu/mamba2_ssd.h's Mamba2Params on the backend).
struct Mamba2Gates {
  Param A_log, dt_bias, D;  // [H] each; D may be empty
  float dt_min = 0.0f, dt_max = INFINITY;
};

// How the model reads a weight: only whole, by the products (matmul, embedding rows), so a backend may lay its
// rows out for its kernels (the CPU backend interleaves some quantized formats, kernels/cpu/quant/rows16.h); or
// also by ranges of rows (TensorView::slice0 of the view), which needs the rows as stored, ld elements apart.
enum class WeightUse { Products, RowRanges };

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;
  // Whether `op` runs here, with weights of `weights` dtype where the op reads weights (Matmul, Embedding).
  virtual bool supports(Op op, DType weights = DType::F32) const = 0;

  // ---- memory ----
  // A copy as stored (or the host view itself), or, for use Products, in a row layout of the backend's own.
  virtual Weight weight(const TensorView& host, WeightUse use) = 0;
  virtual Param param(const Tensor& host) = 0;         // float32; an empty tensor gives an empty Param
  virtual void download(const Mat& src, float* dst) = 0;      // to host [rows, cols] dense; complete on return
  virtual void upload(const float* src, const Mat& dst) = 0;  // from host [rows, cols] dense
  // Scratch is a stack: use Tmp. Contents are undefined; a buffer lives until its mark is released.
  virtual size_t scratch_mark() = 0;
  virtual void scratch_release(size_t mark) = 0;
  virtual float* scratch(int64_t n) = 0;
  // A pool of n sequence states in this backend's memory, laid out per `spec`.
  virtual std::unique_ptr<StateSlots> make_slots(const StateSpec& spec, int n) = 0;

  // ---- recorded op sequences ----
  // Runs `body`, a sequence of this backend's ops, and may record it to replay for later calls with the
  // same key without running body's host code again (the CUDA backend: a CUDA graph; what one token's
  // decode step is, at a given batch size and slot binding). The caller promises that the key determines
  // every op body issues and every argument (pointers and sizes; not the memory's contents), and that body
  // does nothing on the host that a replay would have to repeat (no downloads, no host arrays that change
  // from call to call). A backend drops its recordings when memory they use moves. Default: runs body.
  virtual void run_recorded(uint64_t key, FunctionRef<void()> body) { body(); }

  // ---- dense ops (float32 activations; y may alias x where an op says so) ----
  // y[M, N] = x[M, K] · wᵀ (+ bias[N]). x and y dense, not aliasing.
  virtual void matmul(const Mat& x, const Weight& w, const Param& bias, const Mat& y) = 0;
  // Independent products (no y is another's x), each as matmul(), in one call so that a backend can
  // run them together: the CPU splits all their weight rows over its threads at once (a layer's
  // projections of one input, a MoE layer's experts). Default: one matmul() each.
  struct MatmulCall {
    Mat x;
    const Weight* w;
    Mat y;
    const Param* bias = nullptr;
  };
  virtual void matmul_many(std::span<const MatmulCall> calls);
  // y[i, :] = table[ids[i], :] (ids on the host, checked by the caller).
  virtual void embedding(const Weight& table, std::span<const int32_t> ids, const Mat& y);
  // Per row: y = x / sqrt(mean(x²) + eps) · w (kernels/cpu/norm.h). y may alias x.
  virtual void rms_norm(const Mat& x, const Param& w, const Mat& y, float eps, kernels::NormWeight mode);
  // x += r, then y = rms_norm(x): a residual add and the norm after it (one kernel on CUDA). Default: add(x, r)
  // then rms_norm. y and r must not alias x.
  virtual void add_rms_norm(const Mat& x, const Mat& r, const Param& w, const Mat& y, float eps,
                            kernels::NormWeight mode);
  // Per row: y = norm(x) · w · act(gate). y may alias x.
  virtual void rms_norm_gated(const Mat& x, const Mat& gate, const Param& w, const Mat& y, float eps,
                              kernels::GateAct act);
  // Per row: h = x · silu(z), each `group` channels normalised on their own, · w. y may alias x.
  virtual void rms_norm_gate_first(const Mat& x, const Mat& z, const Param& w, const Mat& y, int64_t group,
                                   float eps);
  virtual void unary(Unary f, const Mat& x, const Mat& y);  // y may alias x
  // y = silu(gate) · up. Where gate and up are the halves of one packed row ([gate | up], up right after
  // gate), y may alias gate.
  virtual void swiglu(const Mat& gate, const Mat& up, const Mat& y);
  virtual void add(const Mat& y, const Mat& x);  // y += x
  virtual void mul(const Mat& y, const Mat& x);  // y *= x
  virtual void copy(const Mat& src, const Mat& dst);
  virtual void fill(const Mat& y, float value);
  // In place, per column c of g: g = -exp(A_log[c / per_head]) · softplus(g + dt_bias[c]) (log decay of
  // GDN, per_head 1, and KDA, per_head K).
  virtual void decay_gate(const Mat& g, const Param& dt_bias, const Param& A_log, int64_t per_head);
  // y[t, :] *= sigmoid(g[t, 0]).
  virtual void scale_rows_sigmoid(const Mat& y, const Mat& g);
  // dst[j, :] = src[rows[j], :]; dst[rows[j], :] += w[j] · src[j, :] (rows, w on the host).
  virtual void gather_rows(const Mat& src, std::span<const int64_t> rows, const Mat& dst);
  virtual void scatter_add_rows(const Mat& src, std::span<const int64_t> rows, std::span<const float> w,
                                const Mat& dst);

  // ---- a MoE's routed experts, routed on the backend (Op::MoeRoute; no trip to the host) ----
  virtual ExpertTable expert_table(std::span<const Weight* const> first, std::span<const Weight* const> second);
  // Per token t of logits [T, E]: the top_k experts' ids (as floats, exact) in ids [T, top_k], best first, and
  // their weights in weights [T, top_k]: ffn/moe.h's moe_route rule (bias: e_score_correction_bias or empty).
  virtual void moe_route(const Mat& logits, const MoeRouting& r, const Param& bias, const Mat& ids,
                         const Mat& weights);
  // y[j, :] = x[j / x_every, :] · W[ids[j]]ᵀ for each row j of y, W expert ids[j]'s weight of `w` (ids read
  // flat: a dense [T, top_k] Mat from moe_route).
  virtual void expert_matmul(const Mat& x, int64_t x_every, const ExpertTable& w, const Mat& ids, const Mat& y);
  // y[t, :] += Σ_i weights[t, i] · src[t · k + i, :], k = weights.cols, i in order.
  virtual void moe_combine(const Mat& src, const Mat& weights, const Mat& y);

  // ---- sequence ops: read and advance each sequence's state (step form when seqs.decode) ----
  // Causal depthwise conv of width W over x [T, C] (a column slice is fine), windows [C, W-1] in `state`.
  virtual void conv1d(const Mat& x, const Param& w, const Param& bias, int64_t W, const StateRef& state,
                      const Seqs& seqs, bool silu, const Mat& y);
  struct DeltaIo {
    Mat q, k, v;  // [T, H·K], [T, H·K], [T, HV·V] (column slices are fine)
    Mat beta;     // [T, HV], after the sigmoid
    Mat g;        // log decay: Scalar [T, HV], PerKey [T, HV·K]; empty for None
    Mat o;        // [T, HV·V]
  };
  virtual void delta_rule(const kernels::DeltaRuleShape& shape, const DeltaIo& io, const StateRef& S,
                          const Seqs& seqs);
  // A GDN / KDA layer's work between its projections and o_proj, in one call so that a backend can fuse it
  // (CUDA decode: kernels/cuda/delta_rule_decode.h, one kernel):
  //   q | k | v = SiLU(causal conv of width W)    the convs' channels in that order: one conv over all three
  //                                               (GDN) or one each (KDA)
  //   g = -exp(A_log[hv]) · softplus(g + dt_bias)  Scalar decay: [T, HV]; PerKey: [T, HV·K]
  //   beta = sigmoid(beta)
  //   o = the delta rule (delta_rule), then per value head rms_norm_gated(o, gate, norm_w, act)
  // The default composes conv1d, decay_gate, unary, delta_rule and rms_norm_gated. Overwrites g and beta.
  struct DeltaConv {
    Mat x;            // [T, C] before the conv (a column slice is fine)
    Param w;          // [C, W]
    StateRef window;  // [C, W-1] per sequence
  };
  struct DeltaLayerIo {
    std::span<const DeltaConv> conv;  // 2·H·K + HV·V channels in all
    int64_t conv_width = 0;
    Mat beta, g;                      // raw: logits [T, HV] and the gate before decay_gate, both dense
    Param A_log, dt_bias;             // [HV]; Scalar [HV], PerKey [HV·K]
    Mat gate;                         // [T, HV·V]
    Param norm_w;                     // [V]
    kernels::GateAct act = kernels::GateAct::Silu;
    float eps = 1e-6f;
    Mat o;                            // [T, HV·V], dense
    // The conv that holds channels [first, first + n), and where they start in it (throws if none does).
    std::pair<size_t, int64_t> conv_channels(int64_t first, int64_t n) const;
  };
  virtual void delta_layer(const kernels::DeltaRuleShape& shape, const DeltaLayerIo& io, const StateRef& S,
                           const Seqs& seqs);
  struct Mamba2Io {
    Mat x, dt, B, C;  // [T, H·P], raw [T, H], [T, G·N], [T, G·N] (column slices are fine)
    Mat y;            // [T, H·P]
  };
  virtual void mamba2_ssd(const kernels::Mamba2Dims& dims, const Mamba2Gates& gates, const Mamba2Io& io,
                          const StateRef& S, const Seqs& seqs);
  // Rotates the first rotary_dim dims of each of the H heads of x [T, H·D] (inv_freq on the host; the
  // positions on the device where seqs has them there).
  virtual void rope(const Mat& x, int64_t H, int64_t D, int64_t rotary_dim, const Seqs& seqs,
                    std::span<const float> inv_freq);
  // Appends k, v [T, Hkv·D] to each sequence's cache (Growing states) and attends: o [T, Hq·Dv]. On a pool
  // the rows were made by the binding; the op fills them.
  virtual void attention(const Mat& q, const Mat& k, const Mat& v, const kernels::AttentionDims& d,
                         const StateRef& k_cache, const StateRef& v_cache, const Seqs& seqs, const Mat& o);
  // Appends the latent rows [T, r + d_r] to each sequence's cache and attends through kv_b ([H·(d_n + d_v), r])
  // and k_t (W_k[h]ᵀ per head, [H·r, d_n]: kernels::mla_keys_transposed, for the absorbed form): o [T, H·d_v].
  virtual void mla(const Mat& q, const Mat& latent, const Weight& kv_b, const Weight& k_t,
                   const kernels::MlaDims& d, const StateRef& cache, const Seqs& seqs, const Mat& o);

 protected:
  [[noreturn]] void unsupported(Op op) const;
};

// Scratch of a backend for one scope: every buffer taken from it is released when it ends.
class Tmp {
 public:
  explicit Tmp(Backend& be) : be_(be), mark_(be.scratch_mark()) {}
  ~Tmp() { be_.scratch_release(mark_); }
  Tmp(const Tmp&) = delete;
  Tmp& operator=(const Tmp&) = delete;
  Mat mat(int64_t rows, int64_t cols) { return {be_.scratch(rows * cols), rows, cols}; }

 private:
  Backend& be_;
  size_t mark_;
};

// The process-wide CPU backend (stateless but for per-thread scratch).
Backend& cpu_backend();
// A CUDA backend on the current device with its own stream, cuBLAS handle and scratch. Throws
// linfer::Error when linfer was built without CUDA or no device is usable.
std::shared_ptr<Backend> make_cuda_backend();
// The backend for `d`: cpu_backend() (not owned) or a new CUDA backend.
std::shared_ptr<Backend> make_backend(Device d);

}  // namespace linfer
