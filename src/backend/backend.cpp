// The parts of the seam every backend shares: names, the "not on this backend" default of each op, and
// the choice of backend per device.

#include "backend/backend.h"

#include "linfer/core/error.h"

namespace linfer {

const char* device_name(Device d) {
  switch (d) {
    case Device::Cpu: return "cpu";
    case Device::Cuda: return "cuda";
  }
  return "?";
}

Device parse_device(std::string_view name) {
  if (name == "cpu") return Device::Cpu;
  if (name == "cuda") return Device::Cuda;
  fail("unknown device '{}': expected cpu or cuda", name);
}

Mat Mat::split_rows(int64_t n) const {
  LINFER_CHECK(n > 0 && cols % n == 0 && dense(), "Mat::split_rows: [{}, {}] (ld {}) does not split into rows of {}",
               rows, cols, ld, n);
  return {p, rows * (cols / n), n, n};
}

const char* op_name(Op op) {
  switch (op) {
    case Op::Matmul: return "matmul";
    case Op::Embedding: return "embedding";
    case Op::RmsNorm: return "rms_norm";
    case Op::RmsNormGated: return "rms_norm_gated";
    case Op::RmsNormGateFirst: return "rms_norm_gate_first";
    case Op::Unary: return "unary";
    case Op::Swiglu: return "swiglu";
    case Op::Add: return "add";
    case Op::Mul: return "mul";
    case Op::Copy: return "copy";
    case Op::Fill: return "fill";
    case Op::DecayGate: return "decay_gate";
    case Op::ScaleRowsSigmoid: return "scale_rows_sigmoid";
    case Op::GatherRows: return "gather_rows";
    case Op::ScatterAddRows: return "scatter_add_rows";
    case Op::Conv1d: return "conv1d";
    case Op::DeltaRule: return "delta_rule";
    case Op::Mamba2Ssd: return "mamba2_ssd";
    case Op::Rope: return "rope";
    case Op::Attention: return "attention";
    case Op::Mla: return "mla";
    case Op::MoeRoute: return "moe_route";
  }
  return "?";
}

void Backend::unsupported(Op op) const {
  fail("the {} backend does not implement {} yet (run this model with --device cpu)", device_name(device()),
       op_name(op));
}

void Backend::matmul_many(std::span<const MatmulCall> calls) {
  for (const MatmulCall& c : calls) matmul(c.x, *c.w, c.bias ? *c.bias : Param{}, c.y);
}

void Backend::add_rms_norm(const Mat& x, const Mat& r, const Param& w, const Mat& y, float eps,
                           kernels::NormWeight mode) {
  add(x, r);
  rms_norm(x, w, y, eps, mode);
}

void Backend::embedding(const Weight&, std::span<const int32_t>, const Mat&) { unsupported(Op::Embedding); }
void Backend::rms_norm(const Mat&, const Param&, const Mat&, float, kernels::NormWeight) { unsupported(Op::RmsNorm); }
void Backend::rms_norm_gated(const Mat&, const Mat&, const Param&, const Mat&, float, kernels::GateAct) {
  unsupported(Op::RmsNormGated);
}
void Backend::rms_norm_gate_first(const Mat&, const Mat&, const Param&, const Mat&, int64_t, float) {
  unsupported(Op::RmsNormGateFirst);
}
void Backend::unary(Unary, const Mat&, const Mat&) { unsupported(Op::Unary); }
void Backend::swiglu(const Mat&, const Mat&, const Mat&) { unsupported(Op::Swiglu); }
void Backend::add(const Mat&, const Mat&) { unsupported(Op::Add); }
void Backend::mul(const Mat&, const Mat&) { unsupported(Op::Mul); }
void Backend::copy(const Mat&, const Mat&) { unsupported(Op::Copy); }
void Backend::fill(const Mat&, float) { unsupported(Op::Fill); }
void Backend::decay_gate(const Mat&, const Param&, const Param&, int64_t) { unsupported(Op::DecayGate); }
void Backend::scale_rows_sigmoid(const Mat&, const Mat&) { unsupported(Op::ScaleRowsSigmoid); }
void Backend::gather_rows(const Mat&, std::span<const int64_t>, const Mat&) { unsupported(Op::GatherRows); }
void Backend::scatter_add_rows(const Mat&, std::span<const int64_t>, std::span<const float>, const Mat&) {
  unsupported(Op::ScatterAddRows);
}
ExpertTable Backend::expert_table(std::span<const Weight* const>, std::span<const Weight* const>) {
  unsupported(Op::MoeRoute);
}
void Backend::moe_route(const Mat&, const MoeRouting&, const Param&, const Mat&, const Mat&) { unsupported(Op::MoeRoute); }
void Backend::expert_matmul(const Mat&, int64_t, const ExpertTable&, const Mat&, const Mat&) {
  unsupported(Op::MoeRoute);
}
void Backend::moe_combine(const Mat&, const Mat&, const Mat&) { unsupported(Op::MoeRoute); }
void Backend::conv1d(const Mat&, const Param&, const Param&, int64_t, const StateRef&, const Seqs&, bool, const Mat&) {
  unsupported(Op::Conv1d);
}
void Backend::delta_rule(const kernels::DeltaRuleShape&, const DeltaIo&, const StateRef&, const Seqs&) {
  unsupported(Op::DeltaRule);
}
std::pair<size_t, int64_t> Backend::DeltaLayerIo::conv_channels(int64_t first, int64_t n) const {
  size_t i = 0;
  while (i < conv.size() && first >= conv[i].x.cols) first -= conv[i++].x.cols;
  LINFER_CHECK(i < conv.size() && first + n <= conv[i].x.cols, "delta_layer: q, k and v must each lie within one conv");
  return {i, first};
}

void Backend::delta_layer(const kernels::DeltaRuleShape& shape, const DeltaLayerIo& io, const StateRef& S,
                          const Seqs& seqs) {
  LINFER_CHECK(io.conv.size() <= 3, "delta_layer: {} convs for q, k and v", io.conv.size());
  Tmp tmp(*this);
  Mat out[3];  // each conv's output [T, C], dense
  for (size_t i = 0; i < io.conv.size(); ++i) {
    const DeltaConv& c = io.conv[i];
    out[i] = tmp.mat(c.x.rows, c.x.cols);
    conv1d(c.x, c.w, {}, io.conv_width, c.window, seqs, true, out[i]);
  }
  auto channels = [&](int64_t first, int64_t n) {  // channels [first, first + n) of the convs' outputs
    const auto [i, at] = io.conv_channels(first, n);
    return out[i].cols_of(at, n);
  };
  const int64_t kd = shape.H * shape.K, vd = shape.HV * shape.V;
  decay_gate(io.g, io.dt_bias, io.A_log, shape.decay == kernels::DeltaDecay::PerKey ? shape.K : 1);
  unary(Unary::Sigmoid, io.beta, io.beta);
  delta_rule(shape, {.q = channels(0, kd), .k = channels(kd, kd), .v = channels(2 * kd, vd), .beta = io.beta,
                     .g = io.g, .o = io.o},
             S, seqs);
  rms_norm_gated(io.o.split_rows(shape.V), io.gate.split_rows(shape.V), io.norm_w, io.o.split_rows(shape.V), io.eps,
                 io.act);
}
void Backend::mamba2_ssd(const kernels::Mamba2Dims&, const Mamba2Gates&, const Mamba2Io&, const StateRef&,
                         const Seqs&) {
  unsupported(Op::Mamba2Ssd);
}
void Backend::rope(const Mat&, int64_t, int64_t, int64_t, const Seqs&, std::span<const float>) {
  unsupported(Op::Rope);
}
void Backend::attention(const Mat&, const Mat&, const Mat&, const kernels::AttentionDims&, const StateRef&,
                        const StateRef&, const Seqs&, const Mat&) {
  unsupported(Op::Attention);
}
void Backend::mla(const Mat&, const Mat&, const Weight&, const Weight&, const kernels::MlaDims&, const StateRef&,
                  const Seqs&, const Mat&) {
  unsupported(Op::Mla);
}

std::shared_ptr<Backend> make_backend(Device d) {
  if (d == Device::Cuda) return make_cuda_backend();
  return std::shared_ptr<Backend>(&cpu_backend(), [](Backend*) {});
}

}  // namespace linfer
