// Kimi Linear from llama.cpp's GGUF ("kimi-linear"). What the converter did, undone here:
//   - layer kinds: attention.head_count_kv is per layer, 0 for KDA layers, > 0 for MLA layers;
//   - KDA: q/k/v convs reshaped to [1, C, 1, W] (back to [C, 1, W]); A_log stored as
//     ssm_a = -exp(A_log); dt_bias renamed ssm_dt.bias; the gate projections renamed ssm_f_a/f_b,
//     ssm_g_a/g_b, ssm_beta; o_norm renamed ssm_norm. KDA head count is not in the metadata: it is
//     q_proj's rows / kda.head_dim;
//   - MLA: kv_b_proj [H (nope + v), rank] split into attn_k_b = k_b^T [H, rank, nope] and attn_v_b
//     [H, v, rank]: joined back here (dequantized to float32: the transpose cannot stay in blocks);
//     head dims from attention.key_length_mla (nope + rope), rope.dimension_count (rope),
//     attention.value_length_mla (v);
//   - MoE: experts stacked into ffn_{gate,up,down}_exps [E, rows, cols]; the router's
//     e_score_correction_bias renamed exp_probs_b.bias; sigmoid / softmax from expert_gating_func
//     (1 softmax, 2 sigmoid); routed_scaling_factor from expert_weights_scale. Which layers are MoE
//     is read from the tensors (ffn_gate_inp present).
// The renormalisation flag is not in the file (moe_renormalize): true, as the published checkpoint
// and transformers' default have it, unless expert_weights_norm says otherwise.

#include <cstring>

#include <fmt/format.h>

#include "linfer/core/error.h"
#include "models/gguf_checkpoint.h"

