// Qwen3-Next from llama.cpp's GGUF ("qwen3next"). What the converter did, undone here:
//   - every RMSNorm weight except the GDN output norm (ssm_norm) is stored as 1 + w (Qwen3-Next's
//     norms compute x̂·(1 + w)): w is recovered as stored - 1 in float32, so x̂·(1 + w) multiplies by
//     exactly the stored value;
//   - in_proj_qkvz (rows grouped per key head: q, k, v, z) is split into attn_qkv ([all q | all k |
//     all v]) and attn_gate (all z), which llama-quantize may give different types (Q4_K_M: Q6_K and
//     Q4_K): both are kept as they are, as the GDN mixer's split layout in_proj_qkv / in_proj_z
//     (mixers/gdn.h);
//   - A_log stored as ssm_a = -exp(A_log); conv1d squeezed to [C, W]; dt_bias renamed ssm_dt.bias;
//   - experts stacked into ffn_{gate,up,down}_exps [E, rows, cols] (or gate and up fused into
//     ffn_gate_up_exps, gate rows first, which is transformers' gate_up_proj);
//   - MTP layers appended as blocks [block_count - nextn_predict_layers, block_count): ignored, as
//     transformers ignores them.
// Dims: ssm.state_size = key head dim, ssm.group_count = key heads, ssm.time_step_rank = value heads,
// ssm.inner_size = value heads x value head dim; rope.dimension_count = head_dim x partial factor.

#include <fmt/format.h>

#include "linfer/core/error.h"
#include "models/gguf_checkpoint.h"

namespace linfer {

namespace {

// The norm weight w from the stored 1 + w.
Tensor minus_one(Tensor t) {
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] -= 1.0f;
  return t;
}

}  // namespace

