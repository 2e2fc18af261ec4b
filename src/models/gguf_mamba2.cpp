// Mamba2 from llama.cpp's GGUF ("mamba2"). What the converter did, undone here:
//   - dims: ssm.inner_size (= expand x hidden), ssm.state_size, ssm.group_count, ssm.conv_kernel,
//     ssm.time_step_rank (= num_heads; head_dim = inner_size / num_heads);
//   - A_log stored as ssm_a = -exp(A_log), shape [H, 1]; D as [H, 1]; conv1d squeezed to [C, W];
//     the gated norm reshaped to [groups, inner / groups]; dt_bias renamed ssm_dt.bias.
// time_step_limit is not in the file (llama.cpp does not clamp dt): the default (0, inf) is used.

#include <fmt/format.h>

#include "linfer/core/error.h"
#include "models/gguf_checkpoint.h"

namespace linfer {

nlohmann::json mamba2_from_gguf(GgufMapper& m) {
  const GgufHeader& h = m.meta();
  nlohmann::json c = common_config(m, "mamba2");
  const int64_t n_layers = h.get_int(m.key("block_count"));
  const int64_t hidden = c["hidden_size"], inner = h.get_int(m.key("ssm.inner_size"));
  const int64_t heads = h.get_int(m.key("ssm.time_step_rank"));
  LINFER_CHECK(heads > 0 && inner % heads == 0 && hidden > 0,
               "{}: ssm.inner_size {} is not a multiple of ssm.time_step_rank {} (the head count)", m.label(), inner,
               heads);
  c["num_hidden_layers"] = n_layers;
  c["layer_norm_epsilon"] = h.get_float(m.key("attention.layer_norm_rms_epsilon"));
  c["num_heads"] = heads;
  c["head_dim"] = inner / heads;
  c["expand"] = double(inner) / double(hidden);
  c["state_size"] = h.get_int(m.key("ssm.state_size"));
  c["n_groups"] = h.get_int(m.key("ssm.group_count"));
  c["conv_kernel"] = h.get_int(m.key("ssm.conv_kernel"));
  c["use_conv_bias"] = m.has(GgufMapper::blk(0, "ssm_conv1d.bias"));
  c["use_bias"] = m.has(GgufMapper::blk(0, "ssm_in.bias"));

  m.alias("token_embd.weight", "backbone.embeddings.weight");
  m.alias("output_norm.weight", "backbone.norm_f.weight");
  if (m.has("output.weight")) m.alias("output.weight", "lm_head.weight");
  for (int64_t l = 0; l < n_layers; ++l) {
    const std::string p = fmt::format("backbone.layers.{}.", l);
    m.alias_layer(l, p, {{"attn_norm.weight", "norm.weight"},
                         {"ssm_in.weight", "mixer.in_proj.weight"},
                         {"ssm_in.bias", "mixer.in_proj.bias"},
                         {"ssm_conv1d.weight", "mixer.conv1d.weight"},
                         {"ssm_conv1d.bias", "mixer.conv1d.bias"},
                         {"ssm_dt.bias", "mixer.dt_bias"},
                         {"ssm_d", "mixer.D"},
                         {"ssm_norm.weight", "mixer.norm.weight"},
                         {"ssm_out.weight", "mixer.out_proj.weight"},
                         {"ssm_out.bias", "mixer.out_proj.bias"}});
    const std::string a = GgufMapper::blk(l, "ssm_a");
    m.owned({a}, p + "mixer.A_log", a_log_from_a(m.f32(a), m.label() + ": " + a));
  }
  return c;
}

}  // namespace linfer