namespace linfer {

namespace {

// kv_b_proj [H (nope + v), rank] (float32) from k_b [H, rank, nope] and v_b [H, v, rank].
Tensor join_kv_b(const Tensor& k_b, const Tensor& v_b, int64_t H, int64_t nope, int64_t v, int64_t rank,
                 const std::string& what) {
  LINFER_CHECK(k_b.shape() == (Shape{H, rank, nope}) && v_b.shape() == (Shape{H, v, rank}),
               "{}: attn_k_b {} / attn_v_b {}: expected [{}, {}, {}] and [{}, {}, {}]", what, shape_str(k_b.shape()),
               shape_str(v_b.shape()), H, rank, nope, H, v, rank);
  Tensor out = Tensor::zeros({H * (nope + v), rank});
  for (int64_t h = 0; h < H; ++h) {
    float* rows = out.f32() + h * (nope + v) * rank;
    for (int64_t i = 0; i < nope; ++i)
      for (int64_t r = 0; r < rank; ++r) rows[i * rank + r] = k_b.f32()[(h * rank + r) * nope + i];
    std::memcpy(rows + nope * rank, v_b.f32() + h * v * rank, size_t(v * rank) * sizeof(float));
  }
  return out;
}

}  // namespace

nlohmann::json kimi_linear_from_gguf(GgufMapper& m) {
  const GgufHeader& h = m.meta();
  nlohmann::json c = common_config(m, "kimi_linear");
  const int64_t n_layers = h.get_int(m.key("block_count"));
  c["num_hidden_layers"] = n_layers;
  c["rms_norm_eps"] = h.get_float(m.key("attention.layer_norm_rms_epsilon"));
  const std::vector<int64_t> kv_heads = h.per_layer_ints(m.key("attention.head_count_kv"), n_layers);

  // KDA dims (from the first KDA layer's q_proj).
  const int64_t kda_head_dim = h.get_int(m.key("kda.head_dim"));
  int64_t kda_heads = 0;
  for (int64_t l = 0; l < n_layers && kda_heads == 0; ++l)
    if (kv_heads[size_t(l)] == 0) {
      const Shape& q = m.info(GgufMapper::blk(l, "attn_q.weight")).shape;
      LINFER_CHECK(kda_head_dim > 0 && q[0] % kda_head_dim == 0, "{}: blk.{}.attn_q.weight has {} rows, not a "
                   "multiple of kda.head_dim {}", m.label(), l, q[0], kda_head_dim);
      kda_heads = q[0] / kda_head_dim;
    }
  c["linear_num_heads"] = kda_heads > 0 ? kda_heads : 1;
  c["linear_head_dim"] = kda_head_dim;
  c["linear_conv_kernel_dim"] = h.get_int(m.key("ssm.conv_kernel"));

  // MLA dims.
  const int64_t heads = h.get_int(m.key("attention.head_count"));
  const int64_t rope = h.get_int(m.key("rope.dimension_count"));
  const int64_t nope = h.get_int(m.key("attention.key_length_mla")) - rope;
  const int64_t v_head = h.get_int(m.key("attention.value_length_mla"));
  const int64_t rank = h.get_int(m.key("attention.kv_lora_rank"));
  c["num_attention_heads"] = heads;
  c["qk_nope_head_dim"] = nope;
  c["qk_rope_head_dim"] = rope;
  c["v_head_dim"] = v_head;
  c["kv_lora_rank"] = rank;
  if (auto q_rank = h.opt_int(m.key("attention.q_lora_rank"))) c["q_lora_rank"] = *q_rank;

  // MoE.
  c["num_experts"] = h.get_int(m.key("expert_count"));
  c["num_experts_per_token"] = h.get_int(m.key("expert_used_count"));
  c["moe_intermediate_size"] = h.get_int(m.key("expert_feed_forward_length"));
  c["num_shared_experts"] = h.opt_int(m.key("expert_shared_count")).value_or(1);
  c["intermediate_size"] = h.opt_int(m.key("feed_forward_length")).value_or(0);
  c["routed_scaling_factor"] = h.opt_float(m.key("expert_weights_scale")).value_or(1.0);
  c["moe_renormalize"] = h.opt_bool(m.key("expert_weights_norm")).value_or(true);
  const int64_t gating = h.opt_int(m.key("expert_gating_func")).value_or(2);
  LINFER_CHECK(gating == 1 || gating == 2, "{}: expert_gating_func {} is not supported (1 softmax, 2 sigmoid)",
               m.label(), gating);
  c["moe_router_activation_func"] = gating == 1 ? "softmax" : "sigmoid";
  if (auto g = h.opt_int(m.key("expert_group_count"))) c["num_expert_group"] = *g;
  if (auto g = h.opt_int(m.key("expert_group_used_count"))) c["topk_group"] = *g;

  m.alias("token_embd.weight", "model.embed_tokens.weight");
  m.alias("output_norm.weight", "model.norm.weight");
  if (m.has("output.weight")) m.alias("output.weight", "lm_head.weight");
  nlohmann::json layer_types = nlohmann::json::array(), mlp_types = nlohmann::json::array();
  for (int64_t l = 0; l < n_layers; ++l) {
    const std::string p = fmt::format("model.layers.{}.", l), a = p + "self_attn.";
    m.alias_layer(l, p, {{"attn_norm.weight", "input_layernorm.weight"},
                         {"ffn_norm.weight", "post_attention_layernorm.weight"}});
    m.alias_layer(l, a, {{"attn_q.weight", "q_proj.weight"}, {"attn_output.weight", "o_proj.weight"}});
    if (kv_heads[size_t(l)] == 0) {  // KDA
      layer_types.push_back("linear_attention");
      const int64_t kd = kda_heads * kda_head_dim, W = c["linear_conv_kernel_dim"];
      for (const char* x : {"q", "k", "v"})
        m.alias(GgufMapper::blk(l, fmt::format("ssm_conv1d_{}.weight", x)), a + fmt::format("{}_conv1d.weight", x),
                Shape{kd, 1, W});
      m.alias_layer(l, a, {{"attn_k.weight", "k_proj.weight"},
                           {"attn_v.weight", "v_proj.weight"},
                           {"ssm_f_a.weight", "f_a_proj.weight"},
                           {"ssm_f_b.weight", "f_b_proj.weight"},
                           {"ssm_beta.weight", "b_proj.weight"},
                           {"ssm_g_a.weight", "g_a_proj.weight"},
                           {"ssm_g_b.weight", "g_b_proj.weight"},
                           {"ssm_dt.bias", "dt_bias"},
                           {"ssm_norm.weight", "o_norm.weight"}});
      const std::string A = GgufMapper::blk(l, "ssm_a");
      m.owned({A}, a + "A_log", a_log_from_a(m.f32(A), m.label() + ": " + A));
    } else {  // MLA
      layer_types.push_back("full_attention");
      m.alias_layer(l, a, {{"attn_q_a.weight", "q_a_proj.weight"},
                           {"attn_q_a_norm.weight", "q_a_layernorm.weight"},
                           {"attn_q_b.weight", "q_b_proj.weight"},
                           {"attn_kv_a_mqa.weight", "kv_a_proj_with_mqa.weight"},
                           {"attn_kv_a_norm.weight", "kv_a_layernorm.weight"},
                           {"attn_kv_b.weight", "kv_b_proj.weight"}});
      if (!m.has(GgufMapper::blk(l, "attn_kv_b.weight"))) {
        const std::string kb = GgufMapper::blk(l, "attn_k_b.weight"), vb = GgufMapper::blk(l, "attn_v_b.weight");
        m.owned({kb, vb}, a + "kv_b_proj.weight",
                join_kv_b(m.f32(kb), m.f32(vb), heads, nope, v_head, rank, m.label() + ": layer " + std::to_string(l)));
      }
    }
    if (m.has(GgufMapper::blk(l, "ffn_gate_inp.weight"))) {  // MoE
      mlp_types.push_back("sparse");
      const std::string f = p + "block_sparse_moe.";
      m.alias(GgufMapper::blk(l, "ffn_gate_inp.weight"), f + "gate.weight");
      m.alias(GgufMapper::blk(l, "exp_probs_b.bias"), f + "gate.e_score_correction_bias");
      m.split_experts(GgufMapper::blk(l, "ffn_gate_exps.weight"), f + "experts.{}.w1.weight");
      m.split_experts(GgufMapper::blk(l, "ffn_down_exps.weight"), f + "experts.{}.w2.weight");
      m.split_experts(GgufMapper::blk(l, "ffn_up_exps.weight"), f + "experts.{}.w3.weight");
      m.alias_layer(l, f + "shared_experts.", {{"ffn_gate_shexp.weight", "gate_proj.weight"},
                                               {"ffn_up_shexp.weight", "up_proj.weight"},
                                               {"ffn_down_shexp.weight", "down_proj.weight"}});
    } else {
      mlp_types.push_back("dense");
      m.alias_layer(l, p + "mlp.", {{"ffn_gate.weight", "gate_proj.weight"},
                                    {"ffn_up.weight", "up_proj.weight"},
                                    {"ffn_down.weight", "down_proj.weight"}});
    }
  }
  c["layer_types"] = layer_types;
  c["mlp_layer_types"] = mlp_types;
  return c;
}

}  // namespace linfer
