// Mamba2: every layer is an SSD mixer (no FFN), one pre-norm per layer; tied or untied head.

#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "models/config_fields.h"
#include "models/registry.h"

namespace linfer {

ModelConfig mamba2_config(const Config& c) {
  ModelConfig m;
  m.vocab = c.get<int64_t>("vocab_size");
  m.hidden = c.get<int64_t>("hidden_size");
  m.norm_eps = c.get<double>("layer_norm_epsilon", 1e-5);
  m.norm = NormKind::Plain;
  m.tie_embeddings = c.get<bool>("tie_word_embeddings", false);
  m.bos = token_id_field(c, "bos_token_id");
  m.eos = token_id_field(c, "eos_token_id");
  m.embed = "backbone.embeddings.weight";
  m.final_norm = "backbone.norm_f.weight";
  const int64_t n_layers = c.get<int64_t>("num_hidden_layers");
  LINFER_CHECK(n_layers > 0, "{}: num_hidden_layers must be positive", c.file());
  const std::string act = c.get<std::string>("hidden_act", "silu");
  LINFER_CHECK(act == "silu" || act == "swish", "{}: hidden_act '{}' is not supported (silu only)", c.file(), act);
  LINFER_CHECK(c.get<bool>("rms_norm", true), "{}: rms_norm = false is not supported", c.file());

  Mamba2Dims d;
  d.heads = c.get<int64_t>("num_heads");
  d.head_dim = c.get<int64_t>("head_dim");
  d.state = c.get<int64_t>("state_size");
  d.groups = c.get<int64_t>("n_groups", 1);
  d.conv_width = c.get<int64_t>("conv_kernel", 4);
  d.conv_bias = c.get<bool>("use_conv_bias", true);
  d.proj_bias = c.get<bool>("use_bias", false);
  const double expand = c.get<double>("expand", 2.0);
  const auto d_inner = int64_t(expand * double(m.hidden));
  LINFER_CHECK(d.heads * d.head_dim == d_inner,
               "{}: num_heads ({}) x head_dim ({}) must equal expand x hidden_size ({})", c.file(), d.heads,
               d.head_dim, d_inner);
  LINFER_CHECK(d.groups > 0 && d.heads % d.groups == 0, "{}: num_heads ({}) must be a multiple of n_groups ({})",
               c.file(), d.heads, d.groups);
  // time_step_limit: [min, max] clamp of dt; Python writes the default (0, inf) as [0.0, Infinity],
  // which a strict JSON parser rejects, so config loading may already have failed there.
  if (c.has("time_step_limit")) {
    const auto& j = c.json().at("time_step_limit");
    LINFER_CHECK(j.is_array() && j.size() == 2, "{}: time_step_limit must be [min, max]", c.file());
    d.dt_min = j[0].is_number() ? j[0].get<double>() : 0.0;
    d.dt_max = j[1].is_number() ? j[1].get<double>() : std::numeric_limits<double>::infinity();
  } else {
    d.dt_min = 0.0;
    d.dt_max = std::numeric_limits<double>::infinity();
  }

  for (int64_t i = 0; i < n_layers; ++i) {
    LayerConfig l;
    l.prefix = fmt::format("backbone.layers.{}.", i);
    l.mixer = MixerKind::Mamba2;
    l.mixer_prefix = "mixer.";
    l.mamba = d;
    l.ffn = FfnKind::None;
    l.input_norm = "norm.weight";
    l.post_norm.clear();
    m.layers.push_back(l);
  }
  return m;
}

}  // namespace linfer
