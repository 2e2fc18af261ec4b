#pragma once
// The CUDA backend: the seam's ops on one GPU (the current device), on one stream. Weights are copied to
// the device once, as stored (bf16 stays bf16); GEMV for decode-sized batches is kernels/cuda/dense.h's,
// larger products widen the weight to float32 scratch and run cuBLAS's float32 GEMM (no TF32), so
// activations stay float32 as on the CPU. States live in a slot pool (cuda_slots.cpp); the recurrent ops
// use the decode kernels of kernels/cuda, and prefill runs them token by token (conv1d has a prefill
// kernel): a chunked prefill is a later step. Attention and MLA keep their caches in the pool's Growing
// rows (cuda_slots.h), fill the rows the binding made through its table in device memory, and attend with kernels/cuda/attention.h (MLA's prefill in its expanded form: K / V
// rebuilt from the latent rows through kv_b by a GEMM; its decode absorbed into q and o, the cache read as
// it is); the MoE routes here at decode (moe_route.h: top-k, expert GEMVs through a table of the experts'
// weights, the weighted sum) and on the host for prefill, its row gathers and scatters here. run_recorded records a run of ops as a CUDA graph (cuda_recordings.cpp):
// a decode step replays as one launch (LINFER_CUDA_GRAPHS=0 runs every op by op, for comparison).
// One call at a time per backend object (one stream, one scratch stack).

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <unordered_map>
#include <vector>

#include "backend/backend.h"
#include "kernels/cuda/attention.h"

namespace linfer {

class CudaBackend final : public Backend {
 public:
  CudaBackend();  // throws linfer::Error when no device is usable
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  Device device() const override { return Device::Cuda; }
  bool supports(Op op, DType weights) const override;
  cudaStream_t stream() const { return stream_; }

  Weight weight(const TensorView& host, WeightUse use) override;
  Param param(const Tensor& host) override;
  void download(const Mat& src, float* dst) override;
  void upload(const float* src, const Mat& dst) override;
  size_t scratch_mark() override { return top_; }
  void scratch_release(size_t mark) override { top_ = mark; }
  float* scratch(int64_t n) override;
  std::unique_ptr<StateSlots> make_slots(const StateSpec& spec, int n) override;
  void run_recorded(uint64_t key, FunctionRef<void()> body) override;
  // Drops every recording: called before memory a recording may point at (scratch, staging, a slot pool's
  // states or ids) is freed or moved.
  void forget_recordings();

  void matmul(const Mat& x, const Weight& w, const Param& bias, const Mat& y) override;
  void matmul_many(std::span<const MatmulCall> calls) override;
  void embedding(const Weight& table, std::span<const int32_t> ids, const Mat& y) override;
  void rms_norm(const Mat& x, const Param& w, const Mat& y, float eps, kernels::NormWeight mode) override;
  void add_rms_norm(const Mat& x, const Mat& r, const Param& w, const Mat& y, float eps,
                    kernels::NormWeight mode) override;
  void rms_norm_gated(const Mat& x, const Mat& gate, const Param& w, const Mat& y, float eps,
                      kernels::GateAct act) override;
  void rms_norm_gate_first(const Mat& x, const Mat& z, const Param& w, const Mat& y, int64_t group,
                           float eps) override;
  void unary(Unary f, const Mat& x, const Mat& y) override;
  void swiglu(const Mat& gate, const Mat& up, const Mat& y) override;
  void add(const Mat& y, const Mat& x) override;
  void mul(const Mat& y, const Mat& x) override;
  void copy(const Mat& src, const Mat& dst) override;
  void fill(const Mat& y, float value) override;
  void decay_gate(const Mat& g, const Param& dt_bias, const Param& A_log, int64_t per_head) override;
  void scale_rows_sigmoid(const Mat& y, const Mat& g) override;
  ExpertTable expert_table(std::span<const Weight* const> first, std::span<const Weight* const> second) override;
  void moe_route(const Mat& logits, const MoeRouting& r, const Param& bias, const Mat& ids,
                 const Mat& weights) override;
  void expert_matmul(const Mat& x, int64_t x_every, const ExpertTable& w, const Mat& ids, const Mat& y) override;
  void moe_combine(const Mat& src, const Mat& weights, const Mat& y) override;

