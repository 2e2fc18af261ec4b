// Kimi Linear (Moonshot): KDA layers and NoPE MLA layers (3 : 1), MoE with a sigmoid router,
// leading dense layers. Reads both config formats:
//   - transformers': layer_types ("linear_attention" / "full_attention"), mlp_layer_types
//     ("dense" / "sparse"), linear_num_heads / linear_head_dim / linear_conv_kernel_dim (or the
//     linear_num_{key,value}_heads / linear_{key,value}_head_dim spelling);
//   - the published checkpoint's: linear_attn_config {kda_layers, full_attn_layers (1-indexed),
//     num_heads, head_dim, short_conv_kernel_size}, first_k_dense_replace, num_experts,
//     num_experts_per_token, num_shared_experts, moe_renormalize, moe_router_activation_func.

#include <fmt/format.h>

#include "models/config_fields.h"
#include "models/registry.h"

namespace linfer {

namespace {

std::vector<MixerKind> kimi_mixers(const Config& c, int64_t n_layers) {
  std::vector<MixerKind> kinds(n_layers, MixerKind::Kda);
  if (c.has("layer_types")) {
    auto types = c.get<std::vector<std::string>>("layer_types");
    LINFER_CHECK(int64_t(types.size()) == n_layers, "{}: layer_types has {} entries, num_hidden_layers is {}",
                 c.file(), types.size(), n_layers);
    for (int64_t i = 0; i < n_layers; ++i) {
      if (types[i] == "full_attention") kinds[i] = MixerKind::Mla;
      else if (types[i] == "linear_attention") kinds[i] = MixerKind::Kda;
      else fail("{}: layer_types[{}] = '{}': expected linear_attention or full_attention", c.file(), i, types[i]);
    }
    return kinds;
  }
  if (c.has("linear_attn_config") && c.sub("linear_attn_config").has("kda_layers")) {
    Config lin = c.sub("linear_attn_config");
    std::vector<int> seen(n_layers, 0);
    auto mark = [&](const char* key, MixerKind kind) {
      if (!lin.has(key)) return;
      for (int64_t one_based : lin.get<std::vector<int64_t>>(key)) {
        LINFER_CHECK(one_based >= 1 && one_based <= n_layers,
                     "{}: linear_attn_config.{} has layer {} (1-indexed; the model has {} layers)", c.file(), key,
                     one_based, n_layers);
        kinds[one_based - 1] = kind;
        ++seen[one_based - 1];
      }
    };
    mark("kda_layers", MixerKind::Kda);
    mark("full_attn_layers", MixerKind::Mla);
    for (int64_t i = 0; i < n_layers; ++i)
      LINFER_CHECK(seen[i] == 1, "{}: layer {} (1-indexed) appears {} times in kda_layers + full_attn_layers",
                   c.file(), i + 1, seen[i]);
    return kinds;
  }
  // transformers' default: every 4th layer is full attention.
  for (int64_t i = 0; i < n_layers; ++i) kinds[i] = (i + 1) % 4 == 0 ? MixerKind::Mla : MixerKind::Kda;
  return kinds;
}

std::vector<FfnKind> kimi_ffns(const Config& c, int64_t n_layers) {
  std::vector<FfnKind> kinds(n_layers, FfnKind::Moe);
  if (c.has("mlp_layer_types")) {
    auto types = c.get<std::vector<std::string>>("mlp_layer_types");
    LINFER_CHECK(int64_t(types.size()) == n_layers, "{}: mlp_layer_types has {} entries, num_hidden_layers is {}",
                 c.file(), types.size(), n_layers);
    for (int64_t i = 0; i < n_layers; ++i) {
      if (types[i] == "dense") kinds[i] = FfnKind::Dense;
      else if (types[i] == "sparse") kinds[i] = FfnKind::Moe;
      else fail("{}: mlp_layer_types[{}] = '{}': expected dense or sparse", c.file(), i, types[i]);
    }
    return kinds;
  }
  const int64_t first_dense = c.get<int64_t>("first_k_dense_replace", 1);
  const int64_t freq = c.get<int64_t>("moe_layer_freq", 1);
  LINFER_CHECK(freq >= 1, "{}: moe_layer_freq must be >= 1, found {}", c.file(), freq);
  for (int64_t i = 0; i < n_layers; ++i)
    kinds[i] = (i >= first_dense && i % freq == 0) ? FfnKind::Moe : FfnKind::Dense;
  return kinds;
}

}  // namespace

ModelConfig kimi_linear_config(const Config& c) {
  ModelConfig m;
  m.vocab = c.get<int64_t>("vocab_size");
  m.hidden = c.get<int64_t>("hidden_size");
  m.norm_eps = c.get<double>("rms_norm_eps", 1e-5);
  m.norm = NormKind::Plain;
  m.tie_embeddings = c.get<bool>("tie_word_embeddings", false);
  m.bos = token_id_field(c, "bos_token_id");
  m.eos = token_id_field(c, "eos_token_id");
  m.ignorable_suffixes = {"rotary_emb.inv_freq"};
  const int64_t n_layers = c.get<int64_t>("num_hidden_layers");
  LINFER_CHECK(n_layers > 0, "{}: num_hidden_layers must be positive", c.file());

  const std::string act = c.get<std::string>("hidden_act", "silu");
  LINFER_CHECK(act == "silu" || act == "swish", "{}: hidden_act '{}' is not supported (silu only)", c.file(), act);

  DeltaDims kda;
  {
    Config lin = c.has("linear_attn_config") ? c.sub("linear_attn_config") : Config::parse("{}", c.file());
    const int64_t heads = lin.has("num_heads") ? lin.get<int64_t>("num_heads")
                                                : get_any<int64_t>(c, {"linear_num_heads", "linear_num_key_heads"}, 32);
    const int64_t head_dim = lin.has("head_dim") ? lin.get<int64_t>("head_dim")
                                                  : get_any<int64_t>(c, {"linear_head_dim", "linear_key_head_dim"}, 128);
    kda.heads = heads;
    kda.head_k = head_dim;
    kda.v_heads = get_any<int64_t>(c, {"linear_num_value_heads"}, heads);
    kda.head_v = get_any<int64_t>(c, {"linear_value_head_dim"}, head_dim);
    kda.conv_width = lin.has("short_conv_kernel_size") ? lin.get<int64_t>("short_conv_kernel_size")
                                                        : c.get<int64_t>("linear_conv_kernel_dim", 4);
    LINFER_CHECK(kda.heads > 0 && kda.v_heads % kda.heads == 0,
                 "{}: KDA value heads ({}) must be a multiple of key heads ({})", c.file(), kda.v_heads, kda.heads);
    LINFER_CHECK(!(lin.has("gate_lower_bound") && lin.json().at("gate_lower_bound").is_number()),
                 "{}: linear_attn_config.gate_lower_bound (Kimi K3 gate) is not supported", c.file());
  }

  MlaDims mla;
  mla.heads = c.get<int64_t>("num_attention_heads");
  mla.q_lora_rank = c.get<int64_t>("q_lora_rank", 0);
  mla.kv_lora_rank = c.get<int64_t>("kv_lora_rank");
  mla.qk_nope = c.get<int64_t>("qk_nope_head_dim");
  mla.qk_rope = c.get<int64_t>("qk_rope_head_dim");
  mla.v_head = c.get<int64_t>("v_head_dim");
  mla.rope = false;  // Kimi Linear MLA is NoPE: transformers and the remote code never rotate k_rot.
  LINFER_CHECK(!c.get<bool>("mla_use_output_gate", false), "{}: mla_use_output_gate (Kimi K3) is not supported",
               c.file());
  LINFER_CHECK(c.get<int64_t>("attn_res_block_size", 0) == 0, "{}: attn_res_block_size (Kimi K3) is not supported",
               c.file());

  MoeDims moe;
  moe.experts = need_any<int64_t>(c, {"num_experts", "num_local_experts", "n_routed_experts"});
  moe.top_k = need_any<int64_t>(c, {"num_experts_per_token", "num_experts_per_tok"});
  moe.intermediate = c.get<int64_t>("moe_intermediate_size");
  moe.shared_intermediate = moe.intermediate * get_any<int64_t>(c, {"num_shared_experts", "n_shared_experts"}, 1);
  const std::string router = c.get<std::string>("moe_router_activation_func", "sigmoid");
  LINFER_CHECK(router == "sigmoid" || router == "softmax",
               "{}: moe_router_activation_func '{}': expected sigmoid or softmax", c.file(), router);
  moe.router = router == "sigmoid" ? RouterKind::Sigmoid : RouterKind::Softmax;
  moe.renormalize = get_any<bool>(c, {"moe_renormalize", "norm_topk_prob"}, true);
  moe.routed_scaling = c.get<double>("routed_scaling_factor", 1.0);
  moe.correction_bias = true;
  moe.groups = get_any<int64_t>(c, {"num_expert_group", "n_group"}, 1);
  moe.topk_groups = c.get<int64_t>("topk_group", 1);
  LINFER_CHECK(moe.top_k > 0 && moe.top_k <= moe.experts, "{}: top-k {} of {} experts", c.file(), moe.top_k,
               moe.experts);
  LINFER_CHECK(moe.groups >= 1 && moe.experts % moe.groups == 0 && moe.topk_groups <= moe.groups,
               "{}: {} experts cannot form {} groups (topk_group {})", c.file(), moe.experts, moe.groups,
               moe.topk_groups);
  const int64_t dense_intermediate = get_any<int64_t>(c, {"dense_ffn_hidden", "intermediate_size"}, 0);

  const auto mixers = kimi_mixers(c, n_layers);
  const auto ffns = kimi_ffns(c, n_layers);
  for (int64_t i = 0; i < n_layers; ++i) {
    LayerConfig l;
    l.prefix = fmt::format("model.layers.{}.", i);
    l.mixer = mixers[i];
    l.mixer_prefix = "self_attn.";
    l.delta = kda;
    l.mla = mla;
    l.mla.latent_norm_eps = 1e-6;  // kv_a_layernorm is built with the RMSNorm default eps, not rms_norm_eps
    l.ffn = ffns[i];
    l.moe = moe;
    l.dense_intermediate = dense_intermediate;
    // The published checkpoint stores the leading dense MLP as mlp.*, transformers' save_pretrained
    // as block_sparse_moe.*; MoE blocks are block_sparse_moe.* (published) or mlp.* (in memory).
    l.ffn_prefixes = {"block_sparse_moe.", "mlp."};
    m.layers.push_back(l);
  }
  return m;
}

}  // namespace linfer
