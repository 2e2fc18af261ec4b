#pragma once
// The CPU backend: the seam's ops on today's kernels (src/kernels/cpu), on host memory. Weights are copied at
// load, as stored, into huge pages (linfer/core/weight_arena.h; `--mmap` reads the mapped checkpoint instead),
// except Q8_0, Q4_0, Q4_K and Q6_K matrices on CPUs with AVX-512 VNNI (the avx512 path), which are repacked once,
// with 16 rows interleaved (DType::Q8_0x16 / Q4_0x16 / Q4_Kx16 / Q6_Kx16, about the same bytes:
// kernels/cpu/quant/rows16.h); either way the file's pages are not read again and are dropped from memory
// (release_mapped); scratch is per thread and reused, so decode allocates nothing after
// the first token; states are host SequenceStates (StateRef::seqs). Each op calls the same kernels with the same
// arguments as the mixers did before the seam, so results are bit-identical to them.

#include <atomic>

#include "backend/backend.h"
#include "linfer/core/weight_arena.h"

namespace linfer {

class CpuBackend final : public Backend {
 public:
  Device device() const override { return Device::Cpu; }
  bool supports(Op op, DType weights) const override;

  Weight weight(const TensorView& host, WeightUse use) override;
  Param param(const Tensor& host) override;
  void download(const Mat& src, float* dst) override;
  void upload(const float* src, const Mat& dst) override;
  size_t scratch_mark() override;
  void scratch_release(size_t mark) override;
  float* scratch(int64_t n) override;
  std::unique_ptr<StateSlots> make_slots(const StateSpec& spec, int n) override;

  void matmul(const Mat& x, const Weight& w, const Param& bias, const Mat& y) override;
  void matmul_many(std::span<const MatmulCall> calls) override;
  void embedding(const Weight& table, std::span<const int32_t> ids, const Mat& y) override;
  void rms_norm(const Mat& x, const Param& w, const Mat& y, float eps, kernels::NormWeight mode) override;
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
  void gather_rows(const Mat& src, std::span<const int64_t> rows, const Mat& dst) override;
  void scatter_add_rows(const Mat& src, std::span<const int64_t> rows, std::span<const float> w,
                        const Mat& dst) override;

  void conv1d(const Mat& x, const Param& w, const Param& bias, int64_t W, const StateRef& state, const Seqs& seqs,
              bool silu, const Mat& y) override;
  void delta_rule(const kernels::DeltaRuleShape& shape, const DeltaIo& io, const StateRef& S,
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
  Weight resident(const TensorView& host);  // as stored, copied into arena_ unless `--mmap`

  WeightArena arena_;
  std::atomic<bool> told_mapped_{false};  // whether resident() has said that memory ran short
};

}  // namespace linfer