  void conv1d(const Mat& x, const Param& w, const Param& bias, int64_t W, const StateRef& state, const Seqs& seqs,
              bool silu, const Mat& y) override;
  void delta_rule(const kernels::DeltaRuleShape& shape, const DeltaIo& io, const StateRef& S,
                  const Seqs& seqs) override;
  void delta_layer(const kernels::DeltaRuleShape& shape, const DeltaLayerIo& io, const StateRef& S,
                   const Seqs& seqs) override;
  void mamba2_ssd(const kernels::Mamba2Dims& dims, const Mamba2Gates& gates, const Mamba2Io& io, const StateRef& S,
                  const Seqs& seqs) override;
  void rope(const Mat& x, int64_t H, int64_t D, int64_t rotary_dim, const Seqs& seqs,
            std::span<const float> inv_freq) override;
  void attention(const Mat& q, const Mat& k, const Mat& v, const kernels::AttentionDims& d, const StateRef& k_cache,
                 const StateRef& v_cache, const Seqs& seqs, const Mat& o) override;
  void mla(const Mat& q, const Mat& latent, const Weight& kv_b, const Weight& k_t, const kernels::MlaDims& d,
           const StateRef& cache, const Seqs& seqs, const Mat& o) override;

 private:
  // A device copy of a small host array (token ids, offsets), valid until the next upload of its kind.
  struct Staged {
    void* p = nullptr;
    size_t bytes = 0;
    std::vector<char> last;  // what it holds, so an unchanged array is not uploaded again
  };
  const void* stage(Staged& s, const void* host, size_t bytes);
  void matmul_bf16(const Mat& x, const Weight& w, const Param& bias, const Mat& y);  // matmul's GEMM, bf16 weights
  // Device memory p of `have` bytes grown to at least `need` (contents lost): the stream drained first and the
  // recordings dropped (they may point at p).
  void reserve(void*& p, size_t& have, size_t need, const char* what);
  // A call's offsets or positions on the device: the slot binding's copy where the call has one (`bound`,
  // Seqs::device_*), else staged in s.
  const int64_t* on_device(Staged& s, std::span<const int64_t> host, const int64_t* bound);

  cudaStream_t stream_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  std::vector<std::pair<float*, int64_t>> scratch_;  // a stack of buffers, slot t reused by the t-th live one
  size_t top_ = 0;
  void* widened_ = nullptr;  // an f16 weight widened to float32 for cuBLAS
  size_t widened_bytes_ = 0;
  void* split_x_ = nullptr;  // matmul_bf16's terms of x and its GEMM's output
  void* split_c_ = nullptr;
  size_t split_x_bytes_ = 0, split_c_bytes_ = 0;
  void* expert_scratch_ = nullptr;  // kernels/cuda/expert_gemm.h's scratch
  size_t expert_scratch_bytes_ = 0;
  // Scratch for n sequences' kernels/cuda/attention.h views (a Tmp's scope).
  kernels::cuda::AttnSeq* attn_seqs(int64_t n);
  // kernels/cuda/attention.h over `seqs` (device), the keys split into ranges where that pays: as many as
  // the class of the longest cache (max_len) asks for, so a recorded step's split holds for its class.
  void attend(const float* q, const kernels::cuda::AttnSeq* seqs, int64_t n_seqs, int64_t max_n, int64_t max_len,
              const kernels::cuda::AttnLayout& l, float* o);
  void mla_absorbed(const Mat& q, const Weight& kv_b, const Weight& k_t, const kernels::MlaDims& d,
                    const StateRef& cache, const Seqs& seqs, int64_t max_len, const Mat& o);

  Staged ids_, offsets_, positions_, inv_freq_, attn_seqs_;

  // A recorded run of ops, by run_recorded's key and the scratch depth it started at.
  struct Recording {
    int eager_runs = 0;      // the first run goes op by op: it sizes the scratch the ops take
    bool refused = false;    // capture failed once: op by op from then on
    cudaGraphExec_t exec = nullptr;
  };
  std::unordered_map<uint64_t, Recording> recordings_;
  bool graphs_ = true;  // LINFER_CUDA_GRAPHS=0: never record
};

}  // namespace linfer
