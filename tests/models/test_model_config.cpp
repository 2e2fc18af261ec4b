// config.json -> layer list (models/registry.h):
//   - Kimi Linear's two config formats (transformers' layer_types / mlp_layer_types and the published
//     checkpoint's 1-indexed linear_attn_config + first_k_dense_replace) give the same layers, dims
//     and MoE settings, on the committed fixture configs and on a published-size layout;
//   - inconsistent configs fail with a linfer::Error that names the file and the field.

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "io/config.h"
#include "linfer/core/error.h"
#include "models/registry.h"

namespace fs = std::filesystem;
using linfer::Config;
using linfer::FfnKind;
using linfer::MixerKind;
using linfer::ModelConfig;

namespace {

const fs::path kGolden = fs::path(LINFER_SOURCE_DIR) / "tests/golden";

ModelConfig build(const std::string& json) { return linfer::build_model_config(Config::parse(json, "test.json")); }

std::string layer_list(const ModelConfig& m) {
  std::string s;
  for (const auto& l : m.layers) s += std::string(linfer::mixer_name(l.mixer)) + "+" + linfer::ffn_name(l.ffn) + " ";
  return s;
}

// Everything the forward path reads from a layer, except where its tensors live.
void expect_same_layers(const ModelConfig& a, const ModelConfig& b) {
  ASSERT_EQ(layer_list(a), layer_list(b));
  EXPECT_EQ(a.vocab, b.vocab);
  EXPECT_EQ(a.hidden, b.hidden);
  EXPECT_EQ(a.norm_eps, b.norm_eps);
  for (size_t i = 0; i < a.layers.size(); ++i) {
    const auto &x = a.layers[i], &y = b.layers[i];
    SCOPED_TRACE("layer " + std::to_string(i));
    EXPECT_EQ(x.delta.heads, y.delta.heads);
    EXPECT_EQ(x.delta.v_heads, y.delta.v_heads);
    EXPECT_EQ(x.delta.head_k, y.delta.head_k);
    EXPECT_EQ(x.delta.head_v, y.delta.head_v);
    EXPECT_EQ(x.delta.conv_width, y.delta.conv_width);
    EXPECT_EQ(x.mla.heads, y.mla.heads);
    EXPECT_EQ(x.mla.kv_lora_rank, y.mla.kv_lora_rank);
    EXPECT_EQ(x.mla.qk_nope, y.mla.qk_nope);
    EXPECT_EQ(x.mla.qk_rope, y.mla.qk_rope);
    EXPECT_EQ(x.mla.v_head, y.mla.v_head);
    EXPECT_EQ(x.dense_intermediate, y.dense_intermediate);
    EXPECT_EQ(x.moe.experts, y.moe.experts);
    EXPECT_EQ(x.moe.top_k, y.moe.top_k);
    EXPECT_EQ(x.moe.intermediate, y.moe.intermediate);
    EXPECT_EQ(x.moe.shared_intermediate, y.moe.shared_intermediate);
    EXPECT_EQ(x.moe.router, y.moe.router);
    EXPECT_EQ(x.moe.renormalize, y.moe.renormalize);
    EXPECT_EQ(x.moe.routed_scaling, y.moe.routed_scaling);
    EXPECT_EQ(x.moe.correction_bias, y.moe.correction_bias);
  }
}

TEST(KimiConfig, FixtureConfigsInBothFormatsGiveTheSameLayers) {
  for (const char* name : {"kimi_linear_a", "kimi_linear_b"}) {
    SCOPED_TRACE(name);
    const auto hf = linfer::build_model_config(Config::load((kGolden / name / "config.json").string()));
    const auto published = linfer::build_model_config(Config::load((kGolden / name / "alt/config.json").string()));
    EXPECT_TRUE(Config::load((kGolden / name / "config.json").string()).has("layer_types"));
    EXPECT_TRUE(Config::load((kGolden / name / "alt/config.json").string()).has("linear_attn_config"));
    expect_same_layers(hf, published);
  }
}

// The shared fields of a small Kimi Linear config; each format adds its own layer description.
std::string kimi_common() {
  return R"("model_type": "kimi_linear", "vocab_size": 100, "hidden_size": 32, "num_hidden_layers": 8,
    "num_attention_heads": 4, "kv_lora_rank": 16, "qk_nope_head_dim": 8, "qk_rope_head_dim": 4,
    "v_head_dim": 8, "intermediate_size": 64, "moe_intermediate_size": 16, "num_experts": 8,
    "routed_scaling_factor": 2.446, "rms_norm_eps": 1e-5)";
}