nlohmann::json qwen3_next_from_gguf(GgufMapper& m) {
  const GgufHeader& h = m.meta();
  nlohmann::json c = common_config(m, "qwen3_next");
  const int64_t n_blocks = h.get_int(m.key("block_count"));
  const int64_t n_mtp = h.opt_int(m.key("nextn_predict_layers")).value_or(0);
  const int64_t n_layers = n_blocks - n_mtp;
  LINFER_CHECK(n_layers > 0, "{}: block_count {} with {} MTP layers leaves no layer", m.label(), n_blocks, n_mtp);
  for (int64_t l = n_layers; l < n_blocks; ++l) m.ignore_prefix(fmt::format("blk.{}.", l));
  c["num_hidden_layers"] = n_layers;
  c["rms_norm_eps"] = h.get_float(m.key("attention.layer_norm_rms_epsilon"));
  const int64_t heads = h.get_int(m.key("attention.head_count"));
  const int64_t head_dim = h.get_int(m.key("attention.key_length"));
  c["num_attention_heads"] = heads;
  c["num_key_value_heads"] = h.get_int(m.key("attention.head_count_kv"));
  c["head_dim"] = head_dim;
  c["rope_theta"] = h.opt_float(m.key("rope.freq_base")).value_or(10000.0);
  c["partial_rotary_factor"] = double(h.get_int(m.key("rope.dimension_count"))) / double(head_dim);
  const int64_t nk = h.get_int(m.key("ssm.group_count")), hk = h.get_int(m.key("ssm.state_size"));
  const int64_t nv = h.get_int(m.key("ssm.time_step_rank")), inner = h.get_int(m.key("ssm.inner_size"));
  LINFER_CHECK(nk > 0 && nv > 0 && nv % nk == 0 && inner % nv == 0,
               "{}: ssm.group_count {} (key heads), ssm.time_step_rank {} (value heads), ssm.inner_size {} do not fit",
               m.label(), nk, nv, inner);
  const int64_t hv = inner / nv;
  c["linear_num_key_heads"] = nk;
  c["linear_key_head_dim"] = hk;
  c["linear_num_value_heads"] = nv;
  c["linear_value_head_dim"] = hv;
  c["linear_conv_kernel_dim"] = h.get_int(m.key("ssm.conv_kernel"));
  c["intermediate_size"] = h.opt_int(m.key("feed_forward_length")).value_or(0);
  c["num_experts"] = h.opt_int(m.key("expert_count")).value_or(0);
  c["num_experts_per_tok"] = h.opt_int(m.key("expert_used_count")).value_or(0);
  c["moe_intermediate_size"] = h.opt_int(m.key("expert_feed_forward_length")).value_or(0);
  c["shared_expert_intermediate_size"] = h.opt_int(m.key("expert_shared_feed_forward_length")).value_or(0);
  if (auto norm = h.opt_bool(m.key("expert_weights_norm"))) c["norm_topk_prob"] = *norm;

  m.alias("token_embd.weight", "model.embed_tokens.weight");
  if (m.has("output.weight")) m.alias("output.weight", "lm_head.weight");
  m.owned({"output_norm.weight"}, "model.norm.weight", minus_one(m.f32("output_norm.weight")));
  nlohmann::json layer_types = nlohmann::json::array(), mlp_only = nlohmann::json::array();
  for (int64_t l = 0; l < n_layers; ++l) {
    const std::string p = fmt::format("model.layers.{}.", l);
    auto norm = [&](const char* gguf, const std::string& hf) {
      const std::string g = GgufMapper::blk(l, gguf);
      m.owned({g}, p + hf, minus_one(m.f32(g)));
    };
    norm("attn_norm.weight", "input_layernorm.weight");
    norm("post_attention_norm.weight", "post_attention_layernorm.weight");
    if (m.has(GgufMapper::blk(l, "attn_qkv.weight"))) {  // Gated DeltaNet
      layer_types.push_back("linear_attention");
      m.alias(GgufMapper::blk(l, "attn_qkv.weight"), p + "linear_attn.in_proj_qkv.weight");
      m.alias(GgufMapper::blk(l, "attn_gate.weight"), p + "linear_attn.in_proj_z.weight");
      m.alias_layer(l, p + "linear_attn.", {{"ssm_ba.weight", "in_proj_ba.weight"},
                                            {"ssm_conv1d.weight", "conv1d.weight"},
                                            {"ssm_dt.bias", "dt_bias"},
                                            {"ssm_norm.weight", "norm.weight"},
                                            {"ssm_out.weight", "out_proj.weight"}});
      const std::string a = GgufMapper::blk(l, "ssm_a");
      m.owned({a}, p + "linear_attn.A_log", a_log_from_a(m.f32(a), m.label() + ": " + a));
    } else {  // gated full attention
      layer_types.push_back("full_attention");
      m.alias_layer(l, p + "self_attn.", {{"attn_q.weight", "q_proj.weight"},
                                          {"attn_k.weight", "k_proj.weight"},
                                          {"attn_v.weight", "v_proj.weight"},
                                          {"attn_output.weight", "o_proj.weight"}});
      norm("attn_q_norm.weight", "self_attn.q_norm.weight");
      norm("attn_k_norm.weight", "self_attn.k_norm.weight");
    }
    if (m.has(GgufMapper::blk(l, "ffn_gate_inp.weight"))) {  // MoE
      const int64_t hidden = c["hidden_size"];
      m.alias(GgufMapper::blk(l, "ffn_gate_inp.weight"), p + "mlp.gate.weight");
      if (m.has(GgufMapper::blk(l, "ffn_gate_inp_shexp.weight")))
        m.alias(GgufMapper::blk(l, "ffn_gate_inp_shexp.weight"), p + "mlp.shared_expert_gate.weight", Shape{1, hidden});
      if (m.has(GgufMapper::blk(l, "ffn_gate_up_exps.weight"))) {
        m.alias(GgufMapper::blk(l, "ffn_gate_up_exps.weight"), p + "mlp.experts.gate_up_proj");
        m.alias(GgufMapper::blk(l, "ffn_down_exps.weight"), p + "mlp.experts.down_proj");
      } else {
        m.split_experts(GgufMapper::blk(l, "ffn_gate_exps.weight"), p + "mlp.experts.{}.gate_proj.weight");
        m.split_experts(GgufMapper::blk(l, "ffn_up_exps.weight"), p + "mlp.experts.{}.up_proj.weight");
        m.split_experts(GgufMapper::blk(l, "ffn_down_exps.weight"), p + "mlp.experts.{}.down_proj.weight");
      }
      m.alias_layer(l, p + "mlp.shared_expert.", {{"ffn_gate_shexp.weight", "gate_proj.weight"},
                                                  {"ffn_up_shexp.weight", "up_proj.weight"},
                                                  {"ffn_down_shexp.weight", "down_proj.weight"}});
    } else {
      mlp_only.push_back(l);
      m.alias_layer(l, p + "mlp.", {{"ffn_gate.weight", "gate_proj.weight"},
                                    {"ffn_up.weight", "up_proj.weight"},
                                    {"ffn_down.weight", "down_proj.weight"}});
    }
  }
  c["layer_types"] = layer_types;
  if (c["num_experts"].get<int64_t>() > 0) c["mlp_only_layers"] = mlp_only;
  return c;
}

}  // namespace linfer
