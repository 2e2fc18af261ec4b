// Qwen3-Next: Gated DeltaNet layers and gated full-attention layers (3 : 1 by default), MoE with a
// softmax router and a sigmoid-gated shared expert, zero-centred RMSNorm (x̂·(1 + w)) everywhere
// except the GDN output norm. The MTP head (mtp.*) is ignored, as transformers ignores it.

#include <cmath>

#include <fmt/format.h>

#include "models/config_fields.h"
#include "models/registry.h"

namespace linfer {

ModelConfig qwen3_next_config(const Config& c) {
  ModelConfig m;
  m.vocab = c.get<int64_t>("vocab_size");
  m.hidden = c.get<int64_t>("hidden_size");
  m.norm_eps = c.get<double>("rms_norm_eps", 1e-6);
  m.norm = NormKind::ZeroCentred;
  m.tie_embeddings = c.get<bool>("tie_word_embeddings", false);
  m.bos = token_id_field(c, "bos_token_id");
  m.eos = token_id_field(c, "eos_token_id");
  m.ignorable_prefixes = {"mtp."};
  m.ignorable_suffixes = {"rotary_emb.inv_freq"};
  const int64_t n_layers = c.get<int64_t>("num_hidden_layers");
  LINFER_CHECK(n_layers > 0, "{}: num_hidden_layers must be positive", c.file());
  const std::string act = c.get<std::string>("hidden_act", "silu");
  LINFER_CHECK(act == "silu" || act == "swish", "{}: hidden_act '{}' is not supported (silu only)", c.file(), act);

  std::vector<MixerKind> mixers(n_layers);
  if (c.has("layer_types")) {
    auto types = c.get<std::vector<std::string>>("layer_types");
    LINFER_CHECK(int64_t(types.size()) == n_layers, "{}: layer_types has {} entries, num_hidden_layers is {}",
                 c.file(), types.size(), n_layers);
    for (int64_t i = 0; i < n_layers; ++i) {
      if (types[i] == "linear_attention") mixers[i] = MixerKind::Gdn;
      else if (types[i] == "full_attention" || types[i] == "attention") mixers[i] = MixerKind::Attention;
      else fail("{}: layer_types[{}] = '{}': expected linear_attention or full_attention", c.file(), i, types[i]);
    }
  } else {
    const int64_t interval = c.get<int64_t>("full_attention_interval", 4);
    LINFER_CHECK(interval >= 1, "{}: full_attention_interval must be >= 1", c.file());
    for (int64_t i = 0; i < n_layers; ++i)
      mixers[i] = (i + 1) % interval == 0 ? MixerKind::Attention : MixerKind::Gdn;
  }

  DeltaDims gdn;
  gdn.heads = c.get<int64_t>("linear_num_key_heads");
  gdn.v_heads = c.get<int64_t>("linear_num_value_heads");
  gdn.head_k = c.get<int64_t>("linear_key_head_dim");
  gdn.head_v = c.get<int64_t>("linear_value_head_dim");
  gdn.conv_width = c.get<int64_t>("linear_conv_kernel_dim", 4);
  LINFER_CHECK(gdn.heads > 0 && gdn.v_heads % gdn.heads == 0,
               "{}: linear_num_value_heads ({}) must be a multiple of linear_num_key_heads ({})", c.file(),
               gdn.v_heads, gdn.heads);

  AttentionDims attn;
  attn.heads = c.get<int64_t>("num_attention_heads");
  attn.kv_heads = c.get<int64_t>("num_key_value_heads", attn.heads);
  attn.head_dim = c.get<int64_t>("head_dim", 256);
  LINFER_CHECK(attn.kv_heads > 0 && attn.heads % attn.kv_heads == 0,
               "{}: num_attention_heads ({}) must be a multiple of num_key_value_heads ({})", c.file(), attn.heads,
               attn.kv_heads);
  // RoPE parameters: transformers 5 nests them in rope_parameters; published configs keep them top-level.
  Config rope = c.has("rope_parameters") ? c.sub("rope_parameters") : Config::parse("{}", c.file());
  double partial = rope.has("partial_rotary_factor") ? rope.get<double>("partial_rotary_factor")
                                                     : c.get<double>("partial_rotary_factor", 0.25);
  attn.rope_theta = rope.has("rope_theta") ? rope.get<double>("rope_theta") : c.get<double>("rope_theta", 10000.0);
  const std::string rope_type = rope.has("rope_type") ? rope.get<std::string>("rope_type") : "default";
  LINFER_CHECK(rope_type == "default", "{}: rope_type '{}' is not supported (default only)", c.file(), rope_type);
  LINFER_CHECK(!c.has("rope_scaling"), "{}: rope_scaling is not supported", c.file());
  LINFER_CHECK(partial > 0 && partial <= 1, "{}: partial_rotary_factor {} must be in (0, 1] (a fraction of head_dim {})",
               c.file(), partial, attn.head_dim);
  attn.rope_dim = int64_t(double(attn.head_dim) * partial);
  LINFER_CHECK(attn.rope_dim % 2 == 0, "{}: partial_rotary_factor {} x head_dim {} = {} rotary dims: must be even",
               c.file(), partial, attn.head_dim, attn.rope_dim);
  attn.qk_norm = true;
  attn.output_gate = true;

  const auto mlp_only = c.get<std::vector<int64_t>>("mlp_only_layers", {});
  for (int64_t j : mlp_only)
    LINFER_CHECK(j >= 0 && j < n_layers, "{}: mlp_only_layers has layer {} (0-indexed; the model has {} layers)",
                 c.file(), j, n_layers);
  const int64_t sparse_step = c.get<int64_t>("decoder_sparse_step", 1);
  MoeDims moe;
  moe.experts = c.get<int64_t>("num_experts", 0);
  moe.top_k = c.get<int64_t>("num_experts_per_tok", 0);
  moe.intermediate = c.get<int64_t>("moe_intermediate_size", 0);
  moe.shared_intermediate = c.get<int64_t>("shared_expert_intermediate_size", 0);
  moe.shared_gate = true;
  moe.router = RouterKind::Softmax;
  moe.renormalize = c.get<bool>("norm_topk_prob", true);
  if (moe.experts > 0)
    LINFER_CHECK(moe.top_k > 0 && moe.top_k <= moe.experts, "{}: num_experts_per_tok {} of {} experts", c.file(),
                 moe.top_k, moe.experts);

  for (int64_t i = 0; i < n_layers; ++i) {
    LayerConfig l;
    l.prefix = fmt::format("model.layers.{}.", i);
    l.mixer = mixers[i];
    l.mixer_prefix = l.mixer == MixerKind::Gdn ? "linear_attn." : "self_attn.";
    l.delta = gdn;
    l.attn = attn;
    bool only_mlp = false;
    for (auto j : mlp_only) only_mlp |= j == i;
    const bool sparse = !only_mlp && moe.experts > 0 && sparse_step > 0 && (i + 1) % sparse_step == 0;
    l.ffn = sparse ? FfnKind::Moe : FfnKind::Dense;
    l.moe = moe;
    l.dense_intermediate = c.get<int64_t>("intermediate_size", 0);
    l.ffn_prefixes = {"mlp."};
    m.layers.push_back(l);
  }
  return m;
}

}  // namespace linfer