TEST(KimiConfig, PublishedAndTransformersFormatsOfOneLayout) {
  // Layers (0-based) 3 and 7 are MLA; layers 0 and 1 dense.
  const auto published = build("{" + kimi_common() + R"(,
    "num_experts_per_token": 2, "num_shared_experts": 1, "moe_renormalize": true,
    "moe_router_activation_func": "sigmoid", "first_k_dense_replace": 2,
    "linear_attn_config": {"kda_layers": [1, 2, 3, 5, 6, 7], "full_attn_layers": [4, 8],
                           "num_heads": 2, "head_dim": 16, "short_conv_kernel_size": 4}})");
  const auto hf = build("{" + kimi_common() + R"(,
    "num_experts_per_tok": 2, "num_shared_experts": 1, "norm_topk_prob": true,
    "layer_types": ["linear_attention", "linear_attention", "linear_attention", "full_attention",
                    "linear_attention", "linear_attention", "linear_attention", "full_attention"],
    "mlp_layer_types": ["dense", "dense", "sparse", "sparse", "sparse", "sparse", "sparse", "sparse"],
    "linear_num_heads": 2, "linear_head_dim": 16, "linear_conv_kernel_dim": 4})");
  EXPECT_EQ(layer_list(published),
            "kda+dense kda+dense kda+moe mla+moe kda+moe kda+moe kda+moe mla+moe ");
  expect_same_layers(published, hf);
  EXPECT_EQ(published.layers[0].delta.heads, 2);
  EXPECT_EQ(published.layers[0].delta.head_k, 16);
  EXPECT_EQ(published.layers[3].moe.router, linfer::RouterKind::Sigmoid);
}

// Builds `json` and expects a linfer::Error whose message contains every one of `needles`.
void expect_error(const std::string& json, std::initializer_list<const char*> needles) {
  try {
    build(json);
    ADD_FAILURE() << "no error for " << json;
  } catch (const linfer::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("test.json"), std::string::npos) << "the message should name the file: " << msg;
    for (const char* n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "'" << n << "' missing from: " << msg;
  }
}

std::string kimi_published(const std::string& lin, const std::string& extra = "") {
  return "{" + kimi_common() + R"(, "num_experts_per_token": 2, "linear_attn_config": )" + lin + extra + "}";
}

TEST(ConfigErrors, KimiLayerIndexBeyondNumHiddenLayers) {
  expect_error(kimi_published(R"({"kda_layers": [1, 2, 3, 5, 6, 7], "full_attn_layers": [4, 9],
                                  "num_heads": 2, "head_dim": 16})"),
               {"full_attn_layers", "9"});
  expect_error(kimi_published(R"({"kda_layers": [0, 1, 2, 3, 5, 6, 7], "full_attn_layers": [4, 8],
                                  "num_heads": 2, "head_dim": 16})"),
               {"kda_layers", "1-indexed"});
}

TEST(ConfigErrors, KimiLayerListedTwiceOrMissing) {
  expect_error(kimi_published(R"({"kda_layers": [1, 2, 3, 4, 5, 6, 7], "full_attn_layers": [4, 8],
                                  "num_heads": 2, "head_dim": 16})"),
               {"layer 4", "2 times"});
  expect_error(kimi_published(R"({"kda_layers": [1, 2, 3, 5, 6, 7], "full_attn_layers": [8],
                                  "num_heads": 2, "head_dim": 16})"),
               {"layer 4", "0 times"});
}

