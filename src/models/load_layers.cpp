#include "models/load_layers.h"

#include <cstring>

#include <fmt/format.h>

#include "ffn/mlp.h"
#include "ffn/moe.h"
#include "linfer/core/error.h"
#include "mixers/attention.h"
#include "mixers/gdn.h"
#include "mixers/kda.h"
#include "mixers/mamba2.h"
#include "mixers/mla.h"
#include "kernels/cpu/mla.h"

namespace linfer {

namespace {

// Checkpoint tensors put on the model's backend: matrices as stored, small parameters as float32.
struct Take {
  WeightStore& ws;
  Backend& be;
  Weight w(const std::string& name, const Shape& shape) { return w(ws.take(name, shape), name); }
  Weight w(const TensorView& v, const std::string& name = "", WeightUse use = WeightUse::Products) {
    // Quantized weights on a backend without kernels for them (CUDA today) fail at load, by name.
    LINFER_CHECK(!is_quantized(v.dtype()) || be.supports(Op::Matmul, v.dtype()),
                 "{} is quantized ({}): the {} backend has no kernels for quantized weights yet (run with "
                 "--device cpu, or load the unquantized checkpoint)",
                 name.empty() ? std::string("a weight") : fmt::format("weight '{}'", name), dtype_name(v.dtype()),
                 device_name(be.device()));
    return be.weight(v, use);
  }
  // A weight made at load from checkpoint tensors: the backend's copy, or (a host backend) the tensor itself.
  Weight derived(Tensor t, const std::string& name = "") {
    Weight w = this->w(t.view(), name);
    if (!w.owner) w.owner = std::make_shared<Tensor>(std::move(t));
    return w;
  }
  Param f32(const std::string& name, int64_t numel) { return be.param(ws.take_f32(name, numel)); }
  Param f32(const Tensor& t) { return be.param(t); }
};

// A weight grouped in blocks of `every` rows, `count` blocks (grouped per head), regrouped by part: for each
// part {first, n} in order, rows [first, first + n) of every block, block after block. As stored (any dtype:
// each row is whole blocks of its format); a new [count · Σn, K] tensor.
struct RowPart {
  int64_t first, n;
};
Tensor regroup_rows(const TensorView& w, std::initializer_list<RowPart> parts, int64_t every, int64_t count) {
  LINFER_CHECK(w.contiguous() && w.ndim() == 2 && every * count == w.dim(0),
               "regroup_rows: a matrix of {} x {} rows expected, found {}", count, every, shape_str(w.shape()));
  int64_t rows = 0;
  for (const RowPart& part : parts) rows += part.n * count;
  const size_t row = w.nbytes() / size_t(w.dim(0));
  Tensor out = Tensor::zeros({rows, w.dim(1)}, w.dtype());
  auto* dst = static_cast<std::byte*>(out.view().data());
  const auto* src = static_cast<const std::byte*>(w.data());
  for (const RowPart& part : parts)
    for (int64_t j = 0; j < count; ++j, dst += size_t(part.n) * row)
      std::memcpy(dst, src + size_t(j * every + part.first) * row, size_t(part.n) * row);
  return out;
}

// A weight whose leading dim is read from the checkpoint (low-rank factors).
TensorView take_rows(WeightStore& ws, const std::string& name, int64_t cols) {
  return ws.take(name, {ws.files().get(name).dim(0), cols});
}

// A depthwise conv weight stored [C, 1, W] (or [C, W]) as float32, row-major [C, W].
Tensor take_conv(WeightStore& ws, const std::string& name, int64_t C, int64_t W) {
  const Shape s = ws.files().get(name).shape();
  LINFER_CHECK(s.size() >= 2 && s[0] == C && s.back() == W, "tensor '{}' in {}: expected a conv weight [{}, 1, {}], found {}",
               name, ws.files().file_of(name), C, W, shape_str(s));
  return ws.take_f32(name, C * W);
}

std::unique_ptr<Mixer> load_kda(Take& tk, const ModelConfig& m, const LayerConfig& l) {
  WeightStore& ws = tk.ws;
  const auto& d = l.delta;
  const std::string p = l.prefix + l.mixer_prefix;
  LINFER_CHECK(d.head_k == d.head_v, "KDA layer {}: key head dim {} != value head dim {} is not supported", p,
               d.head_k, d.head_v);
  const int64_t W = d.conv_width, kd = d.key_dim(), vd = d.value_dim();
  KdaWeights w;
  w.q_proj = tk.w(p + "q_proj.weight", {kd, m.hidden});
  w.k_proj = tk.w(p + "k_proj.weight", {kd, m.hidden});
  w.v_proj = tk.w(p + "v_proj.weight", {vd, m.hidden});
  if (ws.has(p + "q_conv1d.weight")) {  // published / save_pretrained: three convs
    w.conv_q = tk.f32(take_conv(ws, p + "q_conv1d.weight", kd, W));
    w.conv_k = tk.f32(take_conv(ws, p + "k_conv1d.weight", kd, W));
    w.conv_v = tk.f32(take_conv(ws, p + "v_conv1d.weight", vd, W));
  } else {  // transformers in memory: one conv over [q | k | v]
    const int64_t C = 2 * kd + vd;
    const Tensor t = take_conv(ws, ws.pick({p + "conv1d.weight", p + "q_conv1d.weight"}), C, W);
    const TensorView all = t.view().reshape({C, W});
    w.conv_q = tk.f32(regroup_rows(all, {{0, kd}}, C, 1));
    w.conv_k = tk.f32(regroup_rows(all, {{kd, kd}}, C, 1));
    w.conv_v = tk.f32(regroup_rows(all, {{2 * kd, vd}}, C, 1));
  }
  const auto f_a = ws.pick({p + "f_a_proj.weight", p + "forget_gate_down.weight", p + "forget_gate.f_a_proj.weight"});
  const auto f_b = ws.pick({p + "f_b_proj.weight", p + "forget_gate_up.weight", p + "forget_gate.f_b_proj.weight"});
  w.f_a = tk.w(take_rows(ws, f_a, m.hidden));
  w.f_b = tk.w(f_b, {d.v_heads * d.head_k, w.f_a.dim(0)});
  w.A_log = tk.f32(ws.pick({p + "A_log", p + "forget_gate.A_log"}), d.v_heads);
  w.dt_bias = tk.f32(ws.pick({p + "dt_bias", p + "forget_gate.dt_bias"}), d.v_heads * d.head_k);
  w.b_proj = tk.w(ws.pick({p + "b_proj.weight", p + "beta_proj.weight"}), {d.v_heads, m.hidden});
  const auto g_a = ws.pick({p + "g_a_proj.weight", p + "output_gate_down.weight", p + "output_gate.g_a_proj.weight"});
  const auto g_b = ws.pick({p + "g_b_proj.weight", p + "output_gate_up.weight", p + "output_gate.g_b_proj.weight"});
  w.g_a = tk.w(take_rows(ws, g_a, m.hidden));
  w.g_b = tk.w(g_b, {vd, w.g_a.dim(0)});
  w.o_norm = tk.f32(p + "o_norm.weight", d.head_v);
  w.o_proj = tk.w(p + "o_proj.weight", {m.hidden, vd});
  return std::make_unique<KdaMixer>(d, m.norm_eps, std::move(w));
}

std::unique_ptr<Mixer> load_gdn(Take& tk, const ModelConfig& m, const LayerConfig& l) {
  WeightStore& ws = tk.ws;
  const auto& d = l.delta;
  const std::string p = l.prefix + l.mixer_prefix;
  const int64_t H = d.heads, K = d.head_k, r = d.v_heads / d.heads, rV = r * d.head_v;
  GdnWeights w;
  // The checkpoint's projections are grouped per key head ([q_j | k_j | v_j | z_j], [b_j | a_j]); their rows
  // are regrouped here into one product per part, so that each lands in the layout its op reads.
  if (ws.has(p + "in_proj_qkvz.weight")) {
    const std::string name = p + "in_proj_qkvz.weight";
    const TensorView qkvz = ws.take(name, {2 * d.key_dim() + 2 * d.value_dim(), m.hidden});
    const int64_t blk = 2 * K + 2 * rV;
    w.in_proj_qkv = tk.derived(regroup_rows(qkvz, {{0, K}, {K, K}, {2 * K, rV}}, blk, H), name);
    w.in_proj_z = tk.derived(regroup_rows(qkvz, {{2 * K + rV, rV}}, blk, H), name);
  } else {
    w.in_proj_qkv = tk.w(p + "in_proj_qkv.weight", {d.conv_dim(), m.hidden});
    w.in_proj_z = tk.w(p + "in_proj_z.weight", {d.value_dim(), m.hidden});
  }
  const std::string ba_name = p + "in_proj_ba.weight";
  const TensorView ba = ws.take(ba_name, {2 * d.v_heads, m.hidden});
  w.in_proj_b = tk.derived(regroup_rows(ba, {{0, r}}, 2 * r, H), ba_name);
  w.in_proj_a = tk.derived(regroup_rows(ba, {{r, r}}, 2 * r, H), ba_name);
  w.conv = tk.f32(take_conv(ws, p + "conv1d.weight", d.conv_dim(), d.conv_width));
  w.A_log = tk.f32(p + "A_log", d.v_heads);
  w.dt_bias = tk.f32(p + "dt_bias", d.v_heads);
  w.norm = tk.f32(p + "norm.weight", d.head_v);
  w.out_proj = tk.w(p + "out_proj.weight", {m.hidden, d.value_dim()});
  return std::make_unique<GdnMixer>(d, m.norm_eps, std::move(w));
}

std::unique_ptr<Mixer> load_mamba2(Take& tk, const ModelConfig& m, const LayerConfig& l) {
  WeightStore& ws = tk.ws;
  const auto& d = l.mamba;
  const std::string p = l.prefix + l.mixer_prefix;
  const int64_t proj = 2 * d.d_inner() + 2 * d.groups * d.state + d.heads;
  Mamba2Weights w;
  w.in_proj = tk.w(p + "in_proj.weight", {proj, m.hidden});
  if (d.proj_bias) w.in_proj_bias = tk.f32(p + "in_proj.bias", proj);
  w.conv = tk.f32(take_conv(ws, p + "conv1d.weight", d.conv_dim(), d.conv_width));
  if (d.conv_bias) w.conv_bias = tk.f32(p + "conv1d.bias", d.conv_dim());
  w.A_log = tk.f32(p + "A_log", d.heads);
  w.dt_bias = tk.f32(p + "dt_bias", d.heads);
  w.D = tk.f32(p + "D", d.heads);
  w.norm = tk.f32(p + "norm.weight", d.d_inner());
  w.out_proj = tk.w(p + "out_proj.weight", {m.hidden, d.d_inner()});
  if (d.proj_bias) w.out_proj_bias = tk.f32(p + "out_proj.bias", m.hidden);
  return std::make_unique<Mamba2Mixer>(d, m.norm_eps, std::move(w));
}

std::unique_ptr<Mixer> load_attention(Take& tk, const ModelConfig& m, const LayerConfig& l) {
  const auto& d = l.attn;
  const std::string p = l.prefix + l.mixer_prefix;
  AttentionWeights w;
  w.q_proj = tk.w(p + "q_proj.weight", {d.heads * d.head_dim * (d.output_gate ? 2 : 1), m.hidden});
  w.k_proj = tk.w(p + "k_proj.weight", {d.kv_heads * d.head_dim, m.hidden});
  w.v_proj = tk.w(p + "v_proj.weight", {d.kv_heads * d.head_dim, m.hidden});
  w.o_proj = tk.w(p + "o_proj.weight", {m.hidden, d.heads * d.head_dim});
  if (d.qk_norm) {
    w.q_norm = tk.f32(p + "q_norm.weight", d.head_dim);
    w.k_norm = tk.f32(p + "k_norm.weight", d.head_dim);
  }
  return std::make_unique<AttentionMixer>(d, m.norm_eps, m.norm == NormKind::ZeroCentred, std::move(w));
}

std::unique_ptr<Mixer> load_mla(Take& tk, const ModelConfig& m, const LayerConfig& l) {
  const auto& d = l.mla;
  const std::string p = l.prefix + l.mixer_prefix;
  const int64_t dq = d.qk_nope + d.qk_rope;
  MlaWeights w;
  if (d.q_lora_rank > 0) {
    w.q_a = tk.w(p + "q_a_proj.weight", {d.q_lora_rank, m.hidden});
    w.q_a_norm = tk.f32(p + "q_a_layernorm.weight", d.q_lora_rank);
    w.q_b = tk.w(p + "q_b_proj.weight", {d.heads * dq, d.q_lora_rank});
  } else {
    w.q_proj = tk.w(p + "q_proj.weight", {d.heads * dq, m.hidden});
  }
  w.kv_a = tk.w(p + "kv_a_proj_with_mqa.weight", {d.latent_dim(), m.hidden});
  w.kv_a_norm = tk.f32(p + "kv_a_layernorm.weight", d.kv_lora_rank);
  const TensorView kv_b = tk.ws.take(p + "kv_b_proj.weight", {d.heads * (d.qk_nope + d.v_head), d.kv_lora_rank});
  w.kv_b = tk.w(kv_b, p + "kv_b_proj.weight", WeightUse::RowRanges);  // the absorbed form reads each head's rows
  w.kv_b_k_t = tk.derived(kernels::mla_keys_transposed(
      kv_b, {.n_heads = d.heads, .kv_lora_rank = d.kv_lora_rank, .qk_nope_dim = d.qk_nope, .v_dim = d.v_head}));
  w.o_proj = tk.w(p + "o_proj.weight", {m.hidden, d.heads * d.v_head});
  return std::make_unique<MlaMixer>(d, std::move(w));
}

// gate / up / down of an MLP under `p`, in either naming (gate_proj/up_proj/down_proj or w1/w3/w2).
MlpWeights take_mlp(Take& tk, const std::string& p, int64_t hidden, int64_t I) {
  WeightStore& ws = tk.ws;
  MlpWeights w;
  const bool moonshot = !ws.has(p + "gate_proj.weight") && ws.has(p + "w1.weight");
  w.gate = tk.w(p + (moonshot ? "w1.weight" : "gate_proj.weight"), {I, hidden});
  w.up = tk.w(p + (moonshot ? "w3.weight" : "up_proj.weight"), {I, hidden});
  w.down = tk.w(p + (moonshot ? "w2.weight" : "down_proj.weight"), {hidden, I});
  return w;
}

// The first of the layer's FFN prefixes under which `key` exists.
std::string ffn_prefix(const WeightStore& ws, const LayerConfig& l, std::initializer_list<const char*> keys) {
  for (const auto& fp : l.ffn_prefixes)
    for (const char* k : keys)
      if (ws.has(l.prefix + fp + k)) return l.prefix + fp;
  std::string tried;
  for (const auto& fp : l.ffn_prefixes)
    for (const char* k : keys) tried += fmt::format("{}'{}{}{}'", tried.empty() ? "" : ", ", l.prefix, fp, k);
  fail("{}: tensor not found: {}", ws.files().dir(), tried);
}

std::unique_ptr<Ffn> load_moe(Take& tk, const ModelConfig& m, const LayerConfig& l) {
  WeightStore& ws = tk.ws;
  const auto& d = l.moe;
  const std::string p = ffn_prefix(ws, l, {"gate.weight"});
  MoeWeights w;
  w.router = tk.w(p + "gate.weight", {d.experts, m.hidden});
  if (d.correction_bias) {
    const auto bias = ws.first_present({p + "gate.e_score_correction_bias", p + "e_score_correction_bias"});
    LINFER_CHECK(bias, "{}: tensor '{}gate.e_score_correction_bias' not found", ws.files().dir(), p);
    w.correction_bias = ws.take_f32(*bias, d.experts);
  }
  const int64_t I = d.intermediate, H = m.hidden;
  if (auto gu = ws.first_present({p + "experts.gate_up_proj", p + "experts.gate_up_proj.weight"})) {
    // transformers in memory: gate_up_proj [E, 2·I, hidden] (gate rows first), down_proj [E, hidden, I]
    TensorView all_gu = ws.take(*gu, {d.experts, 2 * I, H});
    TensorView all_down = ws.take(ws.pick({p + "experts.down_proj", p + "experts.down_proj.weight"}), {d.experts, H, I});
    for (int64_t e = 0; e < d.experts; ++e) {
      MlpWeights x;
      x.gate_up = tk.w(all_gu.slice0(e, e + 1).reshape({2 * I, H}));
      x.down = tk.w(all_down.slice0(e, e + 1).reshape({H, I}));
      w.experts.push_back(x);
    }
  } else {
    for (int64_t e = 0; e < d.experts; ++e)
      w.experts.push_back(take_mlp(tk, fmt::format("{}experts.{}.", p, e), H, I));
  }
  if (d.shared_intermediate > 0) {
    const auto sp = ws.has(p + "shared_experts.gate_proj.weight") ? p + "shared_experts." : p + "shared_expert.";
    w.shared = take_mlp(tk, sp, H, d.shared_intermediate);
  }
  if (d.shared_gate) w.shared_gate = tk.w(p + "shared_expert_gate.weight", {1, H});
  add_expert_tables(tk.be, w);
  return std::make_unique<Moe>(d, std::move(w));
}

// The backend ops each mixer / FFN kind calls (mixers/*.cpp, ffn/*.cpp).
std::vector<Op> ops_of(MixerKind k) {
  switch (k) {
    case MixerKind::Kda:
      return {Op::Matmul, Op::Conv1d, Op::DecayGate, Op::Unary, Op::DeltaRule, Op::RmsNormGated};
    case MixerKind::Gdn:
      return {Op::Matmul, Op::Copy, Op::Unary, Op::DecayGate, Op::Conv1d, Op::DeltaRule, Op::RmsNormGated};
    case MixerKind::Mamba2: return {Op::Matmul, Op::Conv1d, Op::Mamba2Ssd, Op::Copy, Op::RmsNormGateFirst};
    case MixerKind::Attention:
      return {Op::Matmul, Op::Copy, Op::RmsNorm, Op::Rope, Op::Attention, Op::Unary, Op::Mul};
    case MixerKind::Mla: return {Op::Matmul, Op::RmsNorm, Op::Mla};
  }
  return {};
}

// The MoE's routed experts take one of two ways (ffn/moe.h): routed on the backend, or on the host with the
// backend moving rows.
std::vector<Op> ops_of(FfnKind k, const Backend& be, DType weights) {
  switch (k) {
    case FfnKind::None: return {};
    case FfnKind::Dense: return {Op::Matmul, Op::Swiglu};
    case FfnKind::Moe:
      if (be.supports(Op::MoeRoute, weights)) return {Op::Matmul, Op::Swiglu, Op::ScaleRowsSigmoid, Op::Fill};
      return {Op::Matmul, Op::Swiglu, Op::ScaleRowsSigmoid, Op::Fill, Op::GatherRows, Op::ScatterAddRows};
  }
  return {};
}

}  // namespace

void check_backend_runs(const Backend& be, const ModelConfig& m, DType weights) {
  for (Op op : {Op::Embedding, Op::RmsNorm, Op::Add, Op::Copy, Op::Matmul})
    LINFER_CHECK(be.supports(op, weights), "{} weights: the {} backend has no {} for them yet (run with --device cpu)",
                 dtype_name(weights), device_name(be.device()), op_name(op));
  for (size_t i = 0; i < m.layers.size(); ++i) {
    const LayerConfig& l = m.layers[i];
    for (const auto& ops : {ops_of(l.mixer), ops_of(l.ffn, be, weights)})
      for (Op op : ops)
        LINFER_CHECK(be.supports(op, weights), "layer {} ({}+{}): the {} backend does not run {} yet (run this model "
                     "with --device cpu)", i, mixer_name(l.mixer), ffn_name(l.ffn), device_name(be.device()),
                     op_name(op));
  }
}

std::unique_ptr<Mixer> load_mixer(WeightStore& ws, Backend& be, const ModelConfig& m, const LayerConfig& l) {
  Take tk{ws, be};
  switch (l.mixer) {
    case MixerKind::Kda: return load_kda(tk, m, l);
    case MixerKind::Gdn: return load_gdn(tk, m, l);
    case MixerKind::Mamba2: return load_mamba2(tk, m, l);
    case MixerKind::Attention: return load_attention(tk, m, l);
    case MixerKind::Mla: return load_mla(tk, m, l);
  }
  fail("unknown mixer kind");
}

std::unique_ptr<Ffn> load_ffn(WeightStore& ws, Backend& be, const ModelConfig& m, const LayerConfig& l) {
  Take tk{ws, be};
  switch (l.ffn) {
    case FfnKind::None: return nullptr;
    case FfnKind::Dense: {
      const std::string p = ffn_prefix(ws, l, {"gate_proj.weight", "w1.weight"});
      return std::make_unique<Mlp>(take_mlp(tk, p, m.hidden, l.dense_intermediate));
    }
    case FfnKind::Moe: return load_moe(tk, m, l);
  }
  fail("unknown ffn kind");
}

void declare_layer_state(const LayerConfig& l, int layer, std::vector<StateTensorSpec>& out) {
  switch (l.mixer) {
    case MixerKind::Kda: KdaMixer::state_spec(l.delta, layer, out); return;
    case MixerKind::Gdn: GdnMixer::state_spec(l.delta, layer, out); return;
    case MixerKind::Mamba2: Mamba2Mixer::state_spec(l.mamba, layer, out); return;
    case MixerKind::Attention: AttentionMixer::state_spec(l.attn, layer, out); return;
    case MixerKind::Mla: MlaMixer::state_spec(l.mla, layer, out); return;
  }
}

int64_t count_params(const ModelConfig& m) {
  const int64_t h = m.hidden;
  int64_t n = m.vocab * h * (m.tie_embeddings ? 1 : 2) + h;  // embeddings (+ head) + final norm
  for (const auto& l : m.layers) {
    n += h * (l.post_norm.empty() ? 1 : 2);
    switch (l.mixer) {
      case MixerKind::Kda: {
        const auto& d = l.delta;
        const int64_t kd = d.key_dim(), vd = d.value_dim(), r = d.head_v;
        n += (2 * kd + vd) * h + (2 * kd + vd) * d.conv_width + 2 * (h * r + r * vd) + d.v_heads + vd +
             d.v_heads * h + d.head_v + h * vd;
        break;
      }
      case MixerKind::Gdn: {
        const auto& d = l.delta;
        n += (2 * d.key_dim() + 2 * d.value_dim()) * h + 2 * d.v_heads * h + d.conv_dim() * d.conv_width +
             2 * d.v_heads + d.head_v + h * d.value_dim();
        break;
      }
      case MixerKind::Mamba2: {
        const auto& d = l.mamba;
        n += (2 * d.d_inner() + 2 * d.groups * d.state + d.heads) * h + d.conv_dim() * (d.conv_width + 1) +
             3 * d.heads + d.d_inner() + h * d.d_inner();
        break;
      }
      case MixerKind::Attention: {
        const auto& d = l.attn;
        n += d.heads * d.head_dim * (d.output_gate ? 2 : 1) * h + 2 * d.kv_heads * d.head_dim * h +
             h * d.heads * d.head_dim + (d.qk_norm ? 2 * d.head_dim : 0);
        break;
      }
      case MixerKind::Mla: {
        const auto& d = l.mla;
        const int64_t dq = d.heads * (d.qk_nope + d.qk_rope);
        n += (d.q_lora_rank > 0 ? d.q_lora_rank * (h + 1) + dq * d.q_lora_rank : dq * h) + d.latent_dim() * h +
             d.kv_lora_rank + d.heads * (d.qk_nope + d.v_head) * d.kv_lora_rank + h * d.heads * d.v_head;
        break;
      }
    }
    if (l.ffn == FfnKind::Dense) n += 3 * h * l.dense_intermediate;
    if (l.ffn == FfnKind::Moe) {
      const auto& d = l.moe;
      n += d.experts * h + (d.correction_bias ? d.experts : 0) + d.experts * 3 * h * d.intermediate +
           3 * h * d.shared_intermediate + (d.shared_gate ? h : 0);
    }
  }
  return n;
}

}  // namespace linfer