TEST(ConfigErrors, KimiListsOfTheWrongLength) {
  expect_error("{" + kimi_common() + R"(, "num_experts_per_tok": 2,
               "layer_types": ["linear_attention", "full_attention"]})",
               {"layer_types", "2 entries", "8"});
  expect_error("{" + kimi_common() + R"(, "num_experts_per_tok": 2,
               "mlp_layer_types": ["dense", "sparse", "sparse"]})",
               {"mlp_layer_types", "3 entries"});
  expect_error("{" + kimi_common() + R"(, "num_experts_per_tok": 2,
               "layer_types": ["linear_attention", "linear_attention", "linear_attention", "mamba",
                               "linear_attention", "linear_attention", "linear_attention", "full_attention"]})",
               {"layer_types[3]", "mamba"});
}

TEST(ConfigErrors, KimiHeadsAndExperts) {
  expect_error(kimi_published(R"({"kda_layers": [1, 2, 3, 5, 6, 7], "full_attn_layers": [4, 8],
                                  "num_heads": 4, "head_dim": 16})",
                              R"(, "linear_num_value_heads": 6)"),
               {"value heads (6)", "key heads (4)"});
  expect_error("{" + kimi_common() + R"(, "num_experts_per_tok": 9})", {"top-k 9", "8 experts"});
  expect_error("{" + kimi_common() + R"(, "num_experts_per_tok": 2, "num_expert_group": 3})", {"8 experts", "3 groups"});
  expect_error("{" + kimi_common() + "}", {"num_experts_per_token"});
}

std::string qwen(const std::string& extra) {
  return R"({"model_type": "qwen3_next", "vocab_size": 100, "hidden_size": 32, "num_hidden_layers": 4,
    "linear_num_key_heads": 2, "linear_num_value_heads": 4, "linear_key_head_dim": 8,
    "linear_value_head_dim": 8, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
    "num_experts": 8, "num_experts_per_tok": 2, "moe_intermediate_size": 8, "intermediate_size": 16)" +
         extra + "}";
}

TEST(ConfigErrors, QwenHeadsNotDividing) {
  EXPECT_NO_THROW(build(qwen("")));
  expect_error(qwen(R"(, "linear_num_value_heads": 3)"), {"linear_num_value_heads (3)", "linear_num_key_heads (2)"});
  expect_error(qwen(R"(, "num_key_value_heads": 3)"), {"num_attention_heads (4)", "num_key_value_heads (3)"});
}

TEST(ConfigErrors, QwenLayerIndicesAndRotary) {
  expect_error(qwen(R"(, "mlp_only_layers": [1, 4])"), {"mlp_only_layers", "4"});
  expect_error(qwen(R"(, "partial_rotary_factor": 1.5)"), {"partial_rotary_factor", "head_dim"});
  expect_error(qwen(R"(, "num_experts_per_tok": 9)"), {"num_experts_per_tok 9", "8 experts"});
  expect_error(qwen(R"(, "layer_types": ["linear_attention", "full_attention", "sliding_attention", "full_attention"])"),
               {"layer_types[2]", "sliding_attention"});
}

TEST(ConfigErrors, Mamba2HeadsTimesHeadDim) {
  const std::string base = R"({"model_type": "mamba2", "vocab_size": 100, "hidden_size": 32,
    "num_hidden_layers": 2, "state_size": 16, "expand": 2)";
  EXPECT_NO_THROW(build(base + R"(, "num_heads": 4, "head_dim": 16})"));
  expect_error(base + R"(, "num_heads": 4, "head_dim": 8})", {"num_heads (4)", "head_dim (8)", "(64)"});
  expect_error(base + R"(, "num_heads": 4, "head_dim": 16, "n_groups": 3})", {"n_groups (3)"});
}

TEST(ConfigErrors, UnknownModelTypeAndMissingFields) {
  expect_error(R"({"model_type": "llama", "vocab_size": 100})", {"llama", "kimi_linear"});
  expect_error(R"({"model_type": "mamba2", "vocab_size": 100, "hidden_size": 32, "num_hidden_layers": 0,
                   "num_heads": 4, "head_dim": 16, "state_size": 16})",
               {"num_hidden_layers"});
  expect_error(R"({"model_type": "mamba2", "vocab_size": 100, "num_hidden_layers": 2})", {"hidden_size"});
}

}  // namespace
